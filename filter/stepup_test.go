package filter

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/internal/entratest"
)

var stepUpConfig = strings.TrimSuffix(testConfig, "}") + `,"rules":[{"path":"/admin/*","auth_context":"c1"},{"path":"/profile","max_auth_age":"10m"}]}`

// stepUpCallback answers the step-up sign-in the browser was sent to (location), as
// Entra would, with an ID token changed by change; it returns the callback's reply.
func stepUpCallback(t *testing.T, host proxytest.HostEmulator, location, signInCookie string, change func(jwt.MapClaims)) *proxytest.LocalHttpResponse {
	t.Helper()
	loc, _ := url.Parse(location)
	q := loc.Query()
	cb := host.InitializeHttpContext()
	host.CallOnRequestHeaders(cb, request("/.auth/callback?code=c2&state="+url.QueryEscape(q.Get("state")), browserAccept, [2]string{"cookie", signInCookie}), true)
	calls := host.GetCalloutAttributesFromContext(cb)
	if len(calls) != 1 {
		t.Fatalf("no token request: %+v", host.GetSentLocalResponse(cb))
	}
	tokens, _ := json.Marshal(map[string]any{"id_token": idToken(t, "key-1", entratest.RSAKey(t, "signing"), q.Get("nonce"), change),
		"access_token": "at", "expires_in": 3599})
	host.CallOnHttpCallResponse(calls[0].CalloutID, [][2]string{{":status", "200"}}, nil, tokens)
	return host.GetSentLocalResponse(cb)
}

// A signed-in browser opening a page that asks for an authentication context it lacks
// signs in again, asking Entra for it, and comes back to the page with it; Entra not
// satisfying it leaves the page out of reach (403 naming the requirement); a program
// gets a 401 challenge.
func TestStepUpToAnAuthenticationContext(t *testing.T) {
	host := startedWith(t, stepUpConfig)
	session := signIn(t, host)

	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/admin/users", append(session, browserAccept)...), true)
	r := host.GetSentLocalResponse(id)
	if r == nil || r.StatusCode != 302 {
		t.Fatalf("step-up: %+v", r)
	}
	location := headerOf(r.Headers, "location")
	loc, _ := url.Parse(location)
	if loc.Query().Get("claims") != `{"id_token":{"acrs":{"essential":true,"value":"c1"}}}` {
		t.Fatalf("the authorize request does not ask for c1: %s", location)
	}
	signInCookie, _, _ := strings.Cut(headerOf(r.Headers, "set-cookie"), ";")

	t.Run("Entra does not satisfy it", func(t *testing.T) {
		done := stepUpCallback(t, host, location, signInCookie, nil)
		if done == nil || done.StatusCode != 403 || !strings.Contains(string(done.Data), "authentication context c1") || len(sessionCookies(done)) != 0 {
			t.Fatalf("callback without c1: %+v", done)
		}
	})

	id = host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/admin/users", append(session, browserAccept)...), true)
	r = host.GetSentLocalResponse(id)
	location = headerOf(r.Headers, "location")
	signInCookie, _, _ = strings.Cut(headerOf(r.Headers, "set-cookie"), ";")
	done := stepUpCallback(t, host, location, signInCookie, func(c jwt.MapClaims) { c["acrs"] = []string{"c1"} })
	if done == nil || done.StatusCode != 302 || headerOf(done.Headers, "location") != "/admin/users" {
		t.Fatalf("callback with c1: %+v", done)
	}
	stepped := sessionCookies(done)
	id = host.InitializeHttpContext()
	if a := host.CallOnRequestHeaders(id, request("/admin/users", append(stepped, browserAccept)...), true); a != types.ActionContinue {
		t.Fatalf("after the step-up: %v %+v", a, host.GetSentLocalResponse(id))
	}
	if got := headerOf(host.GetCurrentRequestHeaders(id), "x-auth-request-acrs"); got != "c1" {
		t.Errorf("x-auth-request-acrs = %q", got)
	}

	// A script of the page, with the session that lacks the context: a challenge.
	id = host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/admin/api", append(session, [2]string{"accept", "application/json"})...), true)
	r = host.GetSentLocalResponse(id)
	if r == nil || r.StatusCode != 401 || !strings.Contains(headerOf(r.Headers, "www-authenticate"), `error="insufficient_claims"`) {
		t.Fatalf("a program's request: %+v", r)
	}
}

// A page that asks for a recent sign-in sends a browser whose sign-in is older to sign in
// again with max_age and prompt=login.
func TestStepUpToARecentSignIn(t *testing.T) {
	host := startedWith(t, stepUpConfig)
	cb := exchangeCodeAnswering(t, host, func(nonce string) map[string]any {
		return map[string]any{"id_token": idToken(t, "key-1", entratest.RSAKey(t, "signing"), nonce, func(c jwt.MapClaims) {
			c["auth_time"] = time.Now().Add(-time.Hour).Unix()
		}), "access_token": "at", "expires_in": 3599}
	})
	session := sessionCookies(host.GetSentLocalResponse(cb))
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/profile", append(session, browserAccept)...), true)
	r := host.GetSentLocalResponse(id)
	loc, _ := url.Parse(headerOf(r.Headers, "location"))
	if r.StatusCode != 302 || loc.Query().Get("max_age") != "600" || loc.Query().Get("prompt") != "login" {
		t.Fatalf("step-up for a recent sign-in: %d %s", r.StatusCode, loc)
	}
	// Elsewhere the hour-old sign-in is fine.
	id = host.InitializeHttpContext()
	if a := host.CallOnRequestHeaders(id, request("/app", append(session, browserAccept)...), true); a != types.ActionContinue {
		t.Fatalf("/app: %v", a)
	}
}

// A bearer token lacking what the path asks gets the challenge its client can act on.
func TestBearerStepUpChallenges(t *testing.T) {
	host := startedWith(t, strings.TrimSuffix(apiConfig, "}")+`,"rules":[{"path":"/api/admin/*","auth_context":"c1"},{"path":"/api/recent","max_auth_age":"5m"}]}`)
	for _, tc := range []struct {
		name, path string
		change     func(jwt.MapClaims)
		wantError  string // "" when let through
	}{
		{"no context", "/api/admin/x", nil, "insufficient_claims"},
		{"the context", "/api/admin/x", func(c jwt.MapClaims) { c["acrs"] = []string{"c1"} }, ""},
		{"an old authentication", "/api/recent", func(c jwt.MapClaims) { c["auth_time"] = time.Now().Add(-time.Hour).Unix() }, "insufficient_user_authentication"},
		{"a recent one", "/api/recent", func(c jwt.MapClaims) { c["auth_time"] = time.Now().Unix() }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := host.InitializeHttpContext()
			a := host.CallOnRequestHeaders(id, request(tc.path, [2]string{"authorization", "Bearer " + accessToken(t, tc.change)}), true)
			r := host.GetSentLocalResponse(id)
			if tc.wantError == "" {
				if a != types.ActionContinue || r != nil {
					t.Fatalf("%v %+v, want through", a, r)
				}
				return
			}
			if r == nil || r.StatusCode != 401 || !strings.Contains(headerOf(r.Headers, "www-authenticate"), `error="`+tc.wantError+`"`) {
				t.Fatalf("%+v, want 401 %s", r, tc.wantError)
			}
		})
	}
}

// The application's claims challenge, seen in the response headers, becomes the sign-in
// that asks for its claims; an unacceptable claims request is passed on, with a warning.
func TestFollowsTheApplicationsClaimsChallenge(t *testing.T) {
	host := startedWith(t, strings.TrimSuffix(testConfig, "}")+`,"follow_claims_challenges":true}`)
	session := signIn(t, host)
	for _, tc := range []struct {
		name, claims string
		want         uint32 // 0: the application's 401 goes on
	}{
		{"a context", `eyJpZF90b2tlbiI6eyJhY3JzIjp7ImVzc2VudGlhbCI6dHJ1ZSwidmFsdWUiOiJjMiJ9fX0=`, 302},
		{"not JSON", `bm9wZQ==`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := host.InitializeHttpContext()
			if a := host.CallOnRequestHeaders(id, request("/reports", append(session, browserAccept)...), true); a != types.ActionContinue {
				t.Fatalf("request: %v", a)
			}
			a := host.CallOnResponseHeaders(id, [][2]string{{":status", "401"},
				{"www-authenticate", `Bearer error="insufficient_claims", claims="` + tc.claims + `"`}}, false)
			r := host.GetSentLocalResponse(id)
			if tc.want == 0 {
				if a != types.ActionContinue || r != nil {
					t.Fatalf("%v %+v, want the 401 passed on", a, r)
				}
				return
			}
			loc, _ := url.Parse(headerOf(r.Headers, "location"))
			if r.StatusCode != tc.want || loc.Query().Get("claims") != `{"id_token":{"acrs":{"essential":true,"value":"c2"}}}` {
				t.Fatalf("%+v", r)
			}
		})
	}
}
