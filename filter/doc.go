// Package filter is the proxy-wasm glue of entra-auth: the VM, plugin and HTTP contexts
// Envoy drives through the SDK. It turns the decisions of package flow into host calls:
// reading headers and cookies, dispatching the discovery, JWKS and token requests to the
// identity provider's cluster, pausing and resuming streams, sending redirects and error
// pages, setting identity headers, and sharing the provider's metadata between the VMs of
// one Envoy through shared data.
//
// No goroutine, timer or sleep: every wait is a paused stream resumed from a callback
// (a dispatched call's answer, or a tick).
package filter
