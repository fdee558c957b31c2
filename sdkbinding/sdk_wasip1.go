//go:build wasip1

package sdkbinding

import (
	_ "unsafe" // for go:linkname

	// Imported so that the SDK's internal package is initialised before this package's
	// init installs the host (its mutex and state are package-level variables).
	_ "github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// The SDK's callback handlers and host registration, from
// github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal (abi_callback_test_export.go
// and abi_hostcalls_mock.go in v0.24.0, both part of its !tinygo build). The bodies are
// the SDK's; sdk_wasip1.s lets these declarations stand without one here.

//go:linkname sdkRegisterHost github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.RegisterMockWasmHost
func sdkRegisterHost(host hostABI) (release func())

//go:linkname sdkOnVMStart github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnVMStart
func sdkOnVMStart(rootContextID uint32, vmConfigurationSize int) types.OnVMStartStatus

//go:linkname sdkOnConfigure github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnConfigure
func sdkOnConfigure(rootContextID uint32, pluginConfigurationSize int) types.OnPluginStartStatus

//go:linkname sdkOnContextCreate github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnContextCreate
func sdkOnContextCreate(contextID uint32, parentContextID uint32)

//go:linkname sdkOnRequestHeaders github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnRequestHeaders
func sdkOnRequestHeaders(contextID uint32, numHeaders int, endOfStream bool) types.Action

//go:linkname sdkOnRequestBody github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnRequestBody
func sdkOnRequestBody(contextID uint32, bodySize int, endOfStream bool) types.Action

//go:linkname sdkOnRequestTrailers github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnRequestTrailers
func sdkOnRequestTrailers(contextID uint32, numTrailers int) types.Action

//go:linkname sdkOnResponseHeaders github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnResponseHeaders
func sdkOnResponseHeaders(contextID uint32, numHeaders int, endOfStream bool) types.Action

//go:linkname sdkOnHttpCallResponse github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnHttpCallResponse
func sdkOnHttpCallResponse(rootContextID, calloutID uint32, numHeaders, bodySize, numTrailers int)

//go:linkname sdkOnTick github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnTick
func sdkOnTick(rootContextID uint32)

//go:linkname sdkOnQueueReady github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnQueueReady
func sdkOnQueueReady(rootContextID, queueID uint32)

//go:linkname sdkOnDone github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnDone
func sdkOnDone(contextID uint32) bool

//go:linkname sdkOnDelete github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnDelete
func sdkOnDelete(contextID uint32)
