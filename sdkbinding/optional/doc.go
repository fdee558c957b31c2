// Package optional exports the Proxy-Wasm callbacks that package sdkbinding leaves out,
// for a filter that handles them: an HTTP filter's response body and trailers and its
// stream log (the SDK's OnHttpResponseBody, OnHttpResponseTrailers and
// OnHttpStreamDone), and a network filter's connection callbacks. Import it beside
// sdkbinding for its side effects:
//
//	import _ "github.com/entra-auth/entra-auth/sdkbinding/optional"
//
// They are apart because Envoy skips a callback the module does not export
// (proxy-wasm-cpp-host src/context.cc: ContextBase::onResponseBody, onResponseTrailers,
// onLog, each returning early when the export is absent), and every exported one costs
// a call into the module on every stream: for entra-auth, which handles none of them,
// proxy_on_response_body and proxy_on_log were two of the seven calls into the module a
// signed-in request made.
//
// Outside wasip1 the package is empty.
package optional
