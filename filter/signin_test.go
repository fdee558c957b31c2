package filter

import (
	"encoding/json"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/internal/entratest"
)

// rootCall is the last call dispatched from the plugin's root context (a metadata fetch).
func rootCall(t *testing.T, host proxytest.HostEmulator) proxytest.HttpCalloutAttribute {
	t.Helper()
	calls := host.GetCalloutAttributesFromContext(proxytest.PluginContextID)
	if len(calls) == 0 {
		t.Fatal("no call from the root context")
	}
	return calls[len(calls)-1]
}

// Entra rolls its signing keys: an ID token signed with a key the filter has not seen
// makes it fetch the key set again (once, from the root context on the next tick), and
// the sign-in completes with the new key. A second unknown key within the refetch limit
// is refused without a fetch: a stream of forged kids cannot make the filter hammer Entra.
func TestSignInAfterKeyRotation(t *testing.T) {
	host := started(t)
	rotated := entratest.RSAKey(t, "rotated")
	cb := exchangeCodeAnswering(t, host, func(nonce string) map[string]any {
		return map[string]any{"id_token": idToken(t, "key-2", rotated, nonce, nil), "access_token": "at", "expires_in": 3599}
	})
	if r := host.GetSentLocalResponse(cb); r != nil {
		t.Fatalf("answered before the keys were fetched again: %+v", r)
	}
	fetches := len(host.GetCalloutAttributesFromContext(proxytest.PluginContextID))
	host.Tick()
	call := rootCall(t, host)
	if n := len(host.GetCalloutAttributesFromContext(proxytest.PluginContextID)); n != fetches+1 || !strings.HasSuffix(headerOf(call.Headers, ":path"), "/discovery/v2.0/keys") {
		t.Fatalf("after the tick: %d root calls, the last %v; want one JWKS fetch", n-fetches, call.Headers)
	}
	host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", "200"}}, nil, entratest.JWKS(t,
		entratest.JWK("key-1", &entratest.RSAKey(t, "signing").PublicKey, ""),
		entratest.JWK("key-2", &rotated.PublicKey, "")))
	done := host.GetSentLocalResponse(cb)
	if done == nil || done.StatusCode != 302 || headerOf(done.Headers, "location") != "/app" {
		t.Fatalf("after the refetch: %+v; logs %v", done, host.GetWarnLogs())
	}

	other := entratest.RSAKey(t, "forged")
	cb = exchangeCodeAnswering(t, host, func(nonce string) map[string]any {
		return map[string]any{"id_token": idToken(t, "key-3", other, nonce, nil), "access_token": "at", "expires_in": 3599}
	})
	host.Tick()
	if n := len(host.GetCalloutAttributesFromContext(proxytest.PluginContextID)); n != fetches+1 {
		t.Fatalf("a second unknown kid within the limit fetched again (%d root calls)", n-fetches)
	}
	if r := host.GetSentLocalResponse(cb); r == nil || r.StatusCode < 400 {
		t.Fatalf("a token signed with an unknown key: %+v, want refused", r)
	}
}

// An ID token that does not verify (here: for another application) ends the sign-in with
// an error page, counted as a failed sign-in, and no session.
func TestSignInRefusesAnIDTokenForAnotherApp(t *testing.T) {
	host := started(t)
	cb := exchangeCodeAnswering(t, host, func(nonce string) map[string]any {
		return map[string]any{"id_token": idToken(t, "key-1", entratest.RSAKey(t, "signing"), nonce, func(c jwt.MapClaims) {
			c["aud"] = "another-app"
		}), "access_token": "at", "expires_in": 3599}
	})
	r := host.GetSentLocalResponse(cb)
	if r == nil || r.StatusCode < 400 {
		t.Fatalf("a token for another app: %+v, want an error page", r)
	}
	for _, c := range sessionCookies(r) {
		if strings.HasPrefix(c[1], "__Host-entra-auth=") {
			t.Fatalf("a token for another app made a session: %v", c)
		}
	}
	if m, err := host.GetCounterMetric("entra_auth_sign_ins_failed"); err != nil || m != 1 {
		t.Errorf("sign_ins_failed = %d, %v; want 1", m, err)
	}
}

// graphConfig reads the groups from Microsoft Graph when a token leaves them out.
var graphConfig = strings.TrimSuffix(testConfig, "}") + `,"graph_cluster":"graph"}`

// overageToken is an ID token that says the user has too many groups to carry.
func overageToken(t *testing.T, nonce string) string {
	return idToken(t, "key-1", entratest.RSAKey(t, "signing"), nonce, func(c jwt.MapClaims) {
		delete(c, "groups")
		c["_claim_names"] = map[string]string{"groups": "src1"}
		c["_claim_sources"] = map[string]any{"src1": map[string]string{"endpoint": "https://evil.example/groups"}}
	})
}

// A token that leaves the groups out (the overage) makes the filter read them from Graph
// with the user's access token, through graph_cluster and never the URL the token names;
// Graph failing ends the sign-in rather than sign in without groups.
func TestSignInReadsGroupsFromGraphOnOverage(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		wantStatus uint32
		wantGroups string
	}{
		{"Graph answers", 200, `{"value":["g7","g8",42]}`, 302, "g7,g8"},
		{"Graph refuses", 403, `{"error":{"code":"Authorization_RequestDenied"}}`, 503, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := startedWith(t, graphConfig)
			cb := exchangeCodeAnswering(t, host, func(nonce string) map[string]any {
				return map[string]any{"id_token": overageToken(t, nonce), "access_token": "graph-at", "expires_in": 3599}
			})
			calls := host.GetCalloutAttributesFromContext(cb)
			graph := calls[len(calls)-1]
			if graph.Upstream != "graph" || headerOf(graph.Headers, ":path") != "/v1.0/me/getMemberObjects" ||
				headerOf(graph.Headers, ":authority") != "graph.microsoft.com" || headerOf(graph.Headers, "authorization") != "Bearer graph-at" {
				t.Fatalf("the Graph call: %s %v", graph.Upstream, graph.Headers)
			}
			host.CallOnHttpCallResponse(graph.CalloutID, [][2]string{{":status", strconv.Itoa(tc.status)}}, nil, []byte(tc.body))
			done := host.GetSentLocalResponse(cb)
			if done == nil || done.StatusCode != tc.wantStatus {
				t.Fatalf("after Graph: %+v, want %d", done, tc.wantStatus)
			}
			if tc.wantGroups == "" {
				if !strings.Contains(string(done.Data), "Microsoft Graph") || headerOf(done.Headers, "set-cookie") != "" {
					t.Errorf("Graph failing: the page does not say so, or a session was made: %s %v", done.Data, done.Headers)
				}
				return
			}
			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, request("/app", sessionCookies(done)...), true)
			if got := headerOf(host.GetCurrentRequestHeaders(id), "x-auth-request-groups"); got != tc.wantGroups {
				t.Errorf("groups upstream %q, want %q", got, tc.wantGroups)
			}
		})
	}
}

// The provider's metadata failing to load answers the waiting sign-in with a page that
// says the identity provider is unavailable, and the next request within the backoff
// fails at once instead of piling up paused streams.
func TestMetadataFetchFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		want   uint32 // 503: Entra unreachable; 502: Entra answered what cannot be used
		answer func(host proxytest.HostEmulator)
	}{
		{"discovery 500", 503, func(host proxytest.HostEmulator) {
			host.CallOnHttpCallResponse(rootCall(t, host).CalloutID, [][2]string{{":status", "500"}}, nil, []byte("oops"))
		}},
		{"no answer", 503, func(host proxytest.HostEmulator) {
			host.CallOnHttpCallResponse(rootCall(t, host).CalloutID, nil, nil, nil)
		}},
		{"JWKS not JSON", 502, func(host proxytest.HostEmulator) {
			host.CallOnHttpCallResponse(rootCall(t, host).CalloutID, [][2]string{{":status", "200"}}, nil, discoveryJSON())
			host.CallOnHttpCallResponse(rootCall(t, host).CalloutID, [][2]string{{":status", "200"}}, nil, []byte("<html>"))
		}},
		{"discovery without a token endpoint", 502, func(host proxytest.HostEmulator) {
			var doc map[string]string
			json.Unmarshal(discoveryJSON(), &doc)
			delete(doc, "token_endpoint")
			body, _ := json.Marshal(doc)
			host.CallOnHttpCallResponse(rootCall(t, host).CalloutID, [][2]string{{":status", "200"}}, nil, body)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := newHost(t, testConfig)
			if host.StartPlugin() != types.OnPluginStartStatusOK {
				t.Fatal("plugin did not start")
			}
			id := host.InitializeHttpContext()
			if a := host.CallOnRequestHeaders(id, request("/app", browserAccept), true); a != types.ActionPause {
				t.Fatalf("before the metadata: %v, want the request to wait", a)
			}
			host.Tick()
			tc.answer(host)
			r := host.GetSentLocalResponse(id)
			if r == nil || r.StatusCode != tc.want {
				t.Fatalf("the waiting request: %+v, want %d", r, tc.want)
			}
			if len(host.GetErrorLogs()) == 0 {
				t.Error("the failed fetch was not logged as an error")
			}
			next := host.InitializeHttpContext()
			host.CallOnRequestHeaders(next, request("/app", browserAccept), true)
			if r := host.GetSentLocalResponse(next); r == nil || r.StatusCode != tc.want {
				t.Fatalf("a request within the backoff: %+v, want %d at once", r, tc.want)
			}
		})
	}
}

// A callback visited again (a reload, the back button) after its sign-in completed: a
// signed-in browser goes on to the page it signed in for, nothing exchanged; a signed-out
// one is told the link was used. Each refusal is logged once, with its true reason, at
// the level an operator would choose.
func TestCallbackVisitedAgain(t *testing.T) {
	host := started(t)
	start := host.InitializeHttpContext()
	host.CallOnRequestHeaders(start, request("/app", browserAccept), true)
	r := host.GetSentLocalResponse(start)
	loc, _ := url.Parse(headerOf(r.Headers, "location"))
	signInCookie, _, _ := strings.Cut(headerOf(r.Headers, "set-cookie"), ";")
	callback := "/.auth/callback?code=the-code&state=" + url.QueryEscape(loc.Query().Get("state"))

	cb := host.InitializeHttpContext()
	host.CallOnRequestHeaders(cb, request(callback, browserAccept, [2]string{"cookie", signInCookie}), true)
	calls := host.GetCalloutAttributesFromContext(cb)
	tokens, _ := json.Marshal(map[string]any{"id_token": idToken(t, "key-1", entratest.RSAKey(t, "signing"), loc.Query().Get("nonce"), nil),
		"access_token": "at", "expires_in": 3599})
	host.CallOnHttpCallResponse(calls[0].CalloutID, [][2]string{{":status", "200"}}, nil, tokens)
	done := host.GetSentLocalResponse(cb)
	if done == nil || done.StatusCode != 302 {
		t.Fatalf("sign-in: %+v", done)
	}
	session := sessionCookies(done)

	for _, tc := range []struct {
		name     string
		path     string
		cookies  [][2]string
		status   uint32
		location string // for a 302
		inPage   string // for a page
		logLevel string // info, warn
		inLog    string
	}{
		{"reloaded while signed in", callback, session, 302, "/", "", "info", "already completed"},
		{"replayed with its sign-in cookie while signed in", callback, append(session, [2]string{"cookie", signInCookie}), 302, "/app", "", "info", "already completed"},
		{"reloaded signed out", callback, nil, 400, "", "already used", "info", "its sign-in cookie is gone"},
		{"replayed with its sign-in cookie, signed out", callback, [][2]string{{"cookie", signInCookie}}, 400, "", "already used", "info", "this sign-in was already completed"},
		{"a state never issued", "/.auth/callback?code=abc&state=" + strings.Repeat("x", 43), nil, 400, "", "not started in this browser", "info", "sign-in state not found"},
		{"a state too short to be ours", "/.auth/callback?code=abc&state=bogus", nil, 400, "", "does not match", "warn", "not one this proxy issues (5 characters)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			infos, warns := len(host.GetInfoLogs()), len(host.GetWarnLogs())
			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, request(tc.path, append(tc.cookies, browserAccept)...), true)
			if n := len(host.GetCalloutAttributesFromContext(id)); n != 0 {
				t.Fatalf("%d calls: a code was exchanged again", n)
			}
			r := host.GetSentLocalResponse(id)
			if r == nil || r.StatusCode != tc.status {
				t.Fatalf("reply %+v, want %d", r, tc.status)
			}
			if tc.status == 302 && headerOf(r.Headers, "location") != tc.location {
				t.Errorf("to %q, want %q", headerOf(r.Headers, "location"), tc.location)
			}
			if !strings.Contains(string(r.Data), tc.inPage) {
				t.Errorf("page %q lacks %q", r.Data, tc.inPage)
			}
			logs := map[string][]string{"info": host.GetInfoLogs()[infos:], "warn": host.GetWarnLogs()[warns:]}
			var said []string
			for _, l := range logs[tc.logLevel] {
				if strings.Contains(l, "request req-1") && strings.Contains(l, tc.inLog) {
					said = append(said, l)
				}
			}
			if len(said) != 1 {
				t.Errorf("%s logs %q, want one line saying %q", tc.logLevel, logs[tc.logLevel], tc.inLog)
			}
			if tc.logLevel == "info" && len(logs["warn"]) != 0 {
				t.Errorf("ordinary use logged a warning: %q", logs["warn"])
			}
		})
	}
}
