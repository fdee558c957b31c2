// runner.js serves HTTP through a Proxy-Wasm module in Node's V8, with Envoy's flags and
// Envoy 1.33's answers (host.js): the V8 counterpart of e2e/cmd/wasmhost, for the
// end-to-end tests.
//
//   node --no-liftoff --no-wasm-lazy-compilation --wasm-max-mem-pages=16384 e2e/v8/runner.js \
//     -wasm M.wasm -config plugin.json -listen 127.0.0.1:0 -upstream URL -cluster NAME=URL \
//     -env KEY[=VALUE] [-concurrency N] [-log-level L] [-tls-cert F -tls-key F] [-envoy 1.33|newest]
//
// It prints "listening on ADDR" once it serves, and exits 1 with the filter's error when
// the plugin refuses to start. So far it runs one VM whatever -concurrency says, and
// gives each stream the request's headers and the upstream's response headers; it does
// not yet run the canary VM, call the body callbacks, merge repeated headers as Envoy
// does, or answer as a failed VM's failure_policy would (issue 13 continues).
'use strict';

const fs = require('fs');
const http = require('http');
const https = require('https');
const crypto = require('crypto');
const { Host } = require('./host');

const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'critical'];

function parseFlags(argv) {
  const o = { clusters: new Map(), env: [], concurrency: 2, logLevel: 'info', listen: '127.0.0.1:8080' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i].replace(/^--?/, '');
    const value = argv[++i];
    if (value === undefined) throw new Error(`flag -${flag} needs a value`);
    switch (flag) {
      case 'wasm': o.wasm = value; break;
      case 'config': o.config = value; break;
      case 'listen': o.listen = value; break;
      case 'upstream': o.upstream = value; break;
      case 'concurrency': o.concurrency = Number(value); break;
      case 'log-level': o.logLevel = value; break;
      case 'envoy':
        if (value !== '1.33' && value !== 'newest') throw new Error(`-envoy ${value}: want 1.33 or newest`);
        o.release = value;
        break;
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
  return o;
}

class Runner {
  constructor(o) {
    this.o = o;
    this.minLevel = LEVELS.indexOf(o.logLevel);
    const configuration = o.config ? fs.readFileSync(o.config) : Buffer.alloc(0);
    this.host = new Host(o.env, configuration);
    this.host.clusters = o.clusters;
    this.host.release = o.release || '1.33';
    this.host.logLevel = this.minLevel;
    this.startLog = [];
    this.host.log = { push: (line) => this.logLine(line) };
    this.host.onTickPeriod = (ms) => this.setTicks(ms);
    this.host.onCall = (token) => setImmediate(() => this.dispatch(token));
    const module = new WebAssembly.Module(fs.readFileSync(o.wasm));
    const instance = new WebAssembly.Instance(module, this.host.imports(module));
    this.host.bind(instance);
    this.e = instance.exports;
    this.failed = null;
  }

  logLine(line) {
    const level = LEVELS.indexOf(line.slice(0, line.indexOf(':')));
    if (this.starting) this.startLog.push(line);
    if (level < 0 || level >= this.minLevel) process.stderr.write(`[v8] ${line}\n`);
  }

  start() {
    this.starting = true;
    const r = this.host.start();
    this.host.flush();
    this.starting = false;
    if (!r.started) {
      const logged = this.startLog.join('; ');
      throw new Error(`failed ${r.step}${r.trap ? ': ' + r.trap : ''}${logged ? '; the module logged: ' + logged : ''}`);
    }
  }

  // call runs one module callback for a context; a trap fails the VM, as in Envoy.
  call(context, fn) {
    if (this.failed) return 0;
    this.host.effective = context;
    try {
      return fn();
    } catch (err) {
      this.failed = err;
      process.stderr.write(`[v8] the VM failed: ${err && err.stack || err}\n`);
      return 0;
    } finally {
      this.host.flush();
      this.settle();
    }
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
    if (ms > 0) this.ticker = setInterval(() => this.call(this.host.root, () => this.e.proxy_on_tick(this.host.root)), ms);
  }

  // dispatch makes a proxy_http_call over loopback HTTP and hands the module the answer,
  // or Envoy's own 503 (no connection) or 504 (timeout).
  dispatch(token) {
    const c = this.host.calls.get(token);
    const url = new URL(c.base + c.path);
    const headers = { host: c.authority };
    for (const [k, v] of c.headers) if (!k.startsWith(':')) headers[k] = v;
    let finished = false;
    const finish = (status, hdrs, body) => {
      if (finished) return;
      finished = true;
      this.host.calls.delete(token);
      this.host.callResponse = { headers: [[':status', String(status)], ...hdrs], body };
      const n = this.host.callResponse.headers.length;
      this.call(this.host.root, () => this.e.proxy_on_http_call_response(this.host.root, token, n, body.length, 0));
      this.host.callResponse = null;
    };
    const local = (status, text) => finish(status, [['content-type', 'text/plain'], ['content-length', String(text.length)]], Buffer.from(text));
    const req = (url.protocol === 'https:' ? https : http).request(url, { method: c.method, headers }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        const hdrs = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) hdrs.push([res.rawHeaders[i].toLowerCase(), res.rawHeaders[i + 1]]);
        finish(res.statusCode, hdrs, Buffer.concat(parts));
      });
    });
    if (c.timeout > 0) req.setTimeout(c.timeout, () => { req.destroy(); local(504, 'upstream request timeout'); });
    req.on('error', (err) => local(503, `upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: ${err.message}`));
    req.end(c.body);
  }

  async serve(req, res) {
    const parts = [];
    for await (const d of req) parts.push(d);
    const body = Buffer.concat(parts);
    if (this.failed) return this.reply(res, 503, [['content-type', 'text/plain']], Buffer.from('the Wasm VM failed'));

    const h = this.host;
    const id = h.nextContext++;
    const requestHeaders = [[':authority', req.headers.host || ''], [':path', req.url], [':method', req.method],
      [':scheme', this.o.tlsCert ? 'https' : 'http']];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const k = req.rawHeaders[i].toLowerCase();
      if (k !== 'host') requestHeaders.push([k, req.rawHeaders[i + 1]]);
    }
    if (!requestHeaders.some(([k]) => k === 'x-request-id')) requestHeaders.push(['x-request-id', crypto.randomUUID()]);
    if (!requestHeaders.some(([k]) => k === 'x-forwarded-proto')) requestHeaders.push(['x-forwarded-proto', this.o.tlsCert ? 'https' : 'http']);
    // Envoy's default max_request_headers_kb (60 KiB, http_connection_manager.proto):
    // the codec answers 431 when the header map's names and values exceed it.
    if (requestHeaders.reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0) > 60 * 1024) {
      return this.reply(res, 431, [['content-type', 'text/plain']], Buffer.from('Request Header Fields Too Large'));
    }
    const stream = { requestHeaders, responseHeaders: null, localResponse: null, continued: false, wake: null };
    h.streams.set(id, stream);
    try {
      this.call(id, () => this.e.proxy_on_context_create(id, h.root));
      const action = this.call(id, () => this.e.proxy_on_request_headers(id, requestHeaders.length, body.length === 0 ? 1 : 0));
      if (action !== 0 && !stream.localResponse && !this.failed) {
        await new Promise((resolve) => { stream.wake = resolve; });
      }
      if (this.failed) return this.reply(res, 503, [['content-type', 'text/plain']], Buffer.from('the Wasm VM failed'));
      if (stream.localResponse) return this.replyLocal(res, stream.localResponse);

      const upstream = await this.forward(stream, body);
      stream.responseHeaders = upstream.headers;
      this.call(id, () => this.e.proxy_on_response_headers(id, upstream.headers.length, upstream.body.length === 0 ? 1 : 0));
      if (stream.localResponse) return this.replyLocal(res, stream.localResponse);
      const status = Number((stream.responseHeaders.find(([k]) => k === ':status') || [])[1] || upstream.status);
      return this.reply(res, status, stream.responseHeaders.filter(([k]) => !k.startsWith(':')), upstream.body);
    } finally {
      this.call(id, () => this.e.proxy_on_done(id));
      this.call(id, () => this.e.proxy_on_log(id));
      this.call(id, () => this.e.proxy_on_delete(id));
      h.streams.delete(id);
    }
  }

  forward(stream, body) {
    const get = (k) => (stream.requestHeaders.find(([n]) => n === k) || [])[1];
    const url = new URL(this.o.upstream.replace(/\/$/, '') + get(':path'));
    const headers = {};
    for (const [k, v] of stream.requestHeaders) {
      if (k.startsWith(':')) continue;
      headers[k] = headers[k] === undefined ? v : [].concat(headers[k], v);
    }
    headers.host = get(':authority');
    return new Promise((resolve) => {
      const req = http.request(url, { method: get(':method'), headers }, (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => {
          const hdrs = [[':status', String(res.statusCode)]];
          for (let i = 0; i < res.rawHeaders.length; i += 2) hdrs.push([res.rawHeaders[i].toLowerCase(), res.rawHeaders[i + 1]]);
          resolve({ status: res.statusCode, headers: hdrs.filter(([k]) => k !== 'transfer-encoding' && k !== 'connection'), body: Buffer.concat(parts) });
        });
      });
      req.on('error', (err) => resolve({ status: 503, headers: [[':status', '503'], ['content-type', 'text/plain']],
        body: Buffer.from(`upstream connect error or disconnect/reset before headers. reset reason: ${err.message}`) }));
      req.end(body);
    });
  }

  replyLocal(res, r) {
    return this.reply(res, r.status, r.headers, r.body);
  }

  reply(res, status, headers, body) {
    const out = {};
    for (const [k, v] of headers) {
      if (k === 'content-length') continue;
      out[k] = out[k] === undefined ? v : [].concat(out[k], v);
    }
    out['content-length'] = String(body.length);
    res.writeHead(status, out);
    res.end(body);
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
  if (o.concurrency > 1) {
    process.stderr.write(`runner.js: one VM for now: -concurrency ${o.concurrency} is not yet honoured\n`);
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
  const colon = o.listen.lastIndexOf(':');
  server.listen(Number(o.listen.slice(colon + 1)), o.listen.slice(0, colon).replace(/^\[|\]$/g, ''), () => {
    const a = server.address();
    process.stdout.write(`listening on ${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}\n`);
  });
  const stop = () => { server.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main();
