//go:build wasip1

package sdkbinding

// The Proxy-Wasm ABI 0.2.1 callbacks an HTTP filter needs, each forwarded to the SDK's
// handler (the others are in package optional). Counts and sizes arrive as 32-bit values
// and are widened to the SDK's int; booleans travel as i32 (0 or 1) both ways.

//go:wasmexport proxy_abi_version_0_2_1
func proxyABIVersion() {}

//go:wasmexport proxy_on_context_create
func proxyOnContextCreate(contextID, parentContextID uint32) {
	sdkOnContextCreate(contextID, parentContextID)
}

//go:wasmexport proxy_on_vm_start
func proxyOnVMStart(rootContextID, vmConfigurationSize uint32) uint32 {
	return fromBool(bool(sdkOnVMStart(rootContextID, int(vmConfigurationSize))))
}

//go:wasmexport proxy_on_configure
func proxyOnConfigure(rootContextID, pluginConfigurationSize uint32) uint32 {
	return fromBool(bool(sdkOnConfigure(rootContextID, int(pluginConfigurationSize))))
}

//go:wasmexport proxy_on_request_headers
func proxyOnRequestHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	return uint32(sdkOnRequestHeaders(contextID, int(numHeaders), endOfStream != 0))
}

//go:wasmexport proxy_on_request_body
func proxyOnRequestBody(contextID, bodySize, endOfStream uint32) uint32 {
	return uint32(sdkOnRequestBody(contextID, int(bodySize), endOfStream != 0))
}

//go:wasmexport proxy_on_request_trailers
func proxyOnRequestTrailers(contextID, numTrailers uint32) uint32 {
	return uint32(sdkOnRequestTrailers(contextID, int(numTrailers)))
}

//go:wasmexport proxy_on_response_headers
func proxyOnResponseHeaders(contextID, numHeaders, endOfStream uint32) uint32 {
	return uint32(sdkOnResponseHeaders(contextID, int(numHeaders), endOfStream != 0))
}

//go:wasmexport proxy_on_http_call_response
func proxyOnHTTPCallResponse(rootContextID, calloutID, numHeaders, bodySize, numTrailers uint32) {
	sdkOnHttpCallResponse(rootContextID, calloutID, int(numHeaders), int(bodySize), int(numTrailers))
}

//go:wasmexport proxy_on_tick
func proxyOnTick(rootContextID uint32) {
	sdkOnTick(rootContextID)
}

//go:wasmexport proxy_on_queue_ready
func proxyOnQueueReady(rootContextID, queueID uint32) {
	sdkOnQueueReady(rootContextID, queueID)
}

//go:wasmexport proxy_on_done
func proxyOnDone(contextID uint32) uint32 {
	return fromBool(sdkOnDone(contextID))
}

//go:wasmexport proxy_on_delete
func proxyOnDelete(contextID uint32) {
	sdkOnDelete(contextID)
}

func fromBool(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}
