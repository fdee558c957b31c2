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
	now := time.Now()
	idToken := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": clientID, "iss": issuer, "tid": tenant, "sub": "sub-1", "oid": "oid-1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "ver": "2.0",
		"preferred_username": "ada@contoso.com", "name": "Ada Lovelace", "groups": []string{"g1", "g2"},
	})
	idToken.Header["kid"] = "key-1"
	signed, _ := idToken.SignedString(entratest.RSAKey(t, "signing"))
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
	cleared := false
	for _, h := range resp.Headers {
		if h[0] == "set-cookie" && strings.HasPrefix(h[1], "__Host-entra-auth=") && strings.Contains(h[1], "Max-Age=0") {
			cleared = true
		}
	}
	if !cleared {
		t.Errorf("the ended session's cookie is not cleared: %v", resp.Headers)
	}
}
