package e2e

import (
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// apiAudiences accept the demo application's API: its application ID URI (v1 tokens) and
// its client id (v2 tokens).
var apiAudiences = []string{"api://" + mockentra.DemoClientID, mockentra.DemoClientID}

func apiStack(t *testing.T) *stack {
	t.Helper()
	return newStack(t, stackOptions{config: map[string]any{"api_audiences": apiAudiences}})
}

func TestBearerTokens(t *testing.T) {
	s := apiStack(t)
	ada := s.mock.Users()[0]
	base := mockentra.AccessToken{User: ada, ClientID: "b1c2d3e4-0000-4000-8000-000000000001", Audience: mockentra.DemoClientID,
		Scopes: []string{"access_as_user"}, IssuerBase: s.mockURL}
	mint := func(change func(*mockentra.AccessToken)) string {
		a := base
		if change != nil {
			change(&a)
		}
		tok, err := s.mock.MintAccessToken(a)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name  string
		token string
		// want is the status; wantHeaders what the upstream must see, wantError what the
		// WWW-Authenticate header must say.
		want        int
		wantHeaders map[string]string
		wantError   string
	}{
		{name: "v2 delegated", token: mint(nil), want: 200, wantHeaders: map[string]string{
			"x-auth-request-oid": ada.ObjectID, "x-auth-request-user": ada.Username, "x-auth-request-scopes": "access_as_user", "x-auth-request-roles": "Admin"}},
		{name: "v1 delegated", token: mint(func(a *mockentra.AccessToken) { a.Version, a.Audience = 1, "api://"+mockentra.DemoClientID }),
			want: 200, wantHeaders: map[string]string{"x-auth-request-user": ada.Username, "x-auth-request-tid": mockentra.DemoTenant}},
		{name: "application", token: mint(func(a *mockentra.AccessToken) {
			a.User, a.App, a.TenantID, a.Scopes, a.Roles = mockentra.User{}, "5e2c7a10-0000-4000-8000-0000000000a1", mockentra.DemoTenant, nil, []string{"Items.ReadAll"}
		}), want: 200, wantHeaders: map[string]string{"x-auth-request-oid": "5e2c7a10-0000-4000-8000-0000000000a1", "x-auth-request-roles": "Items.ReadAll"}},
		{name: "expired", token: mint(func(a *mockentra.AccessToken) { a.Expired = true }), want: 401, wantError: "expired"},
		{name: "another audience", token: mint(func(a *mockentra.AccessToken) { a.Audience = "api://someone-else" }), want: 401, wantError: "another audience"},
		{name: "Microsoft Graph's token", token: mint(func(a *mockentra.AccessToken) {
			a.Audience, a.GraphNonce, a.Scopes = mockentra.GraphAudience, true, []string{"User.Read"}
		}), want: 401, wantError: "not an access token for this API"},
		{name: "ID-token-like (no scp)", token: mint(func(a *mockentra.AccessToken) { a.Scopes = nil }), want: 401, wantError: "not an access token"},
		{name: "crit header", token: mint(func(a *mockentra.AccessToken) { a.Header = map[string]any{"crit": []string{"exp"}} }), want: 401, wantError: "signature"},
		{name: "unknown key", token: mint(func(a *mockentra.AccessToken) { a.UnknownKey = true }), want: 401, wantError: "signature"},
		{name: "another tenant", token: mint(func(a *mockentra.AccessToken) { a.User = s.mock.Users()[2] }), want: 401, wantError: "tenant"},
		{name: "oversized", token: strings.Repeat("a", 17<<10), want: 401, wantError: "malformed"},
		{name: "not a JWT", token: "opaque-token", want: 401, wantError: "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := s.browser()
			p := c.get("/api/items", "Authorization", "Bearer "+tc.token, "Accept", "application/json",
				"X-Auth-Request-Oid", "forged", "X-Auth-Request-Roles", "Owner")
			if p.status != tc.want {
				t.Fatalf("%d, want %d: %.300s %v", p.status, tc.want, p.body, p.header)
			}
			if p.header.Get("Set-Cookie") != "" || p.location != nil {
				t.Errorf("a bearer request got cookies or a redirect: %v", p.header)
			}
			if tc.want != 200 {
				h := p.header.Get("WWW-Authenticate")
				if !strings.Contains(h, `error="invalid_token"`) || !strings.Contains(h, tc.wantError) {
					t.Errorf("WWW-Authenticate %q, want invalid_token and %q", h, tc.wantError)
				}
				return
			}
			got := p.echoed(t)
			for name, want := range tc.wantHeaders {
				if v := got.Headers[name]; len(v) != 1 || v[0] != want {
					t.Errorf("%s = %v, want [%s]", name, v, want)
				}
			}
			if v := got.Headers["authorization"]; len(v) != 1 || v[0] != "Bearer "+tc.token {
				t.Error("the upstream did not get the Authorization header")
			}
		})
	}
	checkNoTokenLogged(t, s)
}

// checkNoTokenLogged fails the test when the runner's log holds a JWT (they begin eyJ).
func checkNoTokenLogged(t *testing.T, s *stack) {
	t.Helper()
	if strings.Contains(s.runner.stderr.String(), "eyJ") {
		t.Error("a token is in the log")
	}
}

// A browser with a session still signs in and out as before on a site that also accepts
// bearer tokens; a bearer request is never redirected, whatever its Accept.
func TestBearerAndBrowserTogether(t *testing.T) {
	s := apiStack(t)
	b := s.browser()
	if done := b.signIn("/app", "ada@contoso.example"); done.status != 302 {
		t.Fatalf("sign-in: %d", done.status)
	}
	if p := b.get("/app"); p.status != 200 {
		t.Fatalf("session: %d", p.status)
	}
	if p := s.browser().get("/app", "Authorization", "Bearer nope"); p.status != 401 || p.location != nil {
		t.Fatalf("a browser-looking request with a bad bearer token: %d %v", p.status, p.location)
	}
}

// A verified token is remembered until it expires: the same token again is not verified
// again (RS256 in the VM is the expensive part of a bearer request).
func TestBearerCache(t *testing.T) {
	p := newInProcessWith(t, 1, nil, &moreConfig{config: map[string]any{"api_audiences": apiAudiences}})
	token, err := p.mock.MintAccessToken(mockentra.AccessToken{User: p.mock.Users()[0], Audience: mockentra.DemoClientID,
		Scopes: []string{"access_as_user"}, IssuerBase: p.mockURL})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if resp := getWithBearer(t, p.proxy.URL+"/api/items", token); resp.StatusCode != 200 {
			t.Fatalf("bearer request: %d", resp.StatusCode)
		}
	}
	verified, _ := p.host.Metric("entra_auth_bearer_verified")
	hits, _ := p.host.Metric("entra_auth_bearer_cache_hits")
	if verified.Value != 1 || hits.Value != 2 {
		t.Fatalf("3 requests with one token: %d verified, %d cache hits; want 1 and 2", verified.Value, hits.Value)
	}
}

// What a token may claim, through the built module: a token signed by the real key is
// still refused when a claim has the wrong type or a required one is missing; and a
// token that fails a cheap check never costs a key-set refetch, however unknown its key.
func TestTokenClaimsAreStrict(t *testing.T) {
	s := apiStack(t)
	ada := s.mock.Users()[0]
	mint := func(claims map[string]any, unknownKey, expired bool) string {
		tok, err := s.mock.MintAccessToken(mockentra.AccessToken{User: ada, Audience: mockentra.DemoClientID,
			Scopes: []string{"access_as_user"}, IssuerBase: s.mockURL, Claims: claims, UnknownKey: unknownKey, Expired: expired})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	api := s.browser()
	status := func(token string) int {
		return api.get("/api/items", "Accept", "application/json", "Authorization", "Bearer "+token).status
	}
	if got := status(mint(nil, false, false)); got != 200 {
		t.Fatalf("a valid token: %d", got)
	}
	for name, claims := range map[string]map[string]any{
		"aud with a number":   {"aud": []any{mockentra.DemoClientID, 7}},
		"aud as an object":    {"aud": map[string]any{"x": mockentra.DemoClientID}},
		"no iat":              {"iat": nil},
		"tid as a number":     {"tid": 72},
		"roles with a number": {"roles": []any{"Admin", 1}},
		"scp as a list":       {"scp": []string{"access_as_user"}},
		"exp as a string":     {"exp": "4102444800"},
	} {
		if got := status(mint(claims, false, false)); got != 401 {
			t.Errorf("%s: %d, want 401", name, got)
		}
	}

	// Cheap checks first: an expired token under an unknown kid is refused without
	// fetching the key set again; a valid one under an unknown kid fetches it once.
	before := s.mock.KeysRequests.Load()
	for range 5 {
		if got := status(mint(nil, true, true)); got != 401 {
			t.Fatalf("expired, unknown kid: %d", got)
		}
	}
	if n := s.mock.KeysRequests.Load() - before; n != 0 {
		t.Errorf("expired tokens under unknown kids fetched the key set %d times", n)
	}
	if got := status(mint(nil, true, false)); got != 401 || s.mock.KeysRequests.Load()-before != 1 {
		t.Errorf("a valid token under an unknown kid: %d, %d key fetches; want 401 after one", got, s.mock.KeysRequests.Load()-before)
	}
}
