package flow

import (
	"crypto/rsa"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entra-auth/entra-auth/internal/entratest"
	"github.com/entra-auth/entra-auth/jwks"
)

// The native benchmarks here are the filter's per-request work without the VM: e2e's
// benchmarks run the same paths inside the module under wazero, so the two side by side
// give the cost of Wasm.

// benchHeaders are a browser's request headers carrying cookie.
func benchHeaders(path, cookie string) [][2]string {
	h := [][2]string{
		{":authority", "app.contoso.com"}, {":path", path}, {":method", "GET"}, {":scheme", "https"},
		{"accept", "text/html"}, {"user-agent", "bench"}, {"x-request-id", "r"},
	}
	if cookie != "" {
		h = append(h, [2]string{"cookie", cookie})
	}
	return h
}

// BenchmarkSignedInRequest is the filter's work on a request: read the request's headers
// and cookies, then for a signed-in browser open the session (from the per-VM cache of
// opened sessions, or decrypting and decoding it when the cache does not have it) and
// build the identity headers; for a signed-out browser, start the sign-in (state, nonce,
// PKCE, the sealed sign-in cookie, the redirect).
func BenchmarkSignedInRequest(b *testing.B) {
	for _, tc := range []struct {
		name     string
		signedIn bool
		cacheHit bool
	}{{"session-cache-hit", true, true}, {"session-cache-miss", true, false}, {"signed-out-redirect", false, false}} {
		b.Run(tc.name, func(b *testing.B) {
			f, _ := newFlow(b, "")
			var cookie string
			if tc.signedIn {
				for name, value := range signedIn(b, f, testSession(2)).jar {
					cookie += name + "=" + value + "; "
				}
			}
			headers := benchHeaders("/page", cookie)
			b.ReportAllocs()
			for b.Loop() {
				if !tc.cacheHit {
					f.opened.Clear()
				}
				r := NewRequest(headers)
				s, err := f.Authenticate(r)
				if !tc.signedIn {
					resp, err := f.StartSignIn(r, testDiscovery, SafeReturnPath(r.Path))
					if err != nil || resp.Status != 302 {
						b.Fatal(err)
					}
					continue
				}
				if err != nil {
					b.Fatal(err)
				}
				if len(f.Identity(s)) != 7 {
					b.Fatal("headers")
				}
			}
		})
	}
}

// benchKey is an RS256 signing key and the key set that publishes it, as Entra does.
func benchKey(b *testing.B) (*rsa.PrivateKey, *jwks.Set) {
	key := entratest.RSAKey(b, "bench")
	set, err := jwks.Parse(entratest.JWKS(b, entratest.JWK("bench-key", &key.PublicKey, "")))
	if err != nil {
		b.Fatal(err)
	}
	return key, set
}

func mint(b *testing.B, key *rsa.PrivateKey, claims jwt.MapClaims) string {
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = "bench-key"
	s, err := t.SignedString(key)
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// userClaims are the claims Entra puts in a token about a user.
func userClaims(aud string) jwt.MapClaims {
	return jwt.MapClaims{
		"aud": aud, "iss": testDiscovery.Issuer, "iat": testNow.Unix(), "nbf": testNow.Unix(), "exp": testNow.Add(time.Hour).Unix(),
		"sub": "sub-1", "oid": "00000000-0000-0000-0000-00000000ada1", "tid": "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"preferred_username": "ada@contoso.com", "name": "Ada Lovelace", "email": "ada@contoso.com", "ver": "2.0",
		"groups": []string{"a4f7c0d2-1111-4a5b-9c3d-000000000001", "a4f7c0d2-1111-4a5b-9c3d-000000000002"}, "roles": []string{"Admin"},
	}
}

// BenchmarkCallback is the filter's work on the callback, the token endpoint's answer
// given locally: check the state against the sign-in cookie, parse the token response,
// verify the ID token (RS256, claims, nonce), make the session and seal it into cookies.
func BenchmarkCallback(b *testing.B) {
	f, clk := newFlow(b, "")
	key, keys := benchKey(b)
	verifier := jwks.NewVerifier(jwks.Config{ClientID: f.cfg.ClientID, Issuer: testDiscovery.Issuer, Now: clk.now})
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		br := newBrowser()
		r := br.request("/.auth/callback?code=c&state=" + signIn(b, f, br, "/page"))
		b.StartTimer()
		cb, err := f.BeginCallback(r)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		claims := userClaims(f.cfg.ClientID)
		claims["nonce"] = cb.SignIn.Nonce
		body := fmt.Sprintf(`{"token_type":"Bearer","scope":"openid profile email","expires_in":3600,"access_token":"at","refresh_token":"rt","id_token":%q}`,
			mint(b, key, claims))
		b.StartTimer()
		tokens, err := ParseTokenResponse(200, []byte(body))
		if err != nil {
			b.Fatal(err)
		}
		c, err := verifier.Verify(tokens.IDToken, keys, cb.SignIn.Nonce)
		if err != nil {
			b.Fatal(err)
		}
		s, err := f.NewSession(c, tokens, cb.SignIn.Nonce)
		if err != nil {
			b.Fatal(err)
		}
		if resp, err := f.CompleteSignIn(r, cb, s); err != nil || resp.Status != 302 {
			b.Fatal(err)
		}
	}
}

// BenchmarkBearer is the filter's work on an API request with a bearer access token: a
// token verified before (cache hit) or a new one (RS256 and the access-token rules).
func BenchmarkBearer(b *testing.B) {
	for _, hit := range []bool{true, false} {
		b.Run(map[bool]string{true: "cache-hit", false: "cache-miss"}[hit], func(b *testing.B) {
			f, clk := newFlow(b, `,"api_audiences":["api://app"]`)
			key, keys := benchKey(b)
			access := jwks.NewAccessVerifier(jwks.AccessConfig{Audiences: f.cfg.APIAudiences, Issuer: testDiscovery.Issuer, Now: clk.now})
			claims := userClaims("api://app")
			claims["scp"] = "access_as_user"
			token := mint(b, key, claims)
			if c, err := access.Verify(token, keys); err != nil {
				b.Fatal(err)
			} else {
				f.RememberBearer(token, c)
			}
			b.ReportAllocs()
			for b.Loop() {
				if !hit {
					f.verified.Clear()
				}
				r := NewRequest(append(benchHeaders("/api/items", ""), [2]string{"authorization", "Bearer " + token}))
				id, ok := f.CachedBearer(r.Bearer)
				if !ok {
					c, err := access.Verify(r.Bearer, keys)
					if err != nil {
						b.Fatal(err)
					}
					id = f.RememberBearer(r.Bearer, c)
				}
				if ok != hit || len(BearerHeaders(id)) != 8 {
					b.Fatalf("cache hit %v, %d headers", ok, len(BearerHeaders(id)))
				}
			}
		})
	}
}

// BenchmarkUserSync is the filter's own work for the call-out: mapping the claims, the
// request body, and the fingerprint kept in the session.
func BenchmarkUserSync(b *testing.B) {
	f := newSyncFlow(b, `{`+syncBase+`,"flags":{"is_staff":{"groups":["g2"]},"is_superuser":{"roles":["Admin"]}}}`)
	c := claimsOf(b, `{"aud":"c","iss":"https://login.microsoftonline.com/t/v2.0","iat":1,"nbf":1,"exp":2,"name":"Ada Lovelace",
		"email":"ada@contoso.com","oid":"o","preferred_username":"ada@contoso.com","roles":["Admin"],"groups":["g1","g2"],"sub":"s","tid":"t","ver":"2.0"}`)
	for b.Loop() {
		u := f.syncUser(c)
		if len(must(f.UserSyncRequest(u))(b).Body) == 0 || u.Fingerprint() == "" {
			b.Fatal("empty")
		}
		if _, err := ParseUserSyncResponse(200, []byte(`{"user_id":"42"}`)); err != nil {
			b.Fatal(err)
		}
	}
}
