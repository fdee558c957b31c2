package envoyhost

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// pendingCall is a dispatched call in flight.
type pendingCall struct {
	cancel context.CancelFunc
	root   uint32 // the root context that made it, which its answer goes to
}

// callResponse is what proxy_on_http_call_response lets the module read.
type callResponse struct {
	headers, trailers headerMap
	body              []byte
}

// hostHTTPCall implements proxy_http_call as Envoy does: the call belongs to the root
// context whatever context makes it; the cluster must exist and the headers must carry
// :method, :path and :authority, or the answer is BadArgument at once. The outcome
// always arrives later through proxy_on_http_call_response: the upstream's answer, or
// Envoy's own 503 (no connection) or 504 (timeout), or, when the answer cannot be
// buffered, a call with no headers and proxy_get_status saying "reset".
func hostHTTPCall(v *vm, s []uint64) {
	cluster, ok1 := v.readString(u32(s[0]), u32(s[1]))
	rawHeaders, ok2 := v.read(u32(s[2]), u32(s[3]))
	body, ok3 := v.read(u32(s[4]), u32(s[5]))
	rawTrailers, ok4 := v.read(u32(s[6]), u32(s[7]))
	timeout, tokenPtr := u32(s[8]), u32(s[9])
	if !ok1 || !ok2 || !ok3 || !ok4 || !v.writeU32(tokenPtr, 0) {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	headers, err1 := decodePairs(rawHeaders)
	_, err2 := decodePairs(rawTrailers)
	if err1 != nil || err2 != nil {
		ret(s, resultBadArgument)
		return
	}
	base, known := v.host.clusters[cluster]
	if !known {
		v.logf(LogDebug, "proxy_http_call: no cluster named %q", cluster)
		ret(s, resultBadArgument)
		return
	}
	method, hasMethod := headers.get(":method")
	path, hasPath := headers.get(":path")
	authority, hasAuthority := headers.get(":authority")
	if !hasMethod || !hasPath || !hasAuthority {
		ret(s, resultBadArgument)
		return
	}
	if int32(timeout) < 0 {
		ret(s, resultBadArgument)
		return
	}

	req, err := http.NewRequest(method, base.String()+path, bytes.NewReader(body))
	if err != nil {
		ret(s, resultBadArgument)
		return
	}
	req.Host = authority
	for _, p := range headers {
		if !strings.HasPrefix(p[0], ":") {
			req.Header.Add(p[0], p[1])
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	token := v.nextCallID
	v.nextCallID++
	if v.nextCallID == 0 {
		v.nextCallID = 1
	}
	v.calls[token] = &pendingCall{cancel: cancel, root: v.currentRoot()}
	if !v.writeU32(tokenPtr, token) {
		delete(v.calls, token)
		cancel()
		ret(s, resultInvalidMemoryAccess)
		return
	}
	go v.host.dispatch(v, token, req.WithContext(ctx), cancel, time.Duration(timeout)*time.Millisecond)
	ret(s, resultOk)
}

// dispatch runs one call and posts its outcome to the VM that made it.
// A zero timeout means none, as in Envoy.
func (h *Host) dispatch(v *vm, token uint32, req *http.Request, cancel context.CancelFunc, timeout time.Duration) {
	defer cancel()
	var deadline <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		deadline = t.C
	}
	type outcome struct {
		resp *callResponse
		err  error
	}
	done := make(chan outcome, 1)
	go func() {
		resp, err := h.exchange(req)
		done <- outcome{resp, err}
	}()
	var out outcome
	select {
	case out = <-done:
	case <-deadline:
		cancel()
		<-done
		out = outcome{resp: localAnswer(http.StatusGatewayTimeout, "upstream request timeout")}
	case <-req.Context().Done():
		return // canceled: the plugin is shutting down
	}
	v.post(func() { v.deliverCall(token, out.resp, out.err) })
}

var errCallTooLarge = errors.New("response exceeds the buffer limit")

// exchange performs the request and buffers the answer. A connection failure becomes
// the 503 Envoy's router answers with.
func (h *Host) exchange(req *http.Request) (*callResponse, error) {
	resp, err := h.transport.RoundTrip(req)
	if err != nil {
		if req.Context().Err() != nil {
			return nil, err
		}
		return localAnswer(http.StatusServiceUnavailable,
			"upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: "+err.Error()), nil
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, h.cfg.CallResponseLimit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > h.cfg.CallResponseLimit {
		return nil, errCallTooLarge
	}
	out := &callResponse{body: body, headers: responseHeaderMap(resp)}
	for _, k := range sortedKeys(resp.Trailer) {
		for _, val := range resp.Trailer[k] {
			out.trailers.add(k, val)
		}
	}
	return out, nil
}

// localAnswer is a response Envoy makes up itself.
func localAnswer(status int, body string) *callResponse {
	r := &callResponse{body: []byte(body)}
	r.headers.add(":status", strconv.Itoa(status))
	r.headers.add("content-length", strconv.Itoa(len(body)))
	r.headers.add("content-type", "text/plain")
	return r
}

// responseHeaderMap turns an HTTP response's headers into Envoy's form: :status first,
// then lower-case names (in sorted order, since Go does not keep the wire order), without
// hop-by-hop headers.
func responseHeaderMap(resp *http.Response) headerMap {
	h := headerMap{{":status", strconv.Itoa(resp.StatusCode)}}
	for _, k := range sortedKeys(resp.Header) {
		if hopByHop[strings.ToLower(k)] {
			continue
		}
		for _, val := range resp.Header[k] {
			h.add(k, val)
		}
	}
	if resp.ContentLength >= 0 && resp.Header.Get("Content-Length") == "" && resp.Request != nil && resp.Request.Method != http.MethodHead {
		h.add("content-length", strconv.FormatInt(resp.ContentLength, 10))
	}
	return h
}

func sortedKeys(h http.Header) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// deliverCall hands a call's outcome to the module on the root context.
func (v *vm) deliverCall(token uint32, resp *callResponse, err error) {
	call, ok := v.calls[token]
	if !ok {
		return
	}
	delete(v.calls, token)
	root := call.root
	if err != nil {
		v.status.code, v.status.message = uint32(resultBrokenConnection), "reset"
		v.callback(v.exports.onHTTPCallResponse, root, uint64(root), uint64(token), 0, 0, 0)
		v.status.code, v.status.message = 0, ""
		return
	}
	v.callResponse = resp
	v.callback(v.exports.onHTTPCallResponse, root, uint64(root), uint64(token),
		uint64(len(resp.headers)), uint64(len(resp.body)), uint64(len(resp.trailers)))
	v.callResponse = nil
}

// hopByHop are the headers a proxy does not pass on.
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true,
	"te": true, "trailer": true, "upgrade": true, "proxy-authenticate": true,
}
