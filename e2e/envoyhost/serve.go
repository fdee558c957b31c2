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
// maxRequestHeadersBytes is Envoy's default max_request_headers_kb (60 KiB,
// http_connection_manager.proto): over it, the codec answers 431 before any filter runs.
// Envoy counts the header map's bytes, names and values, pseudo-headers included
// (HeaderMapImpl::byteSize); so does headerMap.byteSize.
const maxRequestHeadersBytes = 60 << 10

func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, ok := r.Context().Value(workerKey{}).(connInfo)
	if !ok {
		conn = connInfo{worker: h.pickWorker(), id: connIDs.Add(1)}
	}
	v := h.worker(conn.worker)

	body, err := io.ReadAll(io.LimitReader(r.Body, h.cfg.RequestBodyLimit+1))
	if err != nil {
		return // the client went away
	}
	if int64(len(body)) > h.cfg.RequestBodyLimit {
		http.Error(w, "Payload Too Large", http.StatusRequestEntityTooLarge)
		return
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
	headers := h.requestHeaderMap(r)
	if headers.byteSize() > maxRequestHeadersBytes {
		http.Error(w, "Request Header Fields Too Large", http.StatusRequestHeaderFieldsTooLarge)
		return
	}

	upstreamCtx, cancelUpstream := context.WithCancel(r.Context())
	defer cancelUpstream()
	v.post(func() { s.start(headers, body) })
	defer v.post(s.destroy)

	// Envoy's stream_idle_timeout: a stream with nothing happening for that long (a
	// filter that paused it and never resumed it, say) is answered 408 "stream timeout",
	// through the filter's response callbacks. Each step of the stream restarts it; it
	// stops once the response has started.
	idling := h.cfg.StreamIdleTimeout > 0
	idle := time.NewTimer(max(h.cfg.StreamIdleTimeout, 0))
	defer idle.Stop()
	if !idling {
		idle.Stop()
	}
	for {
		select {
		case <-s.out.ready:
			if idling {
				idle.Reset(h.cfg.StreamIdleTimeout)
			}
		case <-idle.C:
			v.post(func() {
				if !s.ended {
					s.reply(localReply{status: http.StatusRequestTimeout, body: []byte("stream timeout")}, true)
				}
			})
			continue
		case <-r.Context().Done():
			return // the client went away; destroy (deferred) ends the context
		}
		for _, ev := range s.out.take() {
			switch ev.kind {
			case evForward:
				go h.proxy(upstreamCtx, s, ev)
			case evHeaders:
				idling = false // the response has started
				idle.Stop()
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

// requestHeaderMap builds the header map a filter sees, as Envoy's codecs and its
// connection manager make it (source/common/http/conn_manager_utility.cc,
// ConnectionManagerUtility::mutateRequestHeaders): pseudo-headers first, then the
// request's headers (lower-case, sorted, without hop-by-hop ones), repeated headers
// merged as Envoy merges them (mergeRepeated); with use_remote_address, the peer
// appended to x-forwarded-for and x-forwarded-proto set from the connection unless
// xff_num_trusted_hops trusts the client's; x-forwarded-proto from the connection when
// absent; :scheme from x-forwarded-proto when that is http or https, else from the
// connection; x-request-id when absent.
func (h *Host) requestHeaderMap(r *http.Request) headerMap {
	connScheme := "http"
	if r.TLS != nil {
		connScheme = "https"
	}
	path := r.RequestURI
	if !strings.HasPrefix(path, "/") {
		path = r.URL.RequestURI() // absolute-form: Envoy passes the path
	}
	hm := headerMap{{":authority", r.Host}, {":path", path}, {":method", r.Method}}
	for _, k := range sortedKeys(r.Header) {
		if hopByHop[strings.ToLower(k)] {
			continue
		}
		for _, val := range r.Header[k] {
			hm.add(k, val)
		}
	}
	hm = mergeRepeated(hm, r.ProtoMajor == 2)
	if h.cfg.UseRemoteAddress {
		peer, _, _ := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(peer); ip != nil && ip.IsLoopback() {
			// Envoy appends its own address for a loopback peer.
			if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
				peer, _, _ = net.SplitHostPort(addr.String())
			}
		}
		if xff, ok := hm.get("x-forwarded-for"); ok && xff != "" {
			hm.replace("x-forwarded-for", xff+","+peer)
		} else {
			hm.replace("x-forwarded-for", peer)
		}
		if _, ok := hm.get("x-forwarded-proto"); !ok || h.cfg.XFFNumTrustedHops == 0 {
			hm.replace("x-forwarded-proto", connScheme)
		}
	}
	if _, ok := hm.get("x-forwarded-proto"); !ok {
		hm.add("x-forwarded-proto", connScheme)
	}
	scheme := connScheme
	if xfp, _ := hm.get("x-forwarded-proto"); xfp == "http" || xfp == "https" {
		scheme = xfp
	}
	hm = append(hm[:3:3], append(headerMap{{":scheme", scheme}}, hm[3:]...)...)
	if _, ok := hm.get("x-request-id"); !ok {
		hm.add("x-request-id", newRequestID())
	}
	return hm
}

// mergedWhenRepeated are the request headers that Envoy stores inline (O(1) headers:
// envoy/http/header_map.h's INLINE_REQ_STRING_HEADERS and INLINE_REQ_RESP_STRING_HEADERS,
// and authorization, which stock builds register as a custom inline header through the
// oauth2 and cache filters). HeaderMapImpl::insertByKey appends a repeated inline
// header to the first, joined by ",", so a filter sees one header.
var mergedWhenRepeated = map[string]bool{
	"authorization": true, "content-type": true, "expect": true, "te": true, "user-agent": true,
	"via": true, "x-client-trace-id": true, "x-forwarded-client-cert": true, "x-forwarded-for": true,
	"x-forwarded-host": true, "x-forwarded-proto": true, "x-request-id": true, "grpc-timeout": true,
	"x-envoy-downstream-service-cluster": true, "x-envoy-downstream-service-node": true,
	"x-envoy-external-address": true, "x-envoy-force-trace": true, "x-envoy-internal": true,
	"x-envoy-ip-tags": true, "x-envoy-original-path": true, "x-envoy-original-url": true,
	"x-envoy-retry-on": true, "x-envoy-retry-grpc-on": true, "x-envoy-retriable-status-codes": true,
	"x-envoy-retriable-header-names": true, "x-envoy-hedge-on-per-try-timeout": true,
	"x-envoy-upstream-alt-stat-name": true, "x-envoy-upstream-rq-timeout-alt-response": true,
}

// mergeRepeated merges repeated headers as Envoy does before a filter sees them: the
// inline ones (mergedWhenRepeated) into one value joined by ","; over HTTP/2, the
// cookie header fields into one joined by "; " (source/common/http/http2/codec_impl.cc,
// Utility::reconstituteCrumbledCookies; RFC 9113 section 8.2.3). Other repeated headers
// stay apart, in order.
func mergeRepeated(h headerMap, http2 bool) headerMap {
	out := h[:0:0]
	first := map[string]int{}
	for _, p := range h {
		delimiter := ""
		switch {
		case mergedWhenRepeated[p[0]]:
			delimiter = ","
		case http2 && p[0] == "cookie":
			delimiter = "; "
		}
		if i, seen := first[p[0]]; seen && delimiter != "" {
			out[i][1] += delimiter + p[1]
			continue
		}
		first[p[0]] = len(out)
		out = append(out, p)
	}
	return out
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
