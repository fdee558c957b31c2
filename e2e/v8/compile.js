// compile.js compiles a Proxy-Wasm module in Node's V8 as Envoy's V8 does and reports
// what it cost, as one line of JSON on stdout:
//
//   node --no-liftoff --no-wasm-lazy-compilation --wasm-max-mem-pages=16384 \
//     e2e/v8/compile.js MODULE.wasm HOST-ABI.txt
//
// Envoy's engine (proxy-wasm-cpp-host src/v8/v8.cc, engine()) turns Liftoff, V8's
// baseline compiler, off, so every function is compiled by TurboFan before the module
// runs; it caps memory at 1 GiB (PROXY_WASM_HOST_MAX_WASM_MEMORY_SIZE_BYTES). The flags
// above do the same in Node. The module's imports are checked against HOST-ABI.txt (the
// imports Envoy 1.33 gives, one module<TAB>name per line): one more and Envoy refuses to
// load it. CPU time counts every thread of the process (V8 compiles on several).
'use strict';

const fs = require('fs');

function main() {
  const [modulePath, abiPath] = process.argv.slice(2);
  if (!modulePath || !abiPath) {
    process.stderr.write('usage: node --no-liftoff --no-wasm-lazy-compilation compile.js MODULE.wasm HOST-ABI.txt\n');
    process.exit(2);
  }
  const bytes = fs.readFileSync(modulePath);
  const provided = new Set(
    fs.readFileSync(abiPath, 'utf8').split('\n')
      .map((line) => line.trim())
      .filter((line) => line && !line.startsWith('#'))
      .map((line) => line.replace('\t', '.')));

  const cpu0 = process.cpuUsage();
  const wall0 = process.hrtime.bigint();
  const module = new WebAssembly.Module(bytes); // synchronous: every function compiled
  const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6;
  const cpu = process.cpuUsage(cpu0);

  const missing = [...new Set(WebAssembly.Module.imports(module)
    .map((im) => `${im.module}.${im.name}`)
    .filter((name) => !provided.has(name)))];
  if (missing.length > 0) {
    process.stderr.write(`compile.js: ${modulePath} imports what Envoy 1.33 does not give: ${missing.join(', ')}\n`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({
    node: process.version,
    v8: process.versions.v8,
    module_bytes: bytes.length,
    compile_wall_ms: wallMs,
    compile_cpu_ms: (cpu.user + cpu.system) / 1000,
  }) + '\n');
}

main();
