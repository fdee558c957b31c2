// Package sdkbinding binds github.com/tetratelabs/proxy-wasm-go-sdk v0.24.0 to the
// standard Go compiler's WebAssembly ABI, so that a filter written against the SDK's
// public API (proxywasm, types) builds with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared
//
// and loads in Envoy 1.33 or later. Importing the package for its side effects is all a
// filter's main package does:
//
//	import _ "github.com/entra-auth/entra-auth/sdkbinding"
//
// # Why it exists
//
// The SDK was written for TinyGo, whose //export and body-less declarations make the
// Proxy-Wasm callbacks and host functions. Under the standard compiler (the "!tinygo"
// build) the same SDK compiles, but its host calls go through a replaceable Go
// interface (internal.ProxyWasmHost, installed by internal.RegisterMockWasmHost and used
// by the proxytest emulator) and its callbacks are plain Go functions that nothing
// exports. TinyGo cannot be installed where this project is built, and the SDK's
// standard-Go successor, github.com/proxy-wasm/proxy-wasm-go-sdk, is not available from
// the module proxy here. This package closes the gap from the outside, without a fork.
//
// # How it works
//
//   - exports_wasip1.go declares with //go:wasmexport the ABI 0.2.1 callbacks an HTTP
//     filter needs, plus proxy_abi_version_0_2_1 (package optional has the rest the SDK
//     handles: Envoy skips a callback a module does not export, and each one exported
//     costs a call into the module per stream), and forwards each to the SDK's own handler
//     (internal.ProxyOnRequestHeaders and friends, reached with //go:linkname; the module
//     version is frozen, so the names do not move).
//   - imports_wasip1.go declares Envoy's host functions with //go:wasmimport, with the
//     ABI's 32-bit sizes and addresses.
//   - host_wasip1.go implements the SDK's host interface on top of those imports and
//     installs it before any callback runs. Its method set mirrors
//     internal.ProxyWasmHost method for method, with types of this package that have
//     the same underlying types; the SDK dispatches by method index, so the two line up.
//     Because no code calls those methods by their own signatures, the linker would
//     drop them; keepHostMethods calls each one through the interface so they stay.
//   - memory_wasip1.go owns proxy_on_memory_allocate. Go on wasm has 64-bit int and
//     pointers while the ABI has 32-bit ones, and memory handed to the host must not be
//     collected before Go code holds a real pointer to it, so each allocation is kept
//     alive until the host call that asked for it returns and is then handed back as an
//     ordinary Go pointer.
//
// Outside wasip1 the package is empty, so native builds and tests (which use the SDK's
// proxytest emulator) are unaffected.
//
// # How to delete it
//
// When github.com/proxy-wasm/proxy-wasm-go-sdk can be used: change the import paths
// from github.com/tetratelabs/proxy-wasm-go-sdk to github.com/proxy-wasm/proxy-wasm-go-sdk
// (the API is the same), delete this directory and the blank import in main.go, and run
// the import test at the repository root, which checks the module's imports and exports
// against the list Envoy provides.
package sdkbinding
