// start.js runs Envoy's start sequence for a Proxy-Wasm module in Node's V8, with Envoy's
// flags, and reports what it cost and whether the plugin started, as one line of JSON:
//
//   ENTRA_COOKIE_SECRET=... node --no-liftoff --no-wasm-lazy-compilation \
//     --wasm-max-mem-pages=16384 e2e/v8/start.js MODULE.wasm CONFIG.json [ENV_NAME...]
//
// The sequence is proxy-wasm-cpp-host's (src/wasm.cc: WasmBase::startVm, then
// WasmBase::start and configure): instantiate, _initialize, proxy_on_context_create for
// the root context, proxy_on_vm_start, proxy_on_configure. The environment variables
// named reach the VM (Envoy's host_env_keys). The host answers the calls a module makes
// while starting as Envoy 1.33 answers them, and traps, naming the import, on a call
// Envoy restricts at that moment (inside _initialize: WasmBase::startVm; inside the
// allocator: WasmBase::allocMemory) or one this host does not give. runner.js serves
// requests with the same host (host.js).
'use strict';

const fs = require('fs');
const { Host } = require('./host');

function main() {
  const [modulePath, configPath, ...envNames] = process.argv.slice(2);
  if (!modulePath || !configPath) {
    process.stderr.write('usage: node --no-liftoff --no-wasm-lazy-compilation start.js MODULE.wasm CONFIG.json [ENV_NAME...]\n');
    process.exit(2);
  }
  const bytes = fs.readFileSync(modulePath);
  const configuration = fs.readFileSync(configPath);
  const env = envNames.filter((n) => process.env[n] !== undefined).map((n) => `${n}=${process.env[n]}`);

  const t0 = process.hrtime.bigint();
  const module = new WebAssembly.Module(bytes);
  const t1 = process.hrtime.bigint();
  const host = new Host(env, configuration);
  const instance = new WebAssembly.Instance(module, host.imports(module));
  host.bind(instance);
  const t2 = process.hrtime.bigint();
  const result = host.start();
  const t3 = process.hrtime.bigint();
  host.flush();
  const ms = (a, b) => Number(b - a) / 1e6;
  process.stdout.write(JSON.stringify({
    compile_ms: ms(t0, t1), instantiate_ms: ms(t1, t2), start_ms: ms(t2, t3),
    started: result.started, failed_step: result.step, trap: result.trap,
    memory_bytes: instance.exports.memory.buffer.byteLength, log: host.log,
  }) + '\n');
}

main();
