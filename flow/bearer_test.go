package flow

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/jwks"
)

func TestRouteBearer(t *testing.T) {
	plain, _ := newFlow(t, `,"skip_paths":["/healthz"]`)
	api, _ := newFlow(t, `,"skip_paths":["/healthz"],"api_audiences":["api://app"]`)
	req := func(path, authorization string) *Request {
		return NewRequest([][2]string{{":path", path}, {"authorization", authorization}})
	}
	for _, tc := range []struct {
		f          *Flow
		path, auth string
		want       Route
	}{
		{api, "/items", "Bearer eyJ.x.y", RouteBearer},
		{api, "/items", "bearer  eyJ.x.y ", RouteBearer},
		{api, "/items", "Basic dXNlcjpw", RouteProtected},
		{api, "/healthz", "Bearer eyJ.x.y", RouteSkip},
		{api, "/.auth/me", "Bearer eyJ.x.y", RouteMe},
		{plain, "/items", "Bearer eyJ.x.y", RouteProtected},
	} {
		if got := tc.f.Route(req(tc.path, tc.auth)); got != tc.want {
			t.Errorf("%s %q (api_audiences %v): route %v, want %v", tc.path, tc.auth, tc.f.cfg.APIAudiences, got, tc.want)
		}
	}
	if got := req("/", "Bearer  abc ").Bearer; got != "abc" {
		t.Errorf("bearer %q", got)
	}
}

func TestBearerCache(t *testing.T) {
	f, clock := newFlow(t, `,"api_audiences":["api://app"]`)
	c := claimsOf(t, fmt.Sprintf(`{"oid":"o","tid":"t","sub":"s","unique_name":"ada@contoso.com","scp":"read write","roles":["Admin"],"exp":%d}`, testNow.Add(time.Hour).Unix()))
	if _, ok := f.CachedBearer("tok"); ok {
		t.Fatal("hit before any verification")
	}
	id := f.RememberBearer("tok", c)
	if id.User.Username != "ada@contoso.com" || strings.Join(id.Scopes, ",") != "read,write" || !id.Expires.Equal(testNow.Add(time.Hour)) {
		t.Errorf("identity %+v %+v", id, id.User)
	}
	if got, ok := f.CachedBearer("tok"); !ok || got != id {
		t.Error("no hit for the same token")
	}
	if _, ok := f.CachedBearer("tok2"); ok {
		t.Error("a hit for another token")
	}
	clock.t = testNow.Add(time.Hour)
	if _, ok := f.CachedBearer("tok"); ok || f.verified.Len() != 0 {
		t.Error("an expired token stayed cached")
	}
	clock.t = testNow
	for i := range maxVerifiedTokens + 10 {
		f.RememberBearer(fmt.Sprint(i), c)
	}
	if f.verified.Len() > maxVerifiedTokens {
		t.Errorf("%d cached tokens", f.verified.Len())
	}
	headers := map[string]string{}
	for _, h := range BearerHeaders(id) {
		headers[h[0]] = h[1]
	}
	if headers[HeaderScopes] != "read write" || headers[HeaderRoles] != "Admin" || headers[HeaderOID] != "o" {
		t.Errorf("headers %v", headers)
	}
}

func TestBearerRefused(t *testing.T) {
	f, _ := newFlow(t, `,"api_audiences":["api://app"]`)
	r := &Request{Authority: "api.contoso.com"}
	for err, want := range map[error]string{
		jwks.ErrExpired:                       "expired",
		fmt.Errorf("x: %w", jwks.ErrAudience): "another audience",
		jwks.ErrNotAccessToken:                "not an access token",
		jwks.ErrSignature:                     "signature",
		errors.New("other"):                   "not valid",
	} {
		resp := f.BearerRefused(r, err, "req-1")
		h := header(resp, "www-authenticate")
		if resp.Status != 401 || !strings.HasPrefix(h, `Bearer realm="api.contoso.com", error="invalid_token", error_description="`) || !strings.Contains(h, want) {
			t.Errorf("%v: %d %q", err, resp.Status, h)
		}
	}
}
