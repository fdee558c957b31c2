package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// cannedUpstream answers requests to the upstream in memory and passes everything else
// (the identity provider's cluster) to the network.
type cannedUpstream struct{ host string }

func (c *cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Host != c.host {
		return http.DefaultTransport.RoundTrip(r)
	}
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Length": {"2"}}, Body: io.NopCloser(strings.NewReader("ok")),
		ContentLength: 2, Request: r, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}, nil
}

// newInVM is the module in the host with the upstream answered in memory, for requests
// sent to the host directly.
func newInVM(tb testing.TB, more *moreConfig) *inProcess {
	tb.Helper()
	canned := &cannedUpstream{}
	p := newInProcessWith(tb, 1, canned, more)
	canned.host = strings.TrimPrefix(p.upstream.URL, "http://")
	return p
}

// serveSignedIn sends n signed-in browser requests straight to the host, each with a
// forged identity header the filter must remove, and fails on any answer but 200.
func (p *inProcess) serveSignedIn(tb testing.TB, cookie string, n int) {
	tb.Helper()
	for i := 0; i < n; i++ {
		req := httptest.NewRequest("GET", "/page", nil)
		req.Header.Set("Accept", "text/html")
		req.Header.Set("Cookie", cookie)
		req.Header.Set("X-Auth-Request-User", "forged")
		rec := httptest.NewRecorder()
		p.host.ServeHTTP(rec, req)
		if rec.Code != 200 {
			tb.Fatalf("request %d: %d %s", i, rec.Code, rec.Body)
		}
	}
}

// A VM's linear memory after 110,000 signed-in requests is no larger than after 10,000
// plus 1 MiB: the filter does not leak per request (10 bytes a request would show). The
// first 10,000 bring the heap to its working size, which on a loaded machine, where more
// ticks fall between requests, takes longer to reach than on an idle one.
func TestMemoryStaysFlatOverManyRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("110,000 requests; run without -short")
	}
	p := newInVM(t, nil)
	cookie := p.signIn(t)
	p.serveSignedIn(t, cookie, 10_000)
	warm := slices.Max(p.host.MemorySizes())
	p.serveSignedIn(t, cookie, 100_000)
	after := slices.Max(p.host.MemorySizes())
	t.Logf("VM memory: %d KiB after 10,000 signed-in requests, %d KiB after 100,000 more", warm>>10, after>>10)
	if after > warm+1<<20 {
		t.Errorf("memory grew from %d to %d bytes over 100,000 requests", warm, after)
	}
}
