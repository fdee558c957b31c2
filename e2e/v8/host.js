// host.js is a Proxy-Wasm host in Node's V8 that answers as Envoy 1.33 answers: the
// imports a module may call, with Envoy's results and restrictions (proxy-wasm-cpp-host
// at commit c4d7bb0: src/exports.cc, src/wasm.cc, include/proxy-wasm/wasm.h). start.js
// runs Envoy's start sequence with it; runner.js serves HTTP through it.
'use strict';

const crypto = require('crypto');

// WasmResult (proxy-wasm-cpp-host include/proxy-wasm/wasm_api_impl.h, word.h).
const OK = 0, NOT_FOUND = 1, BAD_ARGUMENT = 2, INVALID_MEMORY_ACCESS = 6, CAS_MISMATCH = 8, UNIMPLEMENTED = 12;
const VM_CONFIGURATION = 6, PLUGIN_CONFIGURATION = 7; // proxy_get_buffer_bytes types
const MAP_TYPE_MAX = 7, BUFFER_TYPE_MAX = 8; // the ABI's last header map and buffer types
// Metric types and ids (Envoy's wasm.h: kMetricTypeMask, kMetricIdIncrement).
const METRIC_COUNTER = 0, METRIC_GAUGE = 1, METRIC_HISTOGRAM = 2, METRIC_TYPE_MASK = 0x3, METRIC_ID_STEP = 4;

class Trap extends Error {}

const utf8 = new TextDecoder();

// encodePairs serializes header pairs as the ABI does: a count, then each key's and
// value's length, then each key and value followed by a NUL. into, when given, is where
// it writes them (module memory, which copyOut allocates to the size pairsSize gives).
// Header text is nearly always ASCII, which is copied a character at a time (Buffer's
// UTF-8 encoder costs more per short string); anything else goes through the encoder.
function pairsSize(pairs) {
  let size = 4;
  for (const [k, v] of pairs) size += 8 + utf8Length(k) + 1 + utf8Length(v) + 1;
  return size;
}

function utf8Length(s) {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return Buffer.byteLength(s);
  return s.length;
}

// putText writes s at at in out and returns how many bytes it took.
function putText(out, s, at) {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0x7f) return out.write(s, at);
    out[at + i] = c;
  }
  return s.length;
}

function encodePairs(pairs, into) {
  const out = into || Buffer.alloc(pairsSize(pairs));
  out.writeUInt32LE(pairs.length, 0);
  let at = 4 + 8 * pairs.length;
  for (let i = 0; i < pairs.length; i++) {
    const kn = putText(out, pairs[i][0], at);
    out[at + kn] = 0;
    at += kn + 1;
    const vn = putText(out, pairs[i][1], at);
    out[at + vn] = 0;
    at += vn + 1;
    out.writeUInt32LE(kn, 4 + 8 * i);
    out.writeUInt32LE(vn, 8 + 8 * i);
  }
  return out;
}

// decodePairs reads pairs a module wrote; keys lower-cased, as Envoy's header maps hold
// them. Anything out of bounds is null.
function decodePairs(b) {
  if (b.length === 0) return [];
  if (b.length < 4) return null;
  const n = b.readUInt32LE(0);
  if (b.length < 4 + 8 * n) return null;
  const out = [];
  let at = 4 + 8 * n;
  for (let i = 0; i < n; i++) {
    const ks = b.readUInt32LE(4 + 8 * i), vs = b.readUInt32LE(8 + 8 * i);
    if (at + ks + 1 + vs + 1 > b.length) return null;
    const k = b.toString('utf8', at, at + ks); at += ks + 1;
    const v = b.toString('utf8', at, at + vs); at += vs + 1;
    out.push([k.toLowerCase(), v]);
  }
  return out;
}

// Shared is what Envoy shares between the VMs of one vm_id, synchronously: shared data
// (key -> {value, cas}) and queue names (cpp-host src/shared_data.cc, shared_queue.cc);
// and the metrics, which live in Envoy's stats scope.
class Shared {
  constructor() {
    this.data = new Map();
    this.nextCas = 1;
    this.queues = new Map();
    this.metrics = new Map(); // "type:name" -> {type, value (BigInt), count}
  }

  // metricValues are the metrics by name: counters' and gauges' values, histograms' counts.
  metricValues() {
    const out = {};
    for (const [key, m] of this.metrics) {
      out[key.slice(key.indexOf(':') + 1)] = m.type === METRIC_HISTOGRAM ? m.count : Number(m.value);
    }
    return out;
  }
}

class Host {
  // shared is the Shared of the VMs beside this one; a VM alone gets its own.
  constructor(env, configuration, shared) {
    this.env = env;
    this.configuration = configuration;
    this.vmConfiguration = Buffer.alloc(0);
    this.log = [];
    this.partial = { 1: '', 2: '' }; // what fd 1 and 2 got since their last newline
    this.shared = shared || new Shared();
    this.metricKeys = new Map(); // this VM's metric ids -> Shared.metrics keys
    this.nextMetricIds = [METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM];
    this.release = '1.33'; // or 'newest': where Envoy releases answer differently
    this.phase = 'starting'; // Envoy restricts imports while _initialize runs
    this.root = 0; // the plugin's root context, once started
    this.roots = new Set(); // every root context not yet deleted (retiring ones too)
    this.nextContext = 1;
    this.effective = 0; // the context the module acts for (proxy_set_effective_context)
    this.streams = new Map(); // context id -> stream (see runner.js)
    this.calls = new Map(); // token -> {base, method, path, authority, headers, body, timeout}
    this.nextToken = 1;
    this.callResponse = null; // {headers: [[k, v]], body: Buffer} during proxy_on_http_call_response
    this.tickMs = 0;
    this.clusters = new Map(); // name -> base URL
    this.allocating = false;
    this.configuring = false;
    // With timeImports(): calls per import, and the time spent in this host's functions.
    this.timing = false; // timeImports() was called
    this.counters = []; // {name, n, ns} per import
    this.importNs = 0n;
    this.mallocNs = 0n;
  }

  // timeImports counts the module's calls into the host and the time they take here.
  timeImports() {
    this.timing = true;
  }

  // takeImportCounts returns, per import called since the last take, the calls and the
  // time they took in this host: {name: [calls, ns]}.
  takeImportCounts() {
    const out = {};
    for (const c of this.counters) {
      if (c.n > 0) out[c.name] = [c.n, Number(c.ns)];
      c.n = 0;
      c.ns = 0n;
    }
    return out;
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

  // Views are made again after memory.grow, which detaches the old buffer.
  u8() {
    const buf = this.exports.memory.buffer;
    if (buf !== this.viewedBuffer) {
      this.viewedBuffer = buf;
      this.u8View = new Uint8Array(buf);
      this.dataView = new DataView(buf);
    }
    return this.u8View;
  }
  view() { this.u8(); return this.dataView; }
  read(ptr, len) { return Buffer.from(this.u8().subarray(ptr, ptr + len)); }
  text(ptr, len) { return utf8.decode(this.u8().subarray(ptr, ptr + len)); }

  // copyOut allocates in the module (Envoy's allocMemory) and writes data there, then
  // its address and size at ptrPtr and sizePtr. Nothing is allocated for no data.
  copyOut(data, ptrPtr, sizePtr) {
    return this.writeOut(data.length, (at) => this.u8().set(data, at), ptrPtr, sizePtr);
  }

  // writeOut is copyOut for size bytes that write(at) puts in the module's memory.
  writeOut(size, write, ptrPtr, sizePtr) {
    let ptr = 0;
    if (size > 0) {
      this.allocating = true;
      const began = this.timing ? process.hrtime.bigint() : 0n;
      try {
        ptr = this.malloc(size);
      } finally {
        this.allocating = false;
        if (this.timing) this.mallocNs += process.hrtime.bigint() - began;
      }
      if (ptr === 0) return INVALID_MEMORY_ACCESS;
      write(ptr);
    }
    const v = this.view();
    v.setUint32(ptrPtr, ptr, true);
    v.setUint32(sizePtr, size, true);
    return OK;
  }

  // headerMap is the list of pairs a map type names for the effective context, or null
  // when that map does not exist now (BadArgument, as the wazero host answers).
  // A stream's request headers can be read and changed until they go on (upstream, or
  // answered), its response headers likewise; Envoy's Context lets go of each map then
  // (source/extensions/common/wasm/context.cc, decodeHeaders and continueStream set
  // request_headers_ to nullptr). The wazero host's headerMapFor answers alike.
  headerMap(type) {
    if (type === 6) return this.callResponse ? this.callResponse.headers : null; // HttpCallResponseHeaders
    const stream = this.streams.get(this.effective);
    if (!stream) return null;
    if (type === 0 && stream.requestOpen) return stream.requestHeaders; // RequestHeaders
    if (type === 2 && stream.responseOpen) return stream.responseHeaders; // ResponseHeaders
    return null;
  }

  // buffer is the buffer a proxy_get_buffer_* type names now, or null.
  buffer(type) {
    const stream = this.streams.get(this.effective);
    if (type === 4 && this.callResponse) return this.callResponse.body; // HttpCallResponseBody
    if (type === 0 && stream && stream.requestBody) return stream.requestBody; // HttpRequestBody
    if (type === 1 && stream && stream.responseBody) return stream.responseBody; // HttpResponseBody
    if (type === VM_CONFIGURATION) return this.vmConfiguration;
    if (type === PLUGIN_CONFIGURATION && this.configuring) return this.configuration;
    return null;
  }

  // mutate changes a stream's header map in place with change, which edits it or returns
  // its new pairs (or a result code). The wazero host's mutateHeaders answers alike.
  mutate(type, change) {
    if (type > MAP_TYPE_MAX) return BAD_ARGUMENT;
    const m = this.headerMap(type);
    if (!m || type === 6) return BAD_ARGUMENT; // absent, or a call's answer (read-only)
    const out = change(m);
    if (typeof out === 'number') return out;
    if (Array.isArray(out)) m.splice(0, m.length, ...out);
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
    const r = run('_initialize', () => { if (e._initialize) e._initialize(); return true; });
    this.phase = 'running';
    if (!r.ok) return { started: false, step: r.step, trap: r.trap };
    return this.startRoot(this.configuration, true);
  }

  // startRoot creates a root context and configures the plugin in it (and, with vmStart,
  // starts the VM first), as cpp-host's WasmBase::start and configure do; the new root
  // becomes the plugin's only if all succeeds. A trap is reported, not thrown: the
  // caller decides whether the VM has failed.
  startRoot(configuration, vmStart) {
    const e = this.exports;
    const root = this.nextContext++;
    const run = (step, fn) => {
      try {
        return { ok: fn(), step };
      } catch (err) {
        return { ok: false, step, trap: String(err && err.message || err) };
      }
    };
    this.effective = root;
    this.roots.add(root);
    let r = run('proxy_on_context_create', () => { e.proxy_on_context_create(root, 0); return true; });
    if (r.ok && vmStart) r = run('proxy_on_vm_start', () => e.proxy_on_vm_start(root, this.vmConfiguration.length) !== 0);
    if (r.ok) {
      const before = this.configuration;
      this.configuration = configuration;
      this.configuring = true;
      r = run('proxy_on_configure', () => e.proxy_on_configure(root, configuration.length) !== 0);
      this.configuring = false;
      if (!r.ok) this.configuration = before;
    }
    if (r.ok) this.root = root;
    return r.ok ? { started: true, root } : { started: false, step: r.step, trap: r.trap };
  }

  // allowed is Envoy 1.33's rule for what a module may call at this moment.
  allowed(name) {
    if (this.allocating) {
      // cpp-host 94091cd (after 1.38) adds poll_oneoff, "for go runtime gc sleep".
      if (name === 'wasi_snapshot_preview1.poll_oneoff') return this.release === 'newest';
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
      const call = (...args) => {
        // Envoy restricts what a module may call while _initialize or the allocator runs.
        if ((this.allocating || this.phase !== 'running') && !this.allowed(name)) {
          throw new Trap(`restricted_callback: ${name} called ${this.allocating ? 'inside proxy_on_memory_allocate' : 'during _initialize'}`);
        }
        if (!fn) throw new Trap(`${name}: not given by this start host`);
        return fn(...args);
      };
      const counted = { name, n: 0, ns: 0n };
      // Timed (timeImports): the time in this host, less the module's allocator it calls.
      out[im.module][im.name] = (...args) => {
        if (!this.timing) return call(...args);
        const began = process.hrtime.bigint(), inMalloc = this.mallocNs;
        try {
          counted.n++;
          return call(...args);
        } finally {
          const ns = process.hrtime.bigint() - began - (this.mallocNs - inMalloc);
          counted.ns += ns;
          this.importNs += ns;
        }
      };
      this.counters.push(counted);
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
        // ENOSYS as Envoy 1.33 answers (cpp-host src/exports.cc, wasi_unstable_poll_oneoff
        // until 94091cd); the newest host writes 0 events and answers success.
        poll_oneoff: (_in, _out, _n, neventsPtr) => {
          if (h.release !== 'newest') return 52;
          h.view().setUint32(neventsPtr, 0, true);
          return 0;
        },
      }),
      ...proxy({
        log: (level, ptr, len) => { h.log.push(`${['trace', 'debug', 'info', 'warn', 'error', 'critical'][level] || level}: ${h.text(ptr, len)}`); return OK; },
        get_log_level: (ptr) => { h.view().setUint32(ptr, h.logLevel === undefined ? 1 : h.logLevel, true); return OK; },
        get_current_time_nanoseconds: (ptr) => { h.view().setBigUint64(ptr, BigInt(Date.now()) * 1000000n, true); return OK; },
        set_tick_period_milliseconds: (ms) => { h.tickMs = ms; if (h.onTickPeriod) h.onTickPeriod(ms); return OK; },
        set_effective_context: (id) => {
          if (id !== h.root && !h.roots.has(id) && !h.streams.has(id)) return BAD_ARGUMENT;
          h.effective = id;
          return OK;
        },
        get_header_map_pairs: (type, ptrPtr, sizePtr) => {
          if (type > MAP_TYPE_MAX) return BAD_ARGUMENT;
          const m = h.headerMap(type); // an absent map reads as no pairs
          if (!m || m.length === 0) return h.copyOut(Buffer.alloc(0), ptrPtr, sizePtr);
          const size = pairsSize(m);
          return h.writeOut(size, (at) => {
            const mem = h.u8();
            encodePairs(m, Buffer.from(mem.buffer, mem.byteOffset + at, size));
          }, ptrPtr, sizePtr);
        },
        get_header_map_value: (type, kPtr, kLen, ptrPtr, sizePtr) => {
          if (type > MAP_TYPE_MAX) return BAD_ARGUMENT;
          const m = h.headerMap(type);
          if (!m) return BAD_ARGUMENT;
          const key = h.text(kPtr, kLen).toLowerCase();
          const found = m.find(([k]) => k === key); // the first value, as Envoy's map get
          if (!found) return NOT_FOUND;
          return h.copyOut(Buffer.from(found[1]), ptrPtr, sizePtr);
        },
        add_header_map_value: (type, kPtr, kLen, vPtr, vLen) => h.mutate(type, (m) => {
          m.push([h.text(kPtr, kLen).toLowerCase(), h.text(vPtr, vLen)]);
        }),
        // Envoy's setCopy: every value of the key removed, then one added.
        replace_header_map_value: (type, kPtr, kLen, vPtr, vLen) => h.mutate(type, (m) => {
          const key = h.text(kPtr, kLen).toLowerCase();
          return [...m.filter(([k]) => k !== key), [key, h.text(vPtr, vLen)]];
        }),
        remove_header_map_value: (type, kPtr, kLen) => h.mutate(type, (m) => {
          const key = h.text(kPtr, kLen).toLowerCase();
          return m.filter(([k]) => k !== key);
        }),
        set_header_map_pairs: (type, ptr, len) => h.mutate(type, () => decodePairs(h.read(ptr, len)) || INVALID_MEMORY_ACCESS),
        send_local_response: (status, dPtr, dLen, bPtr, bLen, hPtr, hLen, _grpc) => {
          const stream = h.streams.get(h.effective);
          const headers = decodePairs(h.read(hPtr, hLen));
          if (!stream) return NOT_FOUND;
          if (!headers) return BAD_ARGUMENT;
          // Envoy sends the first reply; one asked for while a local reply passes through the
          // filter has nothing left to replace (e2e/envoyhost's requestLocalReply).
          if (!stream.localResponse && !stream.replying) {
            stream.localResponse = { status, details: h.text(dPtr, dLen), body: h.read(bPtr, bLen), headers };
          }
          return OK;
        },
        continue_stream: (type) => {
          const stream = h.streams.get(h.effective);
          if (!stream) return NOT_FOUND;
          if (type !== 0 && type !== 1) return BAD_ARGUMENT;
          stream.continued = true;
          return OK;
        },
        close_stream: () => {
          const stream = h.streams.get(h.effective);
          if (!stream) return NOT_FOUND;
          stream.closed = true;
          return OK;
        },
        http_call: (uPtr, uLen, hPtr, hLen, bPtr, bLen, tPtr, tLen, timeout, tokenPtr) => {
          const cluster = h.text(uPtr, uLen);
          const headers = decodePairs(h.read(hPtr, hLen));
          const trailers = decodePairs(h.read(tPtr, tLen));
          if (!headers || !trailers || !h.clusters.has(cluster) || timeout < 0) return BAD_ARGUMENT;
          const get = (k) => { const p = headers.find(([n]) => n === k); return p && p[1]; };
          const method = get(':method'), path = get(':path'), authority = get(':authority');
          if (!method || !path || !authority) return BAD_ARGUMENT;
          const token = h.nextToken++;
          h.calls.set(token, { base: h.clusters.get(cluster), method, path, authority, headers, body: h.read(bPtr, bLen), timeout });
          h.view().setUint32(tokenPtr, token, true);
          if (h.onCall) h.onCall(token);
          return OK;
        },
        done: () => (h.onDone && h.onDone() ? OK : NOT_FOUND), // a retiring root context may go
        get_buffer_status: (type, lenPtr, flagsPtr) => {
          if (type > BUFFER_TYPE_MAX) return BAD_ARGUMENT;
          const buf = h.buffer(type);
          if (!buf) return NOT_FOUND;
          h.view().setUint32(lenPtr, buf.length, true);
          h.view().setUint32(flagsPtr, 0, true);
          return OK;
        },
        // The bytes of a stream's own header map, names and values (Envoy's byteSize).
        get_header_map_size: (type, sizePtr) => {
          const m = type === 0 || type === 2 ? h.headerMap(type) : null;
          if (!m) return BAD_ARGUMENT;
          h.view().setUint32(sizePtr, m.reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0), true);
          return OK;
        },
        get_buffer_bytes: (type, start, max, ptrPtr, sizePtr) => {
          if (type > BUFFER_TYPE_MAX) return BAD_ARGUMENT;
          const buf = h.buffer(type);
          if (!buf) return NOT_FOUND;
          return h.copyOut(buf.subarray(start, start + max), ptrPtr, sizePtr);
        },
        get_property: (pathPtr, pathLen, ptrPtr, sizePtr) => {
          const path = h.text(pathPtr, pathLen).split('\0').filter(Boolean).join('.');
          const props = { plugin_name: 'entra-auth', plugin_root_id: '', plugin_vm_id: 'entra-auth' };
          if (!(path in props)) return NOT_FOUND;
          return h.copyOut(Buffer.from(props[path]), ptrPtr, sizePtr);
        },
        get_shared_data: (kPtr, kLen, ptrPtr, sizePtr, casPtr) => {
          const entry = h.shared.data.get(h.text(kPtr, kLen));
          if (!entry) return NOT_FOUND;
          const r = h.copyOut(entry.value, ptrPtr, sizePtr);
          if (r === OK) h.view().setUint32(casPtr, entry.cas, true);
          return r;
        },
        set_shared_data: (kPtr, kLen, vPtr, vLen, cas) => {
          const key = h.text(kPtr, kLen);
          const entry = h.shared.data.get(key);
          if (cas !== 0 && (!entry || entry.cas !== cas)) return CAS_MISMATCH;
          h.shared.data.set(key, { value: h.read(vPtr, vLen), cas: h.shared.nextCas++ });
          return OK;
        },
        register_shared_queue: (nPtr, nLen, idPtr) => {
          const name = h.text(nPtr, nLen);
          const queues = h.shared.queues;
          if (!queues.has(name)) queues.set(name, queues.size + 1);
          h.view().setUint32(idPtr, queues.get(name), true);
          return OK;
        },
        // Metrics as Envoy keeps them (source/extensions/common/wasm/context.cc,
        // Context::defineMetric, incrementMetric, recordMetric, getMetric): one value per
        // type and name for the process, ids per VM with the type in their low two bits.
        define_metric: (type, nPtr, nLen, idPtr) => {
          if (type > METRIC_HISTOGRAM) return BAD_ARGUMENT;
          const key = `${type}:${h.text(nPtr, nLen)}`;
          if (!h.shared.metrics.has(key)) h.shared.metrics.set(key, { type, value: 0n, count: 0 });
          const id = h.nextMetricIds[type];
          h.nextMetricIds[type] += METRIC_ID_STEP;
          h.metricKeys.set(id, key);
          h.view().setUint32(idPtr, id, true);
          return OK;
        },
        increment_metric: (id, offset) => {
          const key = h.metricKeys.get(id), type = id & METRIC_TYPE_MASK;
          if (!key) return type === METRIC_HISTOGRAM ? BAD_ARGUMENT : NOT_FOUND;
          const m = h.shared.metrics.get(key);
          if (type === METRIC_HISTOGRAM || (type === METRIC_COUNTER && offset <= 0n)) return BAD_ARGUMENT; // counters only go up
          m.value += offset;
          return OK;
        },
        record_metric: (id, value) => {
          const key = h.metricKeys.get(id);
          if (!key) return NOT_FOUND;
          const m = h.shared.metrics.get(key);
          if (m.type === METRIC_COUNTER) m.value += value;
          else if (m.type === METRIC_GAUGE) m.value = value;
          else m.count++;
          return OK;
        },
        get_metric: (id, ptr) => {
          const key = h.metricKeys.get(id), type = id & METRIC_TYPE_MASK;
          if (type === METRIC_HISTOGRAM) return BAD_ARGUMENT;
          if (!key) return NOT_FOUND;
          h.view().setBigUint64(ptr, BigInt.asUintN(64, h.shared.metrics.get(key).value), true);
          return OK;
        },
        get_status: () => UNIMPLEMENTED,
      }),
    };
  }
}


module.exports = { Host, Shared, Trap, encodePairs, decodePairs, OK, NOT_FOUND, BAD_ARGUMENT, CAS_MISMATCH, UNIMPLEMENTED };
