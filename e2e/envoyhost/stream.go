package envoyhost

import (
	"strconv"
	"sync"
	"time"
)

// A stream is one HTTP request/response through the filter. Its fields are owned by its
// VM's goroutine; the HTTP handler that serves it learns what to do from events.
//
// The decode (request) and encode (response) sides follow Envoy's filter manager:
//   - headers answered Continue go on; anything else holds headers and body until
//     proxy_continue_stream: proxy-wasm-cpp-host turns StopIteration (1), and any
//     unknown status, into StopAllIterationAndWatermark
//     (ContextBase::convertVmCallResultToFilterHeadersStatus), so the body reaches the
//     filter only after the headers go on;
//   - a body answered StopIterationAndBuffer (1) or ...Watermark (2) is kept, and later
//     data is appended to it; StopIterationNoBuffer (3) drops it;
//   - proxy_continue_stream releases what is held, after the callback returns;
//   - proxy_send_local_response takes effect after the callback returns and overrides
//     its result; the reply passes through this filter's response callbacks when the
//     upstream has not answered yet, replaces the upstream's answer when its headers
//     have not reached the client yet, and resets the stream otherwise;
//   - the request headers stop being readable once they have gone on.
//
// The host reads the whole request body (up to Config.RequestBodyLimit) before the
// filter sees the request, so the request side has one data frame; the response body is
// streamed in frames as it arrives. Trailers are not passed.
type stream struct {
	v    *vm
	id   uint32
	root uint32 // its plugin's root context
	info streamInfo
	out  *eventQueue

	req, resp direction

	requestDone  bool // the request went upstream, or was answered locally
	local        *localReply
	localPending bool // a local reply was asked for in the callback that is running
	replying     bool // a local reply is passing through the filter
	ended        bool // the response is complete or the stream was reset
	bypass       bool // the VM failed under FAIL_OPEN: the stream goes on without the filter
	created      bool // proxy_on_context_create was called
	destroyed    bool
	filterState  map[string][]byte
}

type streamInfo struct {
	remote, local string
	protocol      string
	start         time.Time
	connectionID  uint64
}

// direction is one side of a stream.
type direction struct {
	headers     headerMap
	headersOpen bool // the filter may read and change the headers
	headersSent bool // the headers went on (upstream, or to the client)
	body        []byte
	bodyOpen    bool   // the filter may read and change body
	held        []byte // data that arrived while stopped with StopAllIteration
	hasData     bool   // data frames follow the headers
	eos         bool   // the last data frame has arrived
	stop        stopState
}

type stopState int

const (
	flowing     stopState = iota
	stoppedAll            // headers not answered Continue: nothing reaches this filter until continue
	stoppedData           // data held or dropped by the filter until continue
)

type localReply struct {
	status  int
	body    []byte
	headers headerMap
	details string
}

// interrupted reports whether the result of the callback that just returned no longer
// counts: a local reply was asked for, the VM failed, or the stream is over.
func (s *stream) interrupted() bool {
	return s.localPending || s.ended || (s.v.failed != nil && !s.bypass)
}

// start runs the request headers (and body) through the filter.
func (s *stream) start(headers headerMap, body []byte) {
	v := s.v
	s.id, s.root = v.newContextID(), v.rootID
	v.streams[s.id] = s
	if v.failed != nil {
		if v.host.cfg.FailurePolicy == FailOpen {
			s.req.headers, s.req.body, s.bypass = headers, body, true // the filter is skipped
			s.forward()
			return
		}
		s.failStream()
		return
	}
	v.callback(v.exports.onContextCreate, s.id, uint64(s.id), uint64(s.root))
	s.created = true
	if s.interrupted() {
		return
	}
	s.req.headers, s.req.headersOpen = headers, true
	s.req.hasData, s.req.eos = len(body) > 0, true
	s.req.held = body
	res, called := v.callback(v.exports.onRequestHeaders, s.id, uint64(s.id), uint64(len(headers)), boolArg(!s.req.hasData))
	if s.interrupted() {
		return
	}
	if !called {
		res = actionContinue
	}
	if res == actionContinue {
		s.req.headersOpen = false
		s.requestData()
		return
	}
	s.req.stop = stoppedAll
}

// requestData shows the held request body to the filter, or forwards a request without one.
func (s *stream) requestData() {
	v := s.v
	if !s.req.hasData {
		s.forward()
		return
	}
	s.req.body, s.req.held, s.req.bodyOpen = append(s.req.body, s.req.held...), nil, true
	res, called := v.callback(v.exports.onRequestBody, s.id, uint64(s.id), uint64(len(s.req.body)), boolArg(true))
	if s.interrupted() {
		return
	}
	switch {
	case !called || res == actionContinue:
		s.forward()
	case res == 3:
		s.req.body, s.req.stop = nil, stoppedData
	default:
		s.req.stop = stoppedData
	}
}

// continueRequest is proxy_continue_stream(Request), run after the callback.
func (s *stream) continueRequest() {
	if s.ended || s.requestDone || s.localPending {
		return
	}
	s.req.headersOpen = false
	switch s.req.stop {
	case stoppedAll:
		s.req.stop = flowing
		s.requestData()
	case stoppedData:
		s.forward()
	}
}

func (s *stream) forward() {
	s.requestDone = true
	s.req.stop = flowing
	s.req.headersOpen, s.req.bodyOpen, s.req.headersSent = false, false, true
	s.out.push(event{kind: evForward, headers: s.req.headers.clone(), data: s.req.body})
}

// responseHeaders runs the response headers through the filter.
func (s *stream) responseHeaders(headers headerMap, hasData bool) {
	if s.ended {
		return
	}
	v := s.v
	s.resp = direction{headers: headers, headersOpen: true, hasData: hasData, eos: !hasData}
	res, called := v.callback(v.exports.onResponseHeaders, s.id, uint64(s.id), uint64(len(headers)), boolArg(!hasData))
	if s.interrupted() {
		return
	}
	if !called || res == actionContinue {
		s.releaseResponse()
		return
	}
	s.resp.stop = stoppedAll // StopIteration is StopAllIterationAndWatermark, as above
}

// responseData runs one frame of the response body through the filter.
func (s *stream) responseData(chunk []byte, eos bool) {
	if s.ended {
		return
	}
	v := s.v
	s.resp.eos = s.resp.eos || eos
	if s.resp.stop == stoppedAll {
		s.resp.held = append(s.resp.held, chunk...)
		return
	}
	s.resp.body, s.resp.bodyOpen = append(s.resp.body, chunk...), true
	res, called := v.callback(v.exports.onResponseBody, s.id, uint64(s.id), uint64(len(s.resp.body)), boolArg(s.resp.eos))
	if s.interrupted() {
		return
	}
	switch {
	case !called || res == actionContinue:
		s.releaseResponse()
	case res == 3:
		s.resp.body, s.resp.stop = nil, stoppedData
	default:
		s.resp.stop = stoppedData
	}
}

// continueResponse is proxy_continue_stream(Response), run after the callback.
func (s *stream) continueResponse() {
	if s.ended || s.localPending || s.resp.headers == nil {
		return
	}
	switch s.resp.stop {
	case stoppedAll:
		s.resp.stop = flowing
		held := s.resp.held
		s.resp.held = nil
		if len(held) > 0 || (s.resp.hasData && s.resp.eos) {
			s.responseData(held, s.resp.eos)
			return
		}
		s.releaseResponse()
	case stoppedData:
		s.releaseResponse()
	}
}

// releaseResponse lets what the filter holds go to the client: headers, body, and the
// end of the response if the last data has arrived.
func (s *stream) releaseResponse() {
	s.resp.stop = flowing
	s.passResponseHeaders()
	s.flushResponseBody()
	if s.resp.eos {
		s.endResponse()
	}
}

func (s *stream) passResponseHeaders() {
	if s.resp.headersSent {
		return
	}
	s.resp.headersSent, s.resp.headersOpen = true, false
	s.out.push(event{kind: evHeaders, headers: s.resp.headers.clone()})
}

func (s *stream) flushResponseBody() {
	if len(s.resp.body) > 0 {
		s.out.push(event{kind: evData, data: s.resp.body})
	}
	s.resp.body, s.resp.bodyOpen = nil, false
}

func (s *stream) endResponse() {
	if !s.ended {
		s.ended = true
		s.out.push(event{kind: evEnd})
	}
}

// requestLocalReply records proxy_send_local_response; it takes effect after the callback.
func (s *stream) requestLocalReply(r localReply) {
	if s.ended || s.local != nil || s.replying {
		return // Envoy sends the first reply; later ones have nothing left to replace
	}
	s.local, s.localPending = &r, true
	s.v.afterCall(s.sendLocalReply)
}

func (s *stream) sendLocalReply() {
	r := s.local
	s.local, s.localPending = nil, false
	if s.ended {
		return
	}
	s.reply(*r, !s.requestDone)
}

// reply answers the stream with a response Envoy makes itself. Through the filter when
// the response has not started; directly when the upstream's headers are being
// processed but have not reached the client; by a reset when it is too late.
func (s *stream) reply(r localReply, throughFilter bool) {
	headers := headerMap{{":status", strconv.Itoa(r.status)}}
	for _, p := range r.headers {
		headers.add(p[0], p[1])
	}
	if len(r.body) > 0 {
		headers.replace("content-length", strconv.Itoa(len(r.body)))
		if _, ok := headers.get("content-type"); !ok {
			headers.add("content-type", "text/plain")
		}
	}
	s.requestDone = true
	s.req.headersOpen, s.req.bodyOpen = false, false
	switch {
	case s.resp.headersSent:
		s.reset()
	case throughFilter:
		s.replying = true
		s.responseHeaders(headers, len(r.body) > 0)
		if len(r.body) > 0 {
			s.responseData(r.body, true)
		}
	default:
		s.resp = direction{headers: headers, eos: true}
		s.passResponseHeaders()
		s.resp.body = r.body
		s.flushResponseBody()
		s.endResponse()
	}
}

// failStream answers 503 without calling the filter, as Envoy does for a failed VM.
func (s *stream) failStream() {
	if s.ended {
		return
	}
	s.localPending = false
	s.reply(localReply{status: 503}, false)
}

// failOpen lets the stream go on without the filter, whose VM failed under FAIL_OPEN.
func (s *stream) failOpen() {
	if s.ended {
		return
	}
	s.bypass = true
	if !s.requestDone {
		s.forward()
		return
	}
	if s.resp.headers != nil {
		s.releaseResponse()
	}
}

// reset aborts the stream: the client sees the connection close.
func (s *stream) reset() {
	if !s.ended {
		s.ended = true
		s.out.push(event{kind: evReset})
	}
}

// destroy ends the stream's context: proxy_on_log, proxy_on_done, proxy_on_delete.
func (s *stream) destroy() {
	if s.destroyed {
		return
	}
	s.destroyed, s.ended = true, true
	v := s.v
	if s.created {
		v.callback(v.exports.onLog, s.id, uint64(s.id))
		v.callback(v.exports.onDone, s.id, uint64(s.id))
		v.callback(v.exports.onDelete, s.id, uint64(s.id))
	}
	delete(v.streams, s.id)
}

func boolArg(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// Events tell the HTTP handler what the filter decided.

type eventKind int

const (
	evForward eventKind = iota // send the request upstream
	evHeaders                  // write the response headers
	evData                     // write response body bytes
	evEnd                      // the response is complete
	evReset                    // abort the connection
)

type event struct {
	kind    eventKind
	headers headerMap
	data    []byte
}

// eventQueue carries events from the VM's goroutine to the handler without ever
// blocking the VM.
type eventQueue struct {
	mu     sync.Mutex
	events []event
	ready  chan struct{}
}

func newEventQueue() *eventQueue { return &eventQueue{ready: make(chan struct{}, 1)} }

func (q *eventQueue) push(e event) {
	q.mu.Lock()
	q.events = append(q.events, e)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *eventQueue) take() []event {
	q.mu.Lock()
	defer q.mu.Unlock()
	e := q.events
	q.events = nil
	return e
}
