//go:build faultinject

package filter

// A test build (go build -tags faultinject) panics where a request asks it to, so that
// the end-to-end tests can prove a panic fails one operation and not the worker. The
// request header x-entra-auth-fault names the place: request-headers and
// response-headers (this request's callbacks), tick (the plugin's next tick), resumed
// (the next time a tick or a call's answer resumes a stream, in that root callback). Never in a release build.

const faultHeader = "x-entra-auth-fault"

// armed are the places asked for and not yet reached.
var armed = map[string]bool{}

func armFaults(headers [][2]string) {
	for _, h := range headers {
		if h[0] == faultHeader {
			armed[h[1]] = true
		}
	}
}

func injectFault(where string) {
	if armed[where] {
		delete(armed, where)
		panic("entra-auth: fault injected in " + where + " (faultinject build)")
	}
}
