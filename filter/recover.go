package filter

import (
	"fmt"
	"runtime/debug"
	"strconv"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/flow"
)

// Every entry from the host recovers from a panic. One that escapes a callback traps the
// VM, and Envoy then answers every request on that worker 503 (FAIL_CLOSED) until it
// restarts, or until FAIL_RELOAD starts a new VM. A panic fails the operation in hand
// instead: the stream it belongs to gets a 500 page with its request id, the panic is
// logged with its stack and counted (entra_auth_panics), and the next request is served.

// inRoot is set while a root callback runs (a tick, a call's answer); resumed is the
// stream it acts for once it has made that stream the effective context: the one a
// panic there answers. Each VM runs one callback at a time, so variables do.
var (
	inRoot  bool
	resumed *stream
)

// enterRoot and leaveRoot bracket a root callback.
func enterRoot() { inRoot, resumed = true, nil }
func leaveRoot() { inRoot, resumed = false, nil }

// panics counts recovered panics; defined on the first one.
var panics struct {
	counter proxywasm.MetricCounter
	defined bool
}

// logPanic logs a recovered panic with its stack, once, and counts it. The panic's
// value is quoted, so that no text in it can forge a log line.
func logPanic(requestID, where string, v any) {
	if !panics.defined {
		panics.counter, panics.defined = proxywasm.DefineCounterMetric("entra_auth_panics"), true
	}
	panics.counter.Increment(1)
	if requestID == "" {
		requestID = "-"
	}
	proxywasm.LogCriticalf("entra-auth: request %s: recovered from a panic in %s: %s\n%s",
		requestID, where, strconv.Quote(fmt.Sprint(v)), debug.Stack())
}

// panicked answers the stream whose callback panicked with a 500 page and holds it.
func (s *stream) panicked(where string, v any) types.Action {
	logPanic(s.requestID, where, v)
	s.internalError()
	return types.ActionPause
}

// internalError answers the stream 500, as a page or JSON as its request asks.
func (s *stream) internalError() {
	const message = "Something went wrong in the sign-in filter. Try again; if it keeps happening, give the site's operators this request id."
	if s.req == nil { // the request's headers were never read: nothing says it is a browser
		s.respond(flow.JSONError(500, "internal_error", message, s.requestID))
		return
	}
	s.respond(flow.ErrorResponse(s.req, 500, "internal_error", message, s.requestID))
}

// rootPanicked fails the operation a root callback was doing: the stream it had resumed,
// if any, gets a 500 page.
func rootPanicked(where string, v any) {
	s := resumed
	resumed = nil
	id := ""
	if s != nil {
		id = s.requestID
	}
	logPanic(id, where, v)
	if s != nil {
		s.internalError()
	}
}
