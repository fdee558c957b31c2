package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
	"github.com/entra-auth/entra-auth/upstreamsig"
)

// With upstream_signature, every request the filter lets through reaches the application
// with one signature it can check with the shared secret (package upstreamsig): a
// signed-in page, an API call with a bearer token, a skip_paths request; over the path
// the application receives (the one the filter judged); and a signature, or an identity
// header, a client sends in any spelling never survives.
func TestUpstreamSignatureProvesTheFilterSentIt(t *testing.T) {
	secret := strings.Repeat("u", 24) + "-upstream-secret"
	s := newStack(t, stackOptions{
		config: map[string]any{"upstream_signature": map[string]any{"secret_env": "ENTRA_UPSTREAM_SECRET"}, "api_audiences": apiAudiences},
		env:    map[string]string{"ENTRA_UPSTREAM_SECRET": secret},
	})
	b := s.browser()
	if done := b.signIn("/app", "ada@contoso.example"); done.status != 302 {
		t.Fatalf("sign-in ended with %d", done.status)
	}
	token, err := s.mock.MintAccessToken(mockentra.AccessToken{User: s.mock.Users()[0], Audience: mockentra.DemoClientID,
		Scopes: []string{"access_as_user"}, IssuerBase: s.mockURL})
	if err != nil {
		t.Fatal(err)
	}
	forged := "v1;t=" + time.Now().Format("20060102") + ";h=;s=" + strings.Repeat("A", 43)
	verify := func(t *testing.T, got seen, secrets ...string) error {
		t.Helper()
		if n := len(got.Headers[upstreamsig.Header]); n != 1 {
			t.Fatalf("the application got %d signature headers, want 1: %v", n, got.Headers)
		}
		var keys [][]byte
		for _, k := range secrets {
			keys = append(keys, []byte(k))
		}
		return upstreamsig.Verify(got.Headers, upstreamsig.Request{Method: got.Method, Authority: got.Host, Path: got.Path},
			keys, time.Now(), 30*time.Second)
	}
	for _, tc := range []struct {
		name    string
		path    string
		headers []string
		// wantPath is the path the application gets; wantSigned the headers signed.
		wantPath   string
		wantSigned []string
	}{
		{"signed-in page", "/reports?year=2026", nil, "/reports?year=2026",
			[]string{"x-auth-request-user", "x-auth-request-email", "x-auth-request-oid", "x-auth-request-tid"}},
		{"path the filter normalized", "/a/../reports/./2026", nil, "/reports/2026", []string{"x-auth-request-user"}},
		{"forged signature and identity", "/page", []string{"X-Auth-Request-Signature", forged, "X_Auth_Request_Signature", forged,
			"X-Auth-Request-Roles", "Admin"}, "/page", []string{"x-auth-request-user"}},
		{"skip_paths request", "/healthz", []string{"X-Auth-Request-Signature", forged}, "/healthz", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := b.get(tc.path, tc.headers...)
			if p.status != 200 {
				t.Fatalf("%s: %d %.300s", tc.path, p.status, p.body)
			}
			got := p.echoed(t)
			if got.Path != tc.wantPath {
				t.Fatalf("the application got %s, want %s", got.Path, tc.wantPath)
			}
			if err := verify(t, got, "an old secret, still accepted while rotating", secret); err != nil {
				t.Fatalf("the application refuses what the filter sent: %v\n%s", err, got.Headers[upstreamsig.Header])
			}
			parsed, err := upstreamsig.Parse(got.Headers[upstreamsig.Header][0])
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range tc.wantSigned {
				if !strings.Contains(","+strings.Join(parsed.Headers, ",")+",", ","+name+",") {
					t.Errorf("%s is not signed: %v", name, parsed.Headers)
				}
			}
			if tc.wantSigned == nil && len(parsed.Headers) != 0 {
				t.Errorf("a request without identity has signed headers %v", parsed.Headers)
			}
			// The same request, seen by an application with another secret, or for
			// another path, is refused.
			if err := verify(t, got, strings.Repeat("x", 40)); !errors.Is(err, upstreamsig.ErrSignature) {
				t.Errorf("with another secret: %v, want ErrSignature", err)
			}
			got.Path += "x"
			if err := verify(t, got, secret); !errors.Is(err, upstreamsig.ErrSignature) {
				t.Errorf("for another path: %v, want ErrSignature", err)
			}
		})
	}
	t.Run("bearer API call", func(t *testing.T) {
		p := s.browser().get("/api/items", "Accept", "application/json", "Authorization", "Bearer "+token)
		if p.status != 200 {
			t.Fatalf("%d %.300s", p.status, p.body)
		}
		if err := verify(t, p.echoed(t), secret); err != nil {
			t.Fatalf("the application refuses the bearer request's signature: %v", err)
		}
	})
}
