// Package envoyhost is a Proxy-Wasm host on wazero that behaves as Envoy's (1.33 and
// later) does for an HTTP filter, so that a module can be run and tested locally without
// an Envoy binary. It knows only the .wasm file: it imports no filter package.
//
// It answers as the oldest Envoy supported, 1.33, unless Config.Envoy asks for the newest
// (see Release): a host kinder than Envoy hides crashes. What it emulates, after
// proxy-wasm-cpp-host and Envoy's extensions/common/wasm:
//   - the import set of Envoy 1.33 and nothing more: a module importing anything else is
//     refused before it runs, with the import's name in the error;
//   - Envoy's WASI answers: stdout to the log at info and stderr at error, no files,
//     real clocks and randomness, the VM's environment variables, and a poll_oneoff
//     that answers ENOSYS (Envoy 1.33 to 1.38) or no events (the newest);
//   - Envoy's restricted calls: during _initialize only logging, clocks, randomness,
//     environment and arguments (and, on the newest, poll_oneoff); inside the module's
//     allocator, proxy_on_memory_allocate, only proxy_log, fd_write and clock_time_get
//     (and, on the newest, poll_oneoff); anything else traps the VM, naming the import;
//   - the start sequence: a canary VM first (_initialize, proxy_on_vm_start,
//     proxy_on_configure, then destroyed without proxy_on_done, its calls cancelled),
//     then the main thread's VM (ticks and calls, no streams) and one VM per worker;
//     a plugin that fails to start is an error carrying the module's own log lines;
//   - configuration pushes (Host.Reconfigure): a canary tries the new configuration,
//     then every VM starts a new root context with it and retires the old one;
//   - one VM per worker, each driven by one goroutine, with many streams in flight; a
//     connection stays on one worker (use Host.ConnContext), so a stream stays on its VM;
//   - request headers as Envoy's codecs and connection manager make them: lower-case
//     names and pseudo-headers, repeated inline headers (authorization, x-forwarded-*,
//     ...) merged with ",", HTTP/2 cookies joined with "; ", :scheme from a valid
//     x-forwarded-proto, use_remote_address and xff_num_trusted_hops; unreadable once
//     they have gone on; replace removing every occurrence and adding one;
//   - pausing and resuming streams (StopIteration on headers held as
//     StopAllIterationAndWatermark), local replies that pass through the filter's own
//     response callbacks, Envoy's body buffering statuses, and the stream idle timeout's
//     408;
//   - proxy_http_call to named clusters with Envoy's argument checks, the answer
//     delivered to the root context that made the call, Envoy's own 503 and 504 answers
//     for unreachable and slow clusters, timeouts;
//   - shared data with CAS and shared queues across the VMs of one process, ticks per VM,
//     metrics, log levels, properties filters commonly read, effective contexts, and the
//     failure policies after a trap: FAIL_CLOSED (503), FAIL_OPEN (the filter skipped),
//     FAIL_RELOAD (a new VM after a backoff).
//
// What it does not: gRPC calls (Unimplemented), foreign functions (NotFound), trailers,
// HTTP/2 to the upstream, flow control (watermarks), internal-address detection, and
// Envoy's access-log properties.
package envoyhost
