// Package filter is the proxy-wasm glue of entra-auth: the VM, plugin and HTTP contexts
// that Envoy drives through the SDK. It reads the plugin configuration when the plugin
// starts, and on every request removes identity headers a client may have sent, so that
// only the filter can ever set them for the upstream.
//
// The package is built both natively, where its tests run on the SDK's proxytest
// emulator, and for wasip1, where main links it into the module.
package filter
