package filter

import (
	"strings"
	"testing"
)

// Signing out clears the session and sends the browser to Entra's end-session endpoint.
func TestLogout(t *testing.T) {
	host := started(t)
	cookies := signIn(t, host)
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/.auth/logout", append(cookies, browserAccept)...), true)
	resp := host.GetSentLocalResponse(id)
	if resp == nil || resp.StatusCode != 302 || !strings.Contains(headerOf(resp.Headers, "location"), "/oauth2/v2.0/logout") {
		t.Fatalf("logout: %+v, want a redirect to Entra's end-session endpoint", resp)
	}
	if !clearsSession(resp.Headers) {
		t.Errorf("the session cookie is not cleared: %v", resp.Headers)
	}
}

// The page Entra sends the browser to after sign-out needs no session and passes nothing
// upstream.
func TestSignedOutPage(t *testing.T) {
	host := started(t)
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/.auth/signed-out", browserAccept), true)
	resp := host.GetSentLocalResponse(id)
	if resp == nil || resp.StatusCode != 200 || !strings.Contains(string(resp.Data), "You are signed out") {
		t.Fatalf("signed-out page: %+v", resp)
	}
	if !strings.Contains(string(resp.Data), `href="/.auth/login?rd=%2F"`) {
		t.Errorf("no link to sign in again: %s", resp.Data)
	}
}
