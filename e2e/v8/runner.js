// runner.js serves HTTP through a Proxy-Wasm module in Node's V8, with Envoy's flags and
// Envoy 1.33's answers (host.js): the V8 counterpart of e2e/cmd/wasmhost, for the
// end-to-end tests.
//
//   node --no-liftoff --no-wasm-lazy-compilation --wasm-max-mem-pages=16384 e2e/v8/runner.js \
//     -wasm M.wasm -config plugin.json -listen 127.0.0.1:0 -upstream URL -cluster NAME=URL \
//     -env KEY[=VALUE] [-concurrency N] [-log-level L] [-tls-cert F -tls-key F] [-envoy 1.33|newest]
//     [-failure-policy FAIL_CLOSED|FAIL_OPEN|FAIL_RELOAD] [-use-remote-address]
//     [-xff-num-trusted-hops N] [-stream-idle-timeout 5m] [-vm-config F] [-timings]
//
// It prints "listening on ADDR" once it serves, and exits 1 with the filter's error when
// the plugin refuses to start. As Envoy does (and e2e/envoyhost): a canary VM starts the
// plugin first and is destroyed; then the main thread's VM and one VM per worker
// (-concurrency), sharing shared data and queues synchronously; each connection stays
// with one worker. SIGHUP reads -config again and pushes it: a canary tries it, and a
// configuration it refuses leaves the old one in place ("configuration push refused").
// Request and response bodies are buffered whole, so each body callback is called once.
// -timings adds GET /__v8/timings, answered by the runner, not the filter (for the
// benchmarks): per stream ended since the last ask, the time in the module's callbacks
// (ns) and, of that, in this host's functions (host_ns); per import, its calls and their
// time in this host; the
// largest linear memory of the VMs; the module's metrics, as Envoy's stats would show.
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const { Host, Shared } = require('./host');

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'critical'];
const POLICIES = ['FAIL_CLOSED', 'FAIL_OPEN', 'FAIL_RELOAD'];
const CONTINUE = 0;
const BOOLS = new Set(['use-remote-address', 'timings']);

// Hop-by-hop headers, which Envoy's codecs do not pass to filters (the same list as
// e2e/envoyhost's hopByHop).
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer',
  'upgrade', 'proxy-authenticate']);

// Request headers Envoy stores inline and so merges when repeated, joined by ","
// (envoy/http/header_map.h; HeaderMapImpl::insertByKey); e2e/envoyhost's
// mergedWhenRepeated says more.
const MERGED = new Set(['authorization', 'content-type', 'expect', 'te', 'user-agent', 'via', 'x-client-trace-id',
  'x-forwarded-client-cert', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id', 'grpc-timeout',
  'x-envoy-downstream-service-cluster', 'x-envoy-downstream-service-node', 'x-envoy-external-address',
  'x-envoy-force-trace', 'x-envoy-internal', 'x-envoy-ip-tags', 'x-envoy-original-path', 'x-envoy-original-url',
  'x-envoy-retry-on', 'x-envoy-retry-grpc-on', 'x-envoy-retriable-status-codes', 'x-envoy-retriable-header-names',
  'x-envoy-hedge-on-per-try-timeout', 'x-envoy-upstream-alt-stat-name', 'x-envoy-upstream-rq-timeout-alt-response']);

// duration parses a Go duration such as 5m, 300ms or 0.
function duration(text) {
  if (text === '0') return 0;
  const units = { ms: 1, s: 1000, m: 60000, h: 3600000 };
  let ms = 0, rest = text;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) throw new Error(`${text}: want a duration such as 300ms, 5s or 5m`);
    ms += Number(m[1]) * units[m[2]];
    rest = rest.slice(m[0].length);
  }
  return ms;
}

function flagBool(flag, value) {
  if (value !== 'true' && value !== 'false') throw new Error(`-${flag} ${value}: want true or false`);
  return value === 'true';
}

function parseFlags(argv) {
  const o = { clusters: new Map(), env: [], concurrency: 2, logLevel: 'info', listen: '127.0.0.1:8080',
    release: '1.33', failurePolicy: 'FAIL_CLOSED', useRemoteAddress: false, trustedHops: 0, idleTimeoutMs: 300000 };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].replace(/^--?/, '').split(/=(.*)/s);
    // As Go's flag package: a boolean flag alone is true; others take the next argument.
    const value = inline !== undefined ? inline : BOOLS.has(flag) ? 'true' : argv[++i];
    if (value === undefined) throw new Error(`flag -${flag} needs a value`);
    switch (flag) {
      case 'wasm': o.wasm = value; break;
      case 'config': o.config = value; break;
      case 'vm-config': o.vmConfig = value; break;
      case 'listen': o.listen = value; break;
      case 'upstream': o.upstream = value; break;
      case 'concurrency':
        o.concurrency = Number(value);
        if (!Number.isInteger(o.concurrency) || o.concurrency < 1) throw new Error(`-concurrency ${value}: want 1 or more`);
        break;
      case 'log-level': o.logLevel = value; break;
      case 'envoy':
        if (value !== '1.33' && value !== 'newest') throw new Error(`-envoy ${value}: want 1.33 or newest`);
        o.release = value;
        break;
      case 'failure-policy':
        if (!POLICIES.includes(value)) throw new Error(`-failure-policy ${value}: want one of ${POLICIES.join(', ')}`);
        o.failurePolicy = value;
        break;
      case 'use-remote-address': o.useRemoteAddress = flagBool(flag, value); break;
      case 'xff-num-trusted-hops': o.trustedHops = Number(value); break;
      case 'stream-idle-timeout': o.idleTimeoutMs = duration(value); break;
      case 'timings': o.timings = flagBool(flag, value); break;
      case 'tls-cert': o.tlsCert = value; break;
      case 'tls-key': o.tlsKey = value; break;
      case 'cluster': {
        const eq = value.indexOf('=');
        if (eq <= 0) throw new Error(`-cluster ${value}: want NAME=URL`);
        o.clusters.set(value.slice(0, eq), value.slice(eq + 1).replace(/\/$/, ''));
        break;
      }
      case 'env': {
        const eq = value.indexOf('=');
        if (eq < 0) {
          if (process.env[value] !== undefined) o.env.push(`${value}=${process.env[value]}`);
        } else {
          o.env.push(value);
        }
        break;
      }
      default: throw new Error(`unknown flag -${flag}`);
    }
  }
  if (!o.wasm || !o.upstream) throw new Error('-wasm and -upstream are required');
  if (!LEVELS.includes(o.logLevel)) throw new Error(`-log-level ${o.logLevel}: want one of ${LEVELS.join(', ')}`);
  if (!!o.tlsCert !== !!o.tlsKey) throw new Error('-tls-cert and -tls-key go together');
  if (!Number.isInteger(o.trustedHops) || o.trustedHops < 0 || (o.trustedHops > 0 && !o.useRemoteAddress)) {
    throw new Error('-xff-num-trusted-hops: a number of 0 or more, with -use-remote-address');
  }
  return o;
}

// A VM is one instance of the module with its own host state; the runner's VMs share
// one Shared.
class VM {
  constructor(runner, name, configuration) {
    const o = runner.o;
    this.runner = runner;
    this.name = name;
    this.host = new Host(o.env, configuration, runner.shared);
    this.host.vmConfiguration = runner.vmConfiguration;
    this.host.clusters = o.clusters;
    this.host.release = o.release;
    this.host.logLevel = runner.minLevel;
    this.host.log = { push: (line) => runner.logLine(this, line) };
    this.host.onTickPeriod = (ms) => this.setTicks(ms);
    this.host.onCall = (token) => {
      const c = this.host.calls.get(token);
      const stream = this.host.streams.get(this.host.effective);
      c.root = stream ? stream.root : this.host.effective; // cpp-host: the call belongs to the root context
      c.stream = stream;
      setImmediate(() => this.dispatch(token));
    };
    this.host.onDone = () => this.done();
    if (o.timings) this.host.timeImports();
    const instance = new WebAssembly.Instance(runner.module, this.host.imports(runner.module));
    this.host.bind(instance);
    this.e = instance.exports;
    this.failed = null;
    this.dead = false; // destroyed (the canary): nothing more reaches it
    this.retiring = new Set(); // old root contexts whose proxy_on_done answered "not yet"
  }

  memoryBytes() { return this.e.memory.buffer.byteLength; }

  start() {
    this.starting = [];
    const r = this.host.start();
    this.host.flush();
    const logged = this.starting.join('; ');
    this.starting = null;
    if (!r.started) {
      if (r.trap) this.failed = new Error(r.trap);
      throw new Error(`failed ${r.step}${r.trap ? ': ' + r.trap : ''}${logged ? '; the module logged: ' + logged : ''}`);
    }
  }

  // reconfigure starts a root context with configuration and retires the old one, as
  // Envoy does on every VM after a push; a refusal leaves the old root in place.
  reconfigure(configuration) {
    const old = this.host.root;
    this.starting = [];
    const r = this.host.startRoot(configuration, false);
    this.host.flush();
    const logged = this.starting.join('; ');
    this.starting = null;
    this.settle();
    if (!r.started) {
      if (r.trap) this.fail(new Error(r.trap));
      throw new Error(`failed ${r.step}${r.trap ? ': ' + r.trap : ''}${logged ? '; the module logged: ' + logged : ''}`);
    }
    const finished = this.call(old, () => this.e.proxy_on_done(old));
    if (finished) this.deleteRoot(old);
    else this.retiring.add(old);
  }

  deleteRoot(root) {
    this.retiring.delete(root);
    this.call(root, () => this.e.proxy_on_delete(root));
    this.host.roots.delete(root);
    for (const [token, c] of this.host.calls) if (c.root === root) this.host.calls.delete(token);
  }

  // done is proxy_done: a retiring root context may now be deleted (after the callback).
  done() {
    const root = this.host.effective;
    if (!this.retiring.has(root)) return false;
    setImmediate(() => this.deleteRoot(root));
    return true;
  }

  // kill destroys the VM as Envoy destroys its canary: no proxy_on_done or
  // proxy_on_delete; its ticks stop and its dispatched calls never answer.
  kill() {
    this.dead = true;
    clearInterval(this.ticker);
    this.host.calls.clear();
  }

  fail(err) {
    if (this.failed) return;
    this.failed = err;
    clearInterval(this.ticker);
    process.stderr.write(`[v8 ${this.name}] the VM failed: ${err && err.stack || err}\n`);
  }

  // call runs one module callback for a context, adding the time it took to the stream
  // it was for (timings); a trap fails the VM, as in Envoy.
  call(context, fn, forStream) {
    if (this.failed || this.dead) return 0;
    this.host.effective = context;
    const began = process.hrtime.bigint(), hostBefore = this.host.importNs;
    try {
      return fn();
    } catch (err) {
      this.fail(err);
      return 0;
    } finally {
      const stream = forStream || this.host.streams.get(context);
      if (stream) {
        stream.vmNs += process.hrtime.bigint() - began;
        stream.hostNs += this.host.importNs - hostBefore;
      }
      this.host.flush();
      this.settle();
    }
  }

  // callback calls the module's export name for a stream, or answers Continue when the
  // module does not export it, as cpp-host does (src/context.cc: ContextBase::onLog,
  // onResponseBody and the others return early when the export is absent).
  callback(name, id, ...args) {
    const fn = this.e[name];
    if (!fn) return CONTINUE;
    return this.call(id, () => fn(id, ...args));
  }

  // settle wakes the streams a callback resumed or answered.
  settle() {
    for (const stream of this.host.streams.values()) {
      if (stream.wake && (stream.continued || stream.localResponse || this.failed)) {
        const wake = stream.wake;
        stream.wake = null;
        wake();
      }
    }
  }

  setTicks(ms) {
    clearInterval(this.ticker);
    if (ms > 0 && !this.dead) {
      this.ticker = setInterval(() => this.call(this.host.root, () => this.e.proxy_on_tick(this.host.root)), ms);
    }
  }

  // dispatch makes a proxy_http_call over loopback HTTP and hands the answer to the root
  // context that made it, or Envoy's own 503 (no connection) or 504 (timeout).
  dispatch(token) {
    const c = this.host.calls.get(token);
    if (!c) return;
    const url = new URL(c.base + c.path);
    const headers = { host: c.authority };
    for (const [k, v] of c.headers) if (!k.startsWith(':')) headers[k] = v;
    let finished = false;
    const finish = (status, hdrs, body) => {
      if (finished) return;
      finished = true;
      if (!this.host.calls.delete(token) || this.dead) return; // the root context is gone
      this.host.callResponse = { headers: [[':status', String(status)], ...hdrs], body };
      const n = this.host.callResponse.headers.length;
      this.call(c.root, () => this.e.proxy_on_http_call_response(c.root, token, n, body.length, 0),
        c.stream && this.host.streams.get(c.stream.id) === c.stream ? c.stream : null);
      this.host.callResponse = null;
    };
    const local = (status, text) => finish(status, [['content-length', String(text.length)], ['content-type', 'text/plain']], Buffer.from(text));
    const req = (url.protocol === 'https:' ? https : http).request(url, { method: c.method, headers }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        const hdrs = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          const k = res.rawHeaders[i].toLowerCase();
          if (!HOP_BY_HOP.has(k)) hdrs.push([k, res.rawHeaders[i + 1]]);
        }
        finish(res.statusCode, hdrs, Buffer.concat(parts));
      });
    });
    if (c.timeout > 0) req.setTimeout(c.timeout, () => { req.destroy(); local(504, 'upstream request timeout'); });
    req.on('error', (err) => local(503, `upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: ${err.message}`));
    req.end(c.body);
  }
}

class Runner {
  constructor(o) {
    this.o = o;
    this.minLevel = LEVELS.indexOf(o.logLevel);
    this.configuration = o.config ? fs.readFileSync(o.config) : Buffer.alloc(0);
    this.vmConfiguration = o.vmConfig ? fs.readFileSync(o.vmConfig) : Buffer.alloc(0);
    this.shared = new Shared();
    this.module = new WebAssembly.Module(fs.readFileSync(o.wasm));
    this.workers = [];
    this.nextWorker = 0;
    this.timings = [];
  }

  logLine(vm, line) {
    const level = LEVELS.indexOf(line.slice(0, line.indexOf(':')));
    if (vm.starting) vm.starting.push(line);
    if (level < 0 || level >= this.minLevel) process.stderr.write(`[v8 ${vm.name}] ${line}\n`);
  }

  // start runs Envoy's order (cpp-host createWasm and WasmHandleBase::canary; Envoy's
  // PluginConfig): a canary VM starts the plugin and is destroyed, then the main
  // thread's VM and each worker's start.
  start() {
    this.canary(this.configuration);
    this.main = new VM(this, 'main', this.configuration);
    this.main.start();
    for (let i = 0; i < this.o.concurrency; i++) this.workers.push(this.startWorker(i));
  }

  startWorker(i) {
    const vm = new VM(this, `worker ${i}`, this.configuration);
    vm.start();
    vm.loadedAt = Date.now();
    return vm;
  }

  canary(configuration) {
    const vm = new VM(this, 'canary', configuration);
    try {
      vm.start();
    } catch (err) {
      throw new Error(`wasm VM canary: ${err.message}`);
    } finally {
      vm.kill();
    }
  }

  // push is a configuration push (SIGHUP): the canary first, then every VM.
  push() {
    let configuration;
    try {
      configuration = this.o.config ? fs.readFileSync(this.o.config) : Buffer.alloc(0);
      this.canary(configuration);
    } catch (err) {
      process.stderr.write(`runner.js: configuration push refused, the old configuration stays: ${err.message}\n`);
      return;
    }
    this.configuration = configuration;
    const errors = [];
    for (const vm of [this.main, ...this.workers]) {
      try {
        vm.reconfigure(configuration);
      } catch (err) {
        errors.push(`wasm VM ${vm.name}: ${err.message}`);
      }
    }
    if (errors.length > 0) {
      process.stderr.write(`runner.js: configuration push refused, the old configuration stays: ${errors.join('; ')}\n`);
      return;
    }
    process.stderr.write('runner.js: configuration pushed\n');
  }

  // worker is the VM of a connection's worker; under FAIL_RELOAD a failed VM is replaced
  // at most once a second (Envoy's PluginConfig::maybeReloadHandleIfNeeded).
  worker(i) {
    const vm = this.workers[i];
    if (this.o.failurePolicy !== 'FAIL_RELOAD' || !vm.failed || Date.now() - vm.loadedAt < 1000) return vm;
    vm.loadedAt = Date.now();
    try {
      const fresh = this.startWorker(i);
      this.workers[i] = fresh;
      process.stderr.write(`[v8 ${fresh.name}] the failed VM was replaced (failure_policy FAIL_RELOAD)\n`);
      return fresh;
    } catch (err) {
      process.stderr.write(`[v8 ${vm.name}] reloading the failed VM: ${err.message}\n`);
      return vm;
    }
  }

  // requestHeaders builds the header map a filter sees, as Envoy's codec and connection
  // manager make it (ConnectionManagerUtility::mutateRequestHeaders), in the order the
  // client sent them: e2e/envoyhost's requestHeaderMap says what each step is.
  requestHeaders(req) {
    const connScheme = this.o.tlsCert ? 'https' : 'http';
    const m = [[':authority', req.headers.host || ''], [':path', req.url], [':method', req.method]];
    const at = new Map();
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i].toLowerCase(), v = req.rawHeaders[i + 1];
      if (k === 'host' || HOP_BY_HOP.has(k)) continue;
      if (at.has(k) && MERGED.has(k)) {
        m[at.get(k)][1] += ',' + v;
        continue;
      }
      if (!at.has(k)) at.set(k, m.length);
      m.push([k, v]);
    }
    const get = (k) => { const p = m.find(([n]) => n === k); return p && p[1]; };
    const replace = (k, v) => { const i = m.findIndex(([n]) => n === k); if (i >= 0) m[i][1] = v; else m.push([k, v]); };
    if (this.o.useRemoteAddress) {
      let peer = req.socket.remoteAddress.replace(/^::ffff:/, '');
      if (peer === '127.0.0.1' || peer === '::1') peer = req.socket.localAddress.replace(/^::ffff:/, '');
      const xff = get('x-forwarded-for');
      replace('x-forwarded-for', xff ? `${xff},${peer}` : peer);
      if (get('x-forwarded-proto') === undefined || this.o.trustedHops === 0) replace('x-forwarded-proto', connScheme);
    }
    if (get('x-forwarded-proto') === undefined) m.push(['x-forwarded-proto', connScheme]);
    const xfp = get('x-forwarded-proto');
    m.splice(3, 0, [':scheme', xfp === 'http' || xfp === 'https' ? xfp : connScheme]);
    if (get('x-request-id') === undefined) m.push(['x-request-id', crypto.randomUUID()]);
    return m;
  }

  async serve(req, res) {
    const parts = [];
    for await (const d of req) parts.push(d);
    const body = Buffer.concat(parts);
    if (this.o.timings && req.url === '/__v8/timings') return this.answerTimings(res);
    const requestHeaders = this.requestHeaders(req);
    // Envoy's default max_request_headers_kb (60 KiB, http_connection_manager.proto):
    // the codec answers 431 when the header map's names and values exceed it.
    if (requestHeaders.reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0) > 60 * 1024) {
      return this.reply(res, 431, [['content-type', 'text/plain']], Buffer.from('Request Header Fields Too Large'));
    }
    const vm = this.worker(req.socket.worker);
    const out = await new StreamRun(this, vm, requestHeaders, body).run();
    if (out.reset) return res.destroy();
    this.reply(res, out.status, out.headers, out.body);
  }

  forward(headers, body) {
    const get = (k) => (headers.find(([n]) => n === k) || [])[1];
    const url = new URL(this.o.upstream.replace(/\/$/, '') + get(':path'));
    const out = {};
    for (const [k, v] of headers) {
      if (k.startsWith(':') || k === 'content-length') continue;
      out[k] = out[k] === undefined ? v : [].concat(out[k], v);
    }
    out.host = get(':authority');
    return new Promise((resolve) => {
      const req = http.request(url, { method: get(':method'), headers: out }, (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => {
          const hdrs = [[':status', String(res.statusCode)]];
          for (let i = 0; i < res.rawHeaders.length; i += 2) {
            const k = res.rawHeaders[i].toLowerCase();
            if (!HOP_BY_HOP.has(k)) hdrs.push([k, res.rawHeaders[i + 1]]);
          }
          resolve({ headers: hdrs, body: Buffer.concat(parts) });
        });
      });
      req.on('error', (err) => resolve({ local: { status: 503,
        body: `upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: ${err.message}` } }));
      req.end(body);
    });
  }

  answerTimings(res) {
    const vms = [this.main, ...this.workers];
    const imports = {};
    for (const vm of vms) {
      for (const [name, [n, ns]] of Object.entries(vm.host.takeImportCounts())) {
        const sum = imports[name] || (imports[name] = { calls: 0, ns: 0 });
        sum.calls += n;
        sum.ns += ns;
      }
    }
    const body = Buffer.from(JSON.stringify({ ns: this.timings.map(([vm]) => vm), host_ns: this.timings.map(([, host]) => host),
      imports, memory_bytes: Math.max(...vms.map((vm) => vm.memoryBytes())), metrics: this.shared.metricValues() }));
    this.timings = [];
    this.reply(res, 200, [['content-type', 'application/json']], body);
  }

  reply(res, status, headers, body) {
    const out = {};
    for (const [k, v] of headers) {
      if (k === 'content-length' || k.startsWith(':')) continue;
      out[k] = out[k] === undefined ? v : [].concat(out[k], v);
    }
    out['content-length'] = String(body.length);
    res.writeHead(status, out);
    res.end(body);
  }
}

// A StreamRun takes one request through a VM's filter and the upstream, as Envoy's filter
// manager does with one filter: request headers, then the body; what the filter does not
// stop goes upstream; the answer comes back through the response callbacks. A callback
// answered other than Continue holds the stream until proxy_continue_stream; a local
// reply asked for before the upstream answered passes through the response callbacks,
// and one asked for in them replaces the upstream's answer. e2e/envoyhost's stream.go
// has the same rules, frame by frame.
class StreamRun {
  constructor(runner, vm, requestHeaders, body) {
    this.runner = runner;
    this.vm = vm;
    this.body = body;
    const h = vm.host;
    this.id = h.nextContext++;
    this.s = { id: this.id, root: h.root, requestHeaders, responseHeaders: null, requestBody: null, responseBody: null,
      localResponse: null, continued: false, wake: null, vmNs: 0n, hostNs: 0n, replying: false,
      requestOpen: true, responseOpen: false }; // which header maps the filter may still touch
  }

  async run() {
    const { vm, s, id } = this;
    if (vm.failed && this.runner.o.failurePolicy === 'FAIL_OPEN') return this.upstream(true);
    if (vm.failed) return this.failed();
    vm.host.streams.set(id, s);
    try {
      vm.callback('proxy_on_context_create', id, s.root);
      let r = vm.callback('proxy_on_request_headers', id, s.requestHeaders.length, this.body.length === 0 ? 1 : 0);
      const went = await this.proceed(r);
      s.requestOpen = false; // the headers went on, or the stream was answered
      if (!went) return await this.answered(); // awaited: the finally block ends the stream
      if (this.body.length > 0) {
        s.requestBody = this.body;
        r = vm.callback('proxy_on_request_body', id, this.body.length, 1);
        s.requestBody = null;
        if (!(await this.proceed(r))) return await this.answered(); // awaited: the finally block ends the stream
      }
      return await this.upstream(false);
    } finally {
      for (const cb of ['proxy_on_log', 'proxy_on_done', 'proxy_on_delete']) vm.callback(cb, id);
      vm.host.streams.delete(id);
      if (this.runner.o.timings) this.runner.timings.push([Number(s.vmNs), Number(s.hostNs)]);
    }
  }

  // proceed waits, when the callback's answer r holds the stream, until it goes on; it is
  // false when the stream was answered instead (a local reply, a failed VM, idling).
  async proceed(r) {
    const { vm, s } = this;
    if (vm.failed || s.localResponse) return false;
    if (r === CONTINUE || s.continued) { // a continue inside the callback takes effect after it
      s.continued = false;
      return true;
    }
    const idleMs = this.runner.o.idleTimeoutMs;
    let timer;
    await new Promise((resolve) => {
      s.wake = resolve;
      // Envoy's stream_idle_timeout: 408 "stream timeout", through the filter.
      if (idleMs > 0) timer = setTimeout(() => { s.wake = null; s.idled = true; resolve(); }, idleMs);
    });
    clearTimeout(timer);
    s.continued = false;
    if (s.idled) {
      s.localResponse = { status: 408, headers: [], body: Buffer.from('stream timeout') };
      return false;
    }
    return !vm.failed && !s.localResponse;
  }

  // answered is the stream's end before the upstream: a failed VM's answer, or a local
  // reply passed through the response callbacks.
  answered() {
    if (this.vm.failed) return this.runner.o.failurePolicy === 'FAIL_OPEN' ? this.upstream(true) : this.failed();
    return this.throughResponse(this.localHeaders(this.s.localResponse), this.s.localResponse.body, true);
  }

  failed() {
    return { status: 503, headers: [['content-type', 'text/plain']], body: Buffer.alloc(0) };
  }

  localHeaders(r) {
    const headers = [[':status', String(r.status)], ...r.headers.filter(([k]) => k !== 'content-length')];
    if (r.body.length > 0) {
      headers.push(['content-length', String(r.body.length)]);
      if (!headers.some(([k]) => k === 'content-type')) headers.push(['content-type', 'text/plain']);
    }
    return headers;
  }

  async upstream(bypass) {
    const got = await this.runner.forward(this.s.requestHeaders, this.body);
    if (got.local) {
      const r = { status: got.local.status, headers: [], body: Buffer.from(got.local.body) };
      return bypass ? this.final(this.localHeaders(r), r.body) : this.throughResponse(this.localHeaders(r), r.body, true);
    }
    if (bypass) return this.final(got.headers, got.body);
    return this.throughResponse(got.headers, got.body, false);
  }

  // throughResponse runs response headers and body through the filter. A local reply's
  // own local replies are ignored (Envoy sends the first); one asked for while the
  // upstream's answer passes replaces it, without the filter.
  async throughResponse(headers, body, local) {
    const { vm, s, id } = this;
    s.responseHeaders = headers;
    s.responseOpen = true;
    s.replying = local;
    s.localResponse = null;
    let r = vm.callback('proxy_on_response_headers', id, headers.length, body.length === 0 ? 1 : 0);
    const went = await this.proceed(r);
    s.responseOpen = false;
    if (!went) return this.afterResponseStopped(local);
    if (body.length > 0) {
      s.responseBody = body;
      r = vm.callback('proxy_on_response_body', id, body.length, 1);
      if (!(await this.proceed(r))) return this.afterResponseStopped(local);
      body = s.responseBody;
    }
    return this.final(s.responseHeaders, body);
  }

  afterResponseStopped(local) {
    const { vm, s } = this;
    if (vm.failed) return this.runner.o.failurePolicy === 'FAIL_OPEN' ? this.final(s.responseHeaders, s.responseBody || Buffer.alloc(0)) : { reset: true };
    if (s.localResponse && !local) return this.final(this.localHeaders(s.localResponse), s.localResponse.body);
    return { reset: true };
  }

  final(headers, body) {
    const status = Number((headers.find(([k]) => k === ':status') || [])[1] || 502);
    return { status, headers, body };
  }
}

function main() {
  let o;
  try {
    o = parseFlags(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`runner.js: ${err.message}\n`);
    process.exit(2);
  }
  let runner;
  try {
    runner = new Runner(o);
    runner.start();
  } catch (err) {
    process.stderr.write(`runner.js: ${err.message}\n`);
    process.exit(1);
  }
  const handler = (req, res) => runner.serve(req, res).catch((err) => {
    process.stderr.write(`[v8] ${err && err.stack || err}\n`);
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
  // Node's own limit (16 KiB) raised above Envoy's 60 KiB, which serve() applies as
  // Envoy counts.
  const limits = { maxHeaderSize: 96 * 1024 };
  const server = o.tlsCert
    ? https.createServer({ ...limits, cert: fs.readFileSync(o.tlsCert), key: fs.readFileSync(o.tlsKey) }, handler)
    : http.createServer(limits, handler);
  // Envoy's listener hands each connection to one worker, whose VM serves all its streams.
  server.on(o.tlsCert ? 'secureConnection' : 'connection', (socket) => {
    socket.worker = runner.nextWorker++ % o.concurrency;
  });
  const colon = o.listen.lastIndexOf(':');
  server.listen(Number(o.listen.slice(colon + 1)), o.listen.slice(0, colon).replace(/^\[|\]$/g, ''), () => {
    const a = server.address();
    process.stdout.write(`listening on ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}\n`);
  });
  process.on('SIGHUP', () => runner.push());
  const stop = () => { server.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main();
