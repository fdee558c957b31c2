// Package envoyhost is a Proxy-Wasm host on wazero that behaves as Envoy's (1.33 and
// later) does for an HTTP filter, so that a module can be run and tested locally without
// an Envoy binary. It knows only the .wasm file: it imports no filter package.
//
// What it emulates, after proxy-wasm-cpp-host and Envoy's extensions/common/wasm:
//   - the import set of Envoy 1.33 and nothing more: a module importing anything else is
//     refused before it runs, with the import's name in the error;
//   - Envoy's WASI answers: stdout to the log at info and stderr at error, no files,
//     real clocks and randomness, the VM's environment variables, a poll_oneoff that
//     returns at once with no events;
//   - the start sequence: _initialize (during which only the few imports Envoy allows may
//     be called), then proxy_on_context_create, proxy_on_vm_start and proxy_on_configure
//     on the root context; a plugin that fails to start is an error carrying the
//     module's own log lines;
//   - one VM per worker, each driven by one goroutine, with many streams in flight; a
//     connection stays on one worker (use Host.ConnContext), so a stream stays on its VM;
//   - header maps with Envoy's serialization, lower-case names and pseudo-headers;
//     request headers unreadable once they have gone on; replace changing only the
//     first of repeated headers;
//   - pausing and resuming streams, local replies that pass through the filter's own
//     response callbacks, Envoy's body buffering statuses;
//   - proxy_http_call to named clusters with Envoy's argument checks, the answer
//     delivered to the root context, Envoy's own 503 and 504 answers for unreachable and
//     slow clusters, timeouts;
//   - shared data with CAS and shared queues across the VMs of one process, ticks per VM,
//     metrics, log levels, properties filters commonly read, effective contexts, and a
//     failed VM answering 503 after a trap.
//
// What it does not: gRPC calls (Unimplemented), foreign functions (NotFound), trailers,
// HTTP/2 to the upstream, flow control (watermarks), and Envoy's access-log properties.
package envoyhost
