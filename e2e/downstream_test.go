package e2e

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// jwtClaims decodes a token's payload (no verification: the test only reads it).
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %.40q", token)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

const apiScope = "api://" + mockentra.DemoClientID + "/access_as_user"

func TestAccessTokenAndOnBehalfOfForTheUpstream(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{
		"scopes":               "openid profile email offline_access " + apiScope,
		"forward_access_token": "x-auth-request-access-token",
		"obo_scopes":           []string{"https://graph.microsoft.com/User.Read"},
	}})
	b := s.browser()
	b.signIn("/", "ada@contoso.example")
	got := b.get("/app", "X-Auth-Request-Access-Token", "forged", "X-Auth-Request-Obo-Token", "forged").echoed(t)

	access := got.Headers["x-auth-request-access-token"]
	if len(access) != 1 {
		t.Fatalf("access token headers %v", access)
	}
	if c := jwtClaims(t, access[0]); c["aud"] != mockentra.DemoClientID || c["scp"] != "access_as_user" || c["oid"] != "00000000-0000-0000-0000-00000000ada1" {
		t.Errorf("forwarded access token %v", c)
	}
	obo := got.Headers["x-auth-request-obo-token"]
	if len(obo) != 1 {
		t.Fatalf("on-behalf-of token headers %v", obo)
	}
	if c := jwtClaims(t, obo[0]); c["aud"] != mockentra.GraphAudience || c["scp"] != "User.Read" || c["oid"] != "00000000-0000-0000-0000-00000000ada1" {
		t.Errorf("on-behalf-of token %v", c)
	}
	// The downstream token is kept until near its expiry.
	if again := b.get("/app").echoed(t).Headers["x-auth-request-obo-token"]; len(again) != 1 || again[0] != obo[0] || s.mock.OBORequests.Load() != 1 {
		t.Errorf("second request: %d on-behalf-of exchanges, same token: %v", s.mock.OBORequests.Load(), len(again) == 1 && again[0] == obo[0])
	}
	checkNoTokenLogged(t, s)
}

func TestAccessTokenInAuthorization(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{"scopes": "openid profile email offline_access " + apiScope, "forward_access_token": "authorization"}})
	b := s.browser()
	b.signIn("/", "ada@contoso.example")
	got := b.get("/app", "Authorization", "Basic bWFsbG9yeTpzZWNyZXQ=").echoed(t)
	if v := got.Headers["authorization"]; len(v) != 1 || !strings.HasPrefix(v[0], "Bearer ey") {
		t.Fatalf("authorization upstream: %v", v)
	}
}

func TestOnBehalfOfRefused(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{"scopes": "openid profile email offline_access " + apiScope, "obo_scopes": []string{"User.Read"}}})
	b := s.browser()
	b.signIn("/", "ada@contoso.example")
	if p := b.get("/app"); p.status != 502 || !strings.Contains(p.body, "could not be obtained on your behalf") {
		t.Fatalf("refused exchange: %d %.300s", p.status, p.body)
	}
}
