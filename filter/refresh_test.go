package filter

import (
	"crypto/rsa"
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

// refreshConfig renews the access token an hour before it expires: with Entra's hour,
// every session is due at once.
var refreshConfig = strings.TrimSuffix(testConfig, "}") + `,"refresh_before":"1h"}`

// dueSession signs in with a refresh token and returns the cookies of a session due for
// refresh.
func dueSession(t *testing.T, host proxytest.HostEmulator) [][2]string {
	t.Helper()
	cb := exchangeCodeWith(t, host, map[string]any{"refresh_token": "rt-1"})
	done := host.GetSentLocalResponse(cb)
	if done == nil || done.StatusCode != 302 {
		t.Fatalf("sign-in: %+v", done)
	}
	return sessionCookies(done)
}

// refreshCall is the refresh_token grant a paused request made.
func refreshCall(t *testing.T, host proxytest.HostEmulator, stream uint32) proxytest.HttpCalloutAttribute {
	t.Helper()
	calls := append(host.GetCalloutAttributesFromContext(stream), host.GetCalloutAttributesFromContext(proxytest.PluginContextID)...)
	for _, c := range calls {
		form, _ := url.ParseQuery(string(c.Body))
		if form.Get("grant_type") == "refresh_token" {
			if form.Get("refresh_token") != "rt-1" {
				t.Fatalf("the refresh grant carries %q, want the session's refresh token", form.Get("refresh_token"))
			}
			return c
		}
	}
	t.Fatalf("no refresh_token grant among %d calls", len(calls))
	return proxytest.HttpCalloutAttribute{}
}

// A signed-in request whose access token is due waits for the refresh_token grant, goes
// on with the identity once the refreshed ID token verifies, and takes the renewed
// session back to the browser on its response.
func TestRefreshRenewsTheSessionWhileTheRequestWaits(t *testing.T) {
	host := startedWith(t, refreshConfig)
	cookies := dueSession(t, host)
	id := host.InitializeHttpContext()
	if a := host.CallOnRequestHeaders(id, request("/app", append(cookies, browserAccept)...), true); a != types.ActionPause {
		t.Fatalf("a due session's request: %v, want it to wait for the refresh (reply %+v)", a, host.GetSentLocalResponse(id))
	}
	call := refreshCall(t, host, id)
	signed := refreshedIDToken(t, "key-1", entratest.RSAKey(t, "signing"), nil)
	tokens, _ := json.Marshal(map[string]any{"id_token": signed, "access_token": "at-2", "refresh_token": "rt-2", "token_type": "Bearer", "expires_in": 3599})
	host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", "200"}}, nil, tokens)

	if a := host.GetCurrentHttpStreamAction(id); a != types.ActionContinue {
		t.Fatalf("after the refresh the request is %v (reply %+v; logs %v)", a, host.GetSentLocalResponse(id), host.GetWarnLogs())
	}
	if got := headerOf(host.GetCurrentRequestHeaders(id), "x-auth-request-user"); got != "ada@contoso.com" {
		t.Fatalf("identity after the refresh: %q", got)
	}
	host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, false)
	renewed := false
	for _, h := range host.GetCurrentResponseHeaders(id) {
		if h[0] == "set-cookie" && strings.HasPrefix(h[1], "__Host-entra-auth=") {
			renewed = true
		}
	}
	if !renewed {
		t.Fatalf("the response does not carry the renewed session: %v", host.GetCurrentResponseHeaders(id))
	}
}

// A refresh token Entra no longer honours ends the session: the browser is sent to
// sign in again and brought back to the page it asked for, its session cookie cleared.
func TestRefreshRefusedEndsTheSession(t *testing.T) {
	host := startedWith(t, refreshConfig)
	cookies := dueSession(t, host)
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/app", append(cookies, browserAccept)...), true)
	call := refreshCall(t, host, id)
	host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", "400"}}, nil,
		[]byte(`{"error":"invalid_grant","error_description":"AADSTS70008: The refresh token has expired"}`))
	resp := host.GetSentLocalResponse(id)
	if resp == nil || resp.StatusCode != 302 || headerOf(resp.Headers, "location") != "/.auth/login?rd=%2Fapp" {
		t.Fatalf("after invalid_grant: %+v, want a redirect to sign in again and come back to /app", resp)
	}
	if !clearsSession(resp.Headers) {
		t.Errorf("the ended session's cookie is not cleared: %v", resp.Headers)
	}
}

// refreshedIDToken is the ID token a refresh returns: Ada's, without a nonce.
func refreshedIDToken(t *testing.T, kid string, key *rsa.PrivateKey, change func(jwt.MapClaims)) string {
	t.Helper()
	return idToken(t, kid, key, "", func(c jwt.MapClaims) {
		delete(c, "nonce")
		if change != nil {
			change(c)
		}
	})
}

// refreshAnswer is the token endpoint's answer to a refresh with idToken.
func refreshAnswer(idToken string) []byte {
	b, _ := json.Marshal(map[string]any{"id_token": idToken, "access_token": "at-2", "refresh_token": "rt-2", "token_type": "Bearer", "expires_in": 3599})
	return b
}

// The outcomes of a refresh a request waits for, by what Entra answers.
func TestRefreshOutcomes(t *testing.T) {
	signing := entratest.RSAKey(t, "signing")
	for _, tc := range []struct {
		name   string
		config string
		status int
		body   func(t *testing.T) []byte
		// then answers what the refresh calls next (a key refetch, Graph); nil when none.
		then func(t *testing.T, host proxytest.HostEmulator, id uint32)
		// wantStatus is the local reply (0: the request goes on, with wantUser upstream).
		wantStatus uint32
		wantUser   string
		wantGroups string
	}{
		{name: "Entra down, the tokens still hold: go on", config: refreshConfig, status: 503,
			body: func(*testing.T) []byte { return []byte("busy") }, wantUser: "ada@contoso.com", wantGroups: "g1,g2"},
		{name: "another user's ID token ends the session", config: refreshConfig, status: 200,
			body: func(t *testing.T) []byte {
				return refreshAnswer(refreshedIDToken(t, "key-1", signing, func(c jwt.MapClaims) { c["oid"], c["sub"] = "oid-2", "sub-2" }))
			}, wantStatus: 302},
		{name: "an ID token that does not verify ends the session", config: refreshConfig, status: 200,
			body: func(t *testing.T) []byte {
				return refreshAnswer(refreshedIDToken(t, "key-1", signing, func(c jwt.MapClaims) { c["aud"] = "another-app" }))
			}, wantStatus: 302},
		{name: "renamed: the new name goes upstream", config: refreshConfig, status: 200,
			body: func(t *testing.T) []byte {
				return refreshAnswer(refreshedIDToken(t, "key-1", signing, func(c jwt.MapClaims) { c["preferred_username"] = "ada.byron@contoso.com" }))
			}, wantUser: "ada.byron@contoso.com", wantGroups: "g1,g2"},
		{name: "a rotated key is fetched again", config: refreshConfig, status: 200,
			body: func(t *testing.T) []byte {
				return refreshAnswer(refreshedIDToken(t, "key-2", entratest.RSAKey(t, "rotated"), nil))
			},
			then: func(t *testing.T, host proxytest.HostEmulator, _ uint32) {
				host.Tick()
				call := rootCall(t, host)
				if !strings.HasSuffix(headerOf(call.Headers, ":path"), "/discovery/v2.0/keys") {
					t.Fatalf("no key refetch: %v", call.Headers)
				}
				host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", "200"}}, nil, entratest.JWKS(t,
					entratest.JWK("key-1", &signing.PublicKey, ""), entratest.JWK("key-2", &entratest.RSAKey(t, "rotated").PublicKey, "")))
			}, wantUser: "ada@contoso.com", wantGroups: "g1,g2"},
		{name: "overage: the groups are read from Graph again", config: strings.TrimSuffix(refreshConfig, "}") + `,"graph_cluster":"graph"}`, status: 200,
			body: func(t *testing.T) []byte { return refreshAnswer(overageRefreshToken(t, signing)) },
			then: func(t *testing.T, host proxytest.HostEmulator, id uint32) {
				graph := lastCallTo(t, host, id, "graph")
				host.CallOnHttpCallResponse(graph.CalloutID, [][2]string{{":status", "200"}}, nil, []byte(`{"value":["g9"]}`))
			}, wantUser: "ada@contoso.com", wantGroups: "g9"},
		{name: "overage with Graph down keeps the session's groups", config: strings.TrimSuffix(refreshConfig, "}") + `,"graph_cluster":"graph"}`, status: 200,
			body: func(t *testing.T) []byte { return refreshAnswer(overageRefreshToken(t, signing)) },
			then: func(t *testing.T, host proxytest.HostEmulator, id uint32) {
				graph := lastCallTo(t, host, id, "graph")
				host.CallOnHttpCallResponse(graph.CalloutID, [][2]string{{":status", "500"}}, nil, nil)
			}, wantUser: "ada@contoso.com", wantGroups: "g1,g2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := startedWith(t, tc.config)
			cookies := dueSession(t, host)
			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, request("/app", append(cookies, browserAccept)...), true)
			call := refreshCall(t, host, id)
			host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", strconv.Itoa(tc.status)}}, nil, tc.body(t))
			if tc.then != nil {
				tc.then(t, host, id)
			}
			resp := host.GetSentLocalResponse(id)
			if tc.wantStatus != 0 {
				if resp == nil || resp.StatusCode != tc.wantStatus {
					t.Fatalf("reply %+v, want %d", resp, tc.wantStatus)
				}
				return
			}
			if resp != nil || host.GetCurrentHttpStreamAction(id) != types.ActionContinue {
				t.Fatalf("the request did not go on: %v, reply %+v; logs %v", host.GetCurrentHttpStreamAction(id), resp, host.GetWarnLogs())
			}
			headers := host.GetCurrentRequestHeaders(id)
			if got := headerOf(headers, "x-auth-request-user"); got != tc.wantUser {
				t.Errorf("user upstream %q, want %q", got, tc.wantUser)
			}
			if got := headerOf(headers, "x-auth-request-groups"); got != tc.wantGroups {
				t.Errorf("groups upstream %q, want %q", got, tc.wantGroups)
			}
		})
	}
}

// overageRefreshToken is a refreshed ID token whose groups were too many to carry.
func overageRefreshToken(t *testing.T, key *rsa.PrivateKey) string {
	return refreshedIDToken(t, "key-1", key, func(c jwt.MapClaims) {
		delete(c, "groups")
		c["_claim_names"] = map[string]string{"groups": "src1"}
	})
}

// lastCallTo is the last call to cluster dispatched for stream id or from the root
// context. (The emulator reuses callout ids once answered, so calls are told apart by
// cluster and order, not by id.)
func lastCallTo(t *testing.T, host proxytest.HostEmulator, id uint32, cluster string) proxytest.HttpCalloutAttribute {
	t.Helper()
	for _, ctx := range []uint32{id, proxytest.PluginContextID} {
		calls := host.GetCalloutAttributesFromContext(ctx)
		for i := len(calls) - 1; i >= 0; i-- {
			if calls[i].Upstream == cluster {
				return calls[i]
			}
		}
	}
	t.Fatalf("no call to %s", cluster)
	return proxytest.HttpCalloutAttribute{}
}
