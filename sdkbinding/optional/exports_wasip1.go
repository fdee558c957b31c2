//go:build wasip1

package optional

import (
	_ "unsafe" // for go:linkname

	_ "github.com/entra-auth/entra-auth/sdkbinding" // the host and the other callbacks
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

//go:wasmexport proxy_on_new_connection
func proxyOnNewConnection(contextID uint32) uint32 {
	return uint32(sdkOnNewConnection(contextID))
}

//go:wasmexport proxy_on_downstream_data
func proxyOnDownstreamData(contextID, dataSize, endOfStream uint32) uint32 {
	return uint32(sdkOnDownstreamData(contextID, int(dataSize), endOfStream != 0))
}

//go:wasmexport proxy_on_downstream_connection_close
func proxyOnDownstreamConnectionClose(contextID, peerType uint32) {
	sdkOnDownstreamConnectionClose(contextID, types.PeerType(peerType))
}

//go:wasmexport proxy_on_upstream_data
func proxyOnUpstreamData(contextID, dataSize, endOfStream uint32) uint32 {
	return uint32(sdkOnUpstreamData(contextID, int(dataSize), endOfStream != 0))
}

//go:wasmexport proxy_on_upstream_connection_close
func proxyOnUpstreamConnectionClose(contextID, peerType uint32) {
	sdkOnUpstreamConnectionClose(contextID, types.PeerType(peerType))
}

//go:wasmexport proxy_on_response_body
func proxyOnResponseBody(contextID, bodySize, endOfStream uint32) uint32 {
	return uint32(sdkOnResponseBody(contextID, int(bodySize), endOfStream != 0))
}

//go:wasmexport proxy_on_response_trailers
func proxyOnResponseTrailers(contextID, numTrailers uint32) uint32 {
	return uint32(sdkOnResponseTrailers(contextID, int(numTrailers)))
}

//go:wasmexport proxy_on_log
func proxyOnLog(contextID uint32) {
	sdkOnLog(contextID)
}

// The SDK's handlers (github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal,
// abi_callback_test_export.go in v0.24.0); sdk_wasip1.s lets these stand without bodies.

//go:linkname sdkOnNewConnection github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnNewConnection
func sdkOnNewConnection(contextID uint32) types.Action

//go:linkname sdkOnDownstreamData github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnDownstreamData
func sdkOnDownstreamData(contextID uint32, dataSize int, endOfStream bool) types.Action

//go:linkname sdkOnDownstreamConnectionClose github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnDownstreamConnectionClose
func sdkOnDownstreamConnectionClose(contextID uint32, peerType types.PeerType)

//go:linkname sdkOnUpstreamData github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnUpstreamData
func sdkOnUpstreamData(contextID uint32, dataSize int, endOfStream bool) types.Action

//go:linkname sdkOnUpstreamConnectionClose github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnUpstreamConnectionClose
func sdkOnUpstreamConnectionClose(contextID uint32, peerType types.PeerType)

//go:linkname sdkOnResponseBody github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnResponseBody
func sdkOnResponseBody(contextID uint32, bodySize int, endOfStream bool) types.Action

//go:linkname sdkOnResponseTrailers github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnResponseTrailers
func sdkOnResponseTrailers(contextID uint32, numTrailers int) types.Action

//go:linkname sdkOnLog github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/internal.ProxyOnLog
func sdkOnLog(contextID uint32)
