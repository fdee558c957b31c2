// Package e2e holds the end-to-end tests and benchmarks of entra-auth: they build the
// module and the local runner, and talk to them as Envoy's clients and upstreams would,
// over real HTTP. The pieces they use live below: envoyhost (a proxy-wasm host that
// behaves as Envoy's does), cmd/wasmhost (the runner), mockentra (Entra ID's endpoints)
// and usersync (the reference user-sync service, also cmd/usersync); and v8, the same
// runner in Node's V8 with Envoy's flags (runner.js, host.js), which -engine=v8 or
// v8-tiered puts under every runner-based test. Nothing here imports a filter package;
// the module is known only as a .wasm file.
package e2e
