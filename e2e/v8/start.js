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
// allocator: WasmBase::allocMemory) or one this host does not give. It is the start of
// a V8 runner, not yet one: it serves no requests.
'use strict';

const fs = require('fs');
const crypto = require('crypto');

// WasmResult (proxy-wasm-cpp-host include/proxy-wasm/wasm_api_impl.h, word.h).
const OK = 0, NOT_FOUND = 1, BAD_ARGUMENT = 2, CAS_MISMATCH = 8, UNIMPLEMENTED = 12;
const VM_CONFIGURATION = 6, PLUGIN_CONFIGURATION = 7; // proxy_get_buffer_bytes types

class Trap extends Error {}

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
  const host = new StartHost(env, configuration);
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

class StartHost {
  constructor(env, configuration) {
    this.env = env;
    this.configuration = configuration;
    this.vmConfiguration = Buffer.alloc(0);
    this.log = [];
    this.partial = { 1: '', 2: '' }; // what fd 1 and 2 got since their last newline
    this.shared = new Map(); // key -> {value: Buffer, cas: number}
    this.nextCas = 1;
    this.queues = new Map();
    this.metrics = [];
    this.phase = 'starting'; // Envoy restricts imports while _initialize runs
    this.allocating = false;
    this.configuring = false;
  }

  // write logs what the module writes to stdout or stderr a line at a time: Go's runtime
  // writes a fatal error in many small pieces.
  write(fd, text) {
    const lines = (this.partial[fd] + text).split('\n');
    this.partial[fd] = lines.pop();
    for (const line of lines) this.log.push(`fd ${fd}: ${line}`);
  }

  flush() {
    for (const fd of [1, 2]) {
      if (this.partial[fd]) this.log.push(`fd ${fd}: ${this.partial[fd]}`);
      this.partial[fd] = '';
    }
  }

  bind(instance) {
    this.exports = instance.exports;
    this.malloc = instance.exports.proxy_on_memory_allocate || instance.exports.malloc;
    if (!this.malloc) throw new Error('the module exports no proxy_on_memory_allocate');
  }

  // Views are made afresh on every access: memory.grow detaches the old buffer.
  u8() { return new Uint8Array(this.exports.memory.buffer); }
  view() { return new DataView(this.exports.memory.buffer); }
  read(ptr, len) { return Buffer.from(this.u8().subarray(ptr, ptr + len)); }
  text(ptr, len) { return this.read(ptr, len).toString('utf8'); }

  // copyOut allocates in the module (Envoy's allocMemory) and writes data there, then
  // its address and size at ptrPtr and sizePtr.
  copyOut(data, ptrPtr, sizePtr) {
    this.allocating = true;
    let ptr;
    try {
      ptr = this.malloc(data.length);
    } finally {
      this.allocating = false;
    }
    if (ptr === 0 && data.length > 0) return BAD_ARGUMENT;
    this.u8().set(data, ptr);
    const v = this.view();
    v.setUint32(ptrPtr, ptr, true);
    v.setUint32(sizePtr, data.length, true);
    return OK;
  }

  start() {
    const run = (step, fn) => {
      try {
        return { ok: fn(), step };
      } catch (err) {
        return { ok: false, step, trap: String(err && err.message || err) };
      }
    };
    const e = this.exports;
    let r = run('_initialize', () => { if (e._initialize) e._initialize(); return true; });
    this.phase = 'running';
    if (!r.ok) return { started: false, step: r.step, trap: r.trap };
    const root = 1;
    r = run('proxy_on_context_create', () => { e.proxy_on_context_create(root, 0); return true; });
    if (r.ok) r = run('proxy_on_vm_start', () => e.proxy_on_vm_start(root, this.vmConfiguration.length) !== 0);
    if (r.ok) {
      this.configuring = true;
      r = run('proxy_on_configure', () => e.proxy_on_configure(root, this.configuration.length) !== 0);
      this.configuring = false;
    }
    return r.ok ? { started: true } : { started: false, step: r.step, trap: r.trap };
  }

  // allowed is Envoy 1.33's rule for what a module may call at this moment.
  allowed(name) {
    if (this.allocating) {
      return ['env.proxy_log', 'wasi_snapshot_preview1.fd_write', 'wasi_snapshot_preview1.clock_time_get'].includes(name);
    }
    if (this.phase === 'starting') {
      return name === 'env.proxy_log' || [
        'fd_write', 'args_sizes_get', 'args_get', 'environ_sizes_get', 'environ_get', 'clock_time_get',
        'random_get', 'fd_fdstat_get', 'fd_fdstat_set_flags', 'fd_prestat_get', 'fd_prestat_dir_name',
      ].some((n) => name === `wasi_snapshot_preview1.${n}`);
    }
    return true;
  }

  imports(module) {
    const impl = this.implementations();
    const out = {};
    for (const im of WebAssembly.Module.imports(module)) {
      if (im.kind !== 'function') continue;
      const name = `${im.module}.${im.name}`;
      const fn = impl[name];
      out[im.module] = out[im.module] || {};
      out[im.module][im.name] = (...args) => {
        if (!this.allowed(name)) {
          throw new Trap(`restricted_callback: ${name} called ${this.allocating ? 'inside proxy_on_memory_allocate' : 'during _initialize'}`);
        }
        if (!fn) throw new Trap(`${name}: not given by this start host`);
        return fn(...args);
      };
    }
    return out;
  }

  implementations() {
    const h = this;
    const wasi = (fns) => Object.fromEntries(Object.entries(fns).map(([k, v]) => [`wasi_snapshot_preview1.${k}`, v]));
    const proxy = (fns) => Object.fromEntries(Object.entries(fns).map(([k, v]) => [`env.proxy_${k}`, v]));
    const writeStrings = (list, ptrs, buf) => {
      const v = h.view();
      let at = buf;
      list.forEach((s, i) => {
        const b = Buffer.from(s + '\0');
        v.setUint32(ptrs + 4 * i, at, true);
        h.u8().set(b, at);
        at += b.length;
      });
      return 0;
    };
    const sizes = (list, countPtr, sizePtr) => {
      const v = h.view();
      v.setUint32(countPtr, list.length, true);
      v.setUint32(sizePtr, list.reduce((n, s) => n + Buffer.byteLength(s) + 1, 0), true);
      return 0;
    };
    return {
      ...wasi({
        args_sizes_get: (c, s) => sizes([], c, s),
        args_get: (p, b) => writeStrings([], p, b),
        environ_sizes_get: (c, s) => sizes(h.env, c, s),
        environ_get: (p, b) => writeStrings(h.env, p, b),
        clock_time_get: (id, _precision, ptr) => {
          const now = id === 0 ? BigInt(Date.now()) * 1000000n : process.hrtime.bigint();
          h.view().setBigUint64(ptr, now, true);
          return 0;
        },
        random_get: (ptr, len) => { crypto.randomFillSync(h.u8(), ptr, len); return 0; },
        fd_write: (fd, iovs, n, written) => {
          const v = h.view();
          let total = 0;
          const parts = [];
          for (let i = 0; i < n; i++) {
            const p = v.getUint32(iovs + 8 * i, true), l = v.getUint32(iovs + 8 * i + 4, true);
            parts.push(h.read(p, l));
            total += l;
          }
          if (fd === 1 || fd === 2) h.write(fd, Buffer.concat(parts).toString('utf8'));
          v.setUint32(written, total, true);
          return 0;
        },
        sched_yield: () => 0,
        proc_exit: (code) => { throw new Trap(`proc_exit(${code})`); },
        fd_fdstat_get: () => 8, // EBADF: Envoy gives the module no files
        fd_fdstat_set_flags: () => 8,
        fd_prestat_get: () => 8,
        fd_prestat_dir_name: () => 8,
        fd_close: () => 8,
        fd_read: () => 8,
        fd_seek: () => 8,
        path_open: () => 8,
        poll_oneoff: () => 52, // ENOSYS, as Envoy 1.33 answers
      }),
      ...proxy({
        log: (level, ptr, len) => { h.log.push(`${['trace', 'debug', 'info', 'warn', 'error', 'critical'][level] || level}: ${h.text(ptr, len)}`); return OK; },
        get_log_level: (ptr) => { h.view().setUint32(ptr, 1, true); return OK; }, // debug
        get_current_time_nanoseconds: (ptr) => { h.view().setBigUint64(ptr, BigInt(Date.now()) * 1000000n, true); return OK; },
        set_tick_period_milliseconds: () => OK,
        set_effective_context: () => OK,
        get_buffer_bytes: (type, start, max, ptrPtr, sizePtr) => {
          let buf;
          if (type === VM_CONFIGURATION) buf = h.vmConfiguration;
          else if (type === PLUGIN_CONFIGURATION && h.configuring) buf = h.configuration;
          else return NOT_FOUND;
          return h.copyOut(buf.subarray(start, start + max), ptrPtr, sizePtr);
        },
        get_property: (pathPtr, pathLen, ptrPtr, sizePtr) => {
          const path = h.text(pathPtr, pathLen).split('\0').filter(Boolean).join('.');
          const props = { plugin_name: 'entra-auth', plugin_root_id: '', plugin_vm_id: 'entra-auth' };
          if (!(path in props)) return NOT_FOUND;
          return h.copyOut(Buffer.from(props[path]), ptrPtr, sizePtr);
        },
        get_shared_data: (kPtr, kLen, ptrPtr, sizePtr, casPtr) => {
          const entry = h.shared.get(h.text(kPtr, kLen));
          if (!entry) return NOT_FOUND;
          const r = h.copyOut(entry.value, ptrPtr, sizePtr);
          if (r === OK) h.view().setUint32(casPtr, entry.cas, true);
          return r;
        },
        set_shared_data: (kPtr, kLen, vPtr, vLen, cas) => {
          const key = h.text(kPtr, kLen);
          const entry = h.shared.get(key);
          if (cas !== 0 && (!entry || entry.cas !== cas)) return CAS_MISMATCH;
          h.shared.set(key, { value: h.read(vPtr, vLen), cas: h.nextCas++ });
          return OK;
        },
        register_shared_queue: (nPtr, nLen, idPtr) => {
          const name = h.text(nPtr, nLen);
          if (!h.queues.has(name)) h.queues.set(name, h.queues.size + 1);
          h.view().setUint32(idPtr, h.queues.get(name), true);
          return OK;
        },
        define_metric: (type, nPtr, nLen, idPtr) => {
          h.metrics.push({ type, name: h.text(nPtr, nLen), value: 0n });
          h.view().setUint32(idPtr, h.metrics.length, true);
          return OK;
        },
        increment_metric: (id, delta) => {
          const m = h.metrics[id - 1];
          if (!m) return NOT_FOUND;
          m.value += BigInt(delta);
          return OK;
        },
        record_metric: (id, value) => {
          const m = h.metrics[id - 1];
          if (!m) return NOT_FOUND;
          m.value = BigInt(value);
          return OK;
        },
        get_status: () => UNIMPLEMENTED,
      }),
    };
  }
}

main();
