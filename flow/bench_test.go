package flow

import (
	"testing"
)

// BenchmarkSignedInRequest is the filter's work on a signed-in request, run natively:
// read the request's headers and cookies, open the session, build the identity headers.
// The same code in wazero is e2e's BenchmarkRequest/filter-signed-in.
func BenchmarkSignedInRequest(b *testing.B) {
	f, _ := newFlow(b, "")
	br := signedIn(b, f, testSession(2))
	var cookie string
	for name, value := range br.jar {
		cookie += name + "=" + value + "; "
	}
	headers := [][2]string{
		{":authority", "app.contoso.com"}, {":path", "/page"}, {":method", "GET"}, {":scheme", "https"},
		{"accept", "text/html"}, {"cookie", cookie}, {"user-agent", "bench"}, {"x-request-id", "r"},
	}
	b.ReportAllocs()
	for b.Loop() {
		r := NewRequest(headers)
		s, err := f.Authenticate(r)
		if err != nil {
			b.Fatal(err)
		}
		if len(IdentityHeaders(s)) != 7 {
			b.Fatal("headers")
		}
	}
}
