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

// BenchmarkUserSync is the filter's own work for the call-out: mapping the claims, the
// request body, and the fingerprint kept in the session.
func BenchmarkUserSync(b *testing.B) {
	f := newSyncFlow(b, `{`+syncBase+`,"flags":{"is_staff":{"groups":["g2"]},"is_superuser":{"roles":["Admin"]}}}`)
	c := claimsOf(b, `{"aud":"c","iss":"https://login.microsoftonline.com/t/v2.0","iat":1,"nbf":1,"exp":2,"name":"Ada Lovelace",
		"email":"ada@contoso.com","oid":"o","preferred_username":"ada@contoso.com","roles":["Admin"],"groups":["g1","g2"],"sub":"s","tid":"t","ver":"2.0"}`)
	for b.Loop() {
		u := f.SyncUser(c)
		if len(f.UserSyncRequest(u).Body) == 0 || u.Fingerprint() == "" {
			b.Fatal("empty")
		}
		if _, err := ParseUserSyncResponse(200, []byte(`{"user_id":"42"}`)); err != nil {
			b.Fatal(err)
		}
	}
}
