package filter

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/internal/entratest"
	"github.com/entra-auth/entra-auth/upstreamsig"
)

// apiConfig accepts bearer tokens for the client's API, and signs what goes upstream.
var apiConfig = strings.TrimSuffix(testConfig, "}") + `,"api_audiences":["api://` + clientID + `"],
	"upstream_signature":{"secret":"` + strings.Repeat("u", 40) + `"}}`

// accessToken is an access token for the API signed with the tenant's key, changed by
// change.
func accessToken(t *testing.T, change func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"aud": "api://" + clientID, "iss": issuer, "tid": tenant, "sub": "sub-1", "oid": "oid-1", "azp": "client-app",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "ver": "2.0", "scp": "access_as_user",
		"preferred_username": "ada@contoso.com", "roles": []string{"Reader"},
	}
	if change != nil {
		change(claims)
	}
	token := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	token.Header["kid"] = "key-1"
	signed, err := token.SignedString(entratest.RSAKey(t, "signing"))
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// A program with a bearer token is let through with the token's identity (and its
// signature, with upstream_signature); the same token again is a cache hit; a token that
// does not verify is answered 401 without reaching the upstream.
func TestBearerRequests(t *testing.T) {
	host := startedWith(t, apiConfig)
	good := accessToken(t, nil)
	for _, tc := range []struct {
		name       string
		token      string
		wantStatus int // 0: let through
	}{
		{"verified", good, 0},
		{"the same token again (cache)", good, 0},
		{"expired", accessToken(t, func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Hour).Unix() }), 401},
		{"another audience", accessToken(t, func(c jwt.MapClaims) { c["aud"] = "api://someone-else" }), 401},
		{"not a token", "not-a-token", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := host.InitializeHttpContext()
			verifiedBefore, _ := host.GetCounterMetric("entra_auth_bearer_verified")
			hitsBefore, _ := host.GetCounterMetric("entra_auth_bearer_cache_hits")
			defer func() {
				verified, _ := host.GetCounterMetric("entra_auth_bearer_verified")
				hits, _ := host.GetCounterMetric("entra_auth_bearer_cache_hits")
				wantHit := strings.HasSuffix(tc.name, "(cache)")
				if (hits > hitsBefore) != wantHit || (verified > verifiedBefore) != (tc.wantStatus == 0 && !wantHit) {
					t.Errorf("verified %d→%d, cache hits %d→%d: want a %s", verifiedBefore, verified, hitsBefore, hits,
						map[bool]string{true: "cache hit", false: "verification (or a refusal)"}[wantHit])
				}
			}()
			action := host.CallOnRequestHeaders(id, request("/api/items", [2]string{"accept", "application/json"},
				[2]string{"authorization", "Bearer " + tc.token}, [2]string{"x-auth-request-signature", "forged"}), true)
			if tc.wantStatus != 0 {
				resp := host.GetSentLocalResponse(id)
				if action != types.ActionPause || resp == nil || int(resp.StatusCode) != tc.wantStatus {
					t.Fatalf("%v, reply %+v; want %d", action, resp, tc.wantStatus)
				}
				if !strings.HasPrefix(headerOf(resp.Headers, "www-authenticate"), "Bearer ") {
					t.Errorf("the 401 has no WWW-Authenticate: %v", resp.Headers)
				}
				return
			}
			if action != types.ActionContinue {
				t.Fatalf("%v, reply %+v", action, host.GetSentLocalResponse(id))
			}
			headers := host.GetCurrentRequestHeaders(id)
			if got := headerOf(headers, "x-auth-request-user"); got != "ada@contoso.com" {
				t.Errorf("x-auth-request-user = %q", got)
			}
			if got := headerOf(headers, "x-auth-request-scopes"); got != "access_as_user" {
				t.Errorf("x-auth-request-scopes = %q", got)
			}
			sigs := 0
			for _, h := range headers {
				if h[0] == upstreamsig.Header {
					sigs++
				}
			}
			parsed, err := upstreamsig.Parse(headerOf(headers, upstreamsig.Header))
			if sigs != 1 || err != nil || !strings.Contains(strings.Join(parsed.Headers, ","), "x-auth-request-user") {
				t.Errorf("%d signature headers (the client's forged one must go), %v, %v", sigs, parsed, err)
			}
		})
	}
}

// Authorization rules apply to bearer tokens too: a token without the role is 403.
func TestBearerForbiddenByRole(t *testing.T) {
	host := startedWith(t, strings.TrimSuffix(apiConfig, "}")+`,"allowed_roles":["Admin"]}`)
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/api/items", [2]string{"accept", "application/json"},
		[2]string{"authorization", "Bearer " + accessToken(t, nil)}), true)
	if resp := host.GetSentLocalResponse(id); resp == nil || resp.StatusCode != 403 {
		t.Fatalf("a token without the required role: %+v, want 403", resp)
	}
}
