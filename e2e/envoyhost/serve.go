package envoyhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

type connInfo struct {
	worker int
	id     uint64
}

var connIDs atomic.Uint64

// ServeHTTP runs the request through a worker's VM and, if the filter lets it through,
// to the upstream; the response comes back through the same VM.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, ok := r.Context().Value(workerKey{}).(connInfo)
	if !ok {
		conn = connInfo{worker: h.pickWorker(), id: connIDs.Add(1)}
	}
	v := h.vms[conn.worker]

	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.RequestBodyLimit+1))
	if err != nil {
		return // the client went away
	}
	if int64(len(body)) > h.cfg.RequestBodyLimit {
		http.Error(w, "Payload Too Large", http.StatusRequestEntityTooLarge)
		return
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	s := &stream{v: v, out: newEventQueue(), info: streamInfo{
		remote:       r.RemoteAddr,
		protocol:     r.Proto,
		start:        time.Now(),
		connectionID: conn.id,
	}}
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		s.info.local = addr.String()
	}
	headers := requestHeaderMap(r, scheme)

	upstreamCtx, cancelUpstream := context.WithCancel(r.Context())
	defer cancelUpstream()
	v.post(func() { s.start(headers, body) })
	defer v.post(s.destroy)

	for {
		select {
		case <-s.out.ready:
		case <-r.Context().Done():
			return // the client went away; destroy (deferred) ends the context
		}
		for _, ev := range s.out.take() {
			switch ev.kind {
			case evForward:
				go h.proxy(upstreamCtx, s, ev)
			case evHeaders:
				writeResponseHeaders(w, ev.headers)
			case evData:
				if _, err := w.Write(ev.data); err != nil {
					return
				}
				if f, ok := w.(http.Flusher); ok {
					f.Flush()
				}
			case evEnd:
				return
			case evReset:
				panic(http.ErrAbortHandler) // the deferred calls still end the upstream and the context
			}
		}
	}
}

// proxy sends the request upstream and feeds the answer back through the filter, one
// frame at a time, waiting for the VM between frames.
func (h *Host) proxy(ctx context.Context, s *stream, ev event) {
	v := s.v
	failed := func(status int, msg string) {
		v.run(func() {
			if !s.ended {
				s.reply(localReply{status: status, body: []byte(msg)}, true)
			}
		})
	}
	if h.upstream == nil {
		failed(http.StatusServiceUnavailable, "no healthy upstream")
		return
	}
	if h.cfg.RouteTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.cfg.RouteTimeout)
		defer cancel()
	}
	req, err := upstreamRequest(ctx, h.upstream.String(), ev.headers, ev.data)
	if err != nil {
		failed(http.StatusBadRequest, "Bad Request")
		return
	}
	resp, err := h.transport.RoundTrip(req)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		failed(http.StatusGatewayTimeout, "upstream request timeout")
		return
	case err != nil && ctx.Err() != nil:
		return // the client went away
	case err != nil:
		failed(http.StatusServiceUnavailable, "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure, transport failure reason: "+err.Error())
		return
	}
	defer resp.Body.Close()
	hasData := resp.Body != http.NoBody && resp.ContentLength != 0 && req.Method != http.MethodHead
	alive := false
	v.run(func() {
		s.responseHeaders(responseHeaderMap(resp), hasData)
		alive = !s.ended
	})
	buf := make([]byte, 32<<10)
	for alive && hasData {
		n, err := resp.Body.Read(buf)
		eos := errors.Is(err, io.EOF)
		if err != nil && !eos {
			v.run(s.reset) // the upstream reset mid-body, or the route timed out
			return
		}
		if n == 0 && !eos {
			continue
		}
		chunk := bytes.Clone(buf[:n])
		v.run(func() {
			s.responseData(chunk, eos)
			alive = !s.ended
		})
		if eos {
			return
		}
	}
}

// requestHeaderMap builds the header map Envoy's HTTP/1 codec and connection manager
// give a filter: pseudo-headers first, then the request's headers (lower-case, sorted,
// without hop-by-hop ones), then x-forwarded-proto and x-request-id when absent.
func requestHeaderMap(r *http.Request, scheme string) headerMap {
	path := r.RequestURI
	if !strings.HasPrefix(path, "/") {
		path = r.URL.RequestURI() // absolute-form: Envoy passes the path
	}
	h := headerMap{{":authority", r.Host}, {":path", path}, {":method", r.Method}, {":scheme", scheme}}
	for _, k := range sortedKeys(r.Header) {
		if hopByHop[strings.ToLower(k)] {
			continue
		}
		for _, val := range r.Header[k] {
			h.add(k, val)
		}
	}
	if _, ok := h.get("x-forwarded-proto"); !ok {
		h.add("x-forwarded-proto", scheme)
	}
	if _, ok := h.get("x-request-id"); !ok {
		h.add("x-request-id", newRequestID())
	}
	return h
}

func upstreamRequest(ctx context.Context, base string, headers headerMap, body []byte) (*http.Request, error) {
	method, _ := headers.get(":method")
	path, _ := headers.get(":path")
	authority, _ := headers.get(":authority")
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("bad :path %q", path)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Host = authority
	for _, p := range headers {
		if strings.HasPrefix(p[0], ":") || p[0] == "content-length" || p[0] == "host" {
			continue
		}
		req.Header.Add(p[0], p[1])
	}
	if len(body) == 0 {
		req.Body, req.ContentLength = http.NoBody, 0
	}
	return req, nil
}

func writeResponseHeaders(w http.ResponseWriter, headers headerMap) {
	status := http.StatusBadGateway
	for _, p := range headers {
		if p[0] == ":status" {
			if n, err := strconv.Atoi(p[1]); err == nil && n >= 100 && n <= 999 {
				status = n
			}
			continue
		}
		if !strings.HasPrefix(p[0], ":") {
			w.Header().Add(p[0], p[1])
		}
	}
	w.WriteHeader(status)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
