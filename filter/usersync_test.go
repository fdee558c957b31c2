package filter

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/internal/entratest"
)

// startedWithUserSync is started with a user_sync block (and its secret in the
// environment, as Envoy's vm_config would give it).
func startedWithUserSync(t *testing.T, onFailure string) proxytest.HostEmulator {
	t.Helper()
	t.Setenv("TEST_USER_SYNC_SECRET", "sync-s3cret")
	config := strings.TrimSuffix(testConfig, "}") + `,"user_sync":{"url":"http://users.internal/entra/sync","cluster":"users",
		"secret_env":"TEST_USER_SYNC_SECRET","flags":{"is_staff":{"groups":["g2"]},"is_superuser":{"roles":["Admin"]}},"on_failure":"` + onFailure + `"}}`
	return startedWith(t, config)
}

// answer is what the user-sync endpoint says to one call: a status (0 for no answer,
// as when the connection fails) and a body.
type answer struct {
	status int
	body   string
}

func TestUserSyncCallOut(t *testing.T) {
	for _, tc := range []struct {
		name      string
		onFailure string
		answers   []answer
		// wantStatus is the callback's reply; wantUserID the header upstream afterwards.
		wantStatus int
		wantUserID string
		wantInPage string
	}{
		{name: "user id answered", onFailure: "deny", answers: []answer{{200, `{"user_id":"42"}`}}, wantStatus: 302, wantUserID: "42"},
		{name: "numeric user id", onFailure: "deny", answers: []answer{{201, `{"user_id":7}`}}, wantStatus: 302, wantUserID: "7"},
		{name: "no body", onFailure: "deny", answers: []answer{{204, ``}}, wantStatus: 302},
		{name: "retried after 503", onFailure: "deny", answers: []answer{{503, `busy`}, {200, `{"user_id":"42"}`}}, wantStatus: 302, wantUserID: "42"},
		{name: "retried after no answer", onFailure: "deny", answers: []answer{{0, ``}, {200, `{"user_id":"42"}`}}, wantStatus: 302, wantUserID: "42"},
		{name: "down twice, deny", onFailure: "deny", answers: []answer{{502, ``}, {504, ``}}, wantStatus: 503, wantInPage: "user directory could not be reached"},
		{name: "down twice, allow", onFailure: "allow", answers: []answer{{0, ``}, {0, ``}}, wantStatus: 302},
		{name: "500 is not retried", onFailure: "deny", answers: []answer{{500, `oops`}}, wantStatus: 503},
		{name: "refused", onFailure: "allow", answers: []answer{{403, `{"error":"not this user"}`}}, wantStatus: 403, wantInPage: "does not accept your account"},
		{name: "secret refused", onFailure: "allow", answers: []answer{{401, ``}}, wantStatus: 403, wantInPage: "not set up to reach its user directory"},
		{name: "user id too long", onFailure: "deny", answers: []answer{{200, `{"user_id":"` + strings.Repeat("9", 300) + `"}`}}, wantStatus: 503},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := startedWithUserSync(t, tc.onFailure)
			cb := exchangeCode(t, host)
			for i, a := range tc.answers {
				calls := host.GetCalloutAttributesFromContext(cb)
				if len(calls) != 2+i {
					t.Fatalf("after %d answers: %d calls, want %d; reply %+v", i, len(calls), 2+i, host.GetSentLocalResponse(cb))
				}
				call := calls[len(calls)-1]
				checkUserSyncCall(t, call)
				var headers [][2]string
				if a.status != 0 {
					headers = [][2]string{{":status", strconv.Itoa(a.status)}}
				}
				host.CallOnHttpCallResponse(call.CalloutID, headers, nil, []byte(a.body))
			}
			if n := len(host.GetCalloutAttributesFromContext(cb)); n != 1+len(tc.answers) {
				t.Fatalf("%d calls, want %d", n, 1+len(tc.answers))
			}
			reply := host.GetSentLocalResponse(cb)
			if reply == nil || int(reply.StatusCode) != tc.wantStatus || !strings.Contains(string(reply.Data), tc.wantInPage) {
				t.Fatalf("reply %+v, want %d with %q", reply, tc.wantStatus, tc.wantInPage)
			}
			cookies := sessionCookies(reply)
			if tc.wantStatus != 302 {
				if len(cookies) != 0 {
					t.Fatalf("a failed sign-in set a session: %v", cookies)
				}
				return
			}
			id := host.InitializeHttpContext()
			forged := [2]string{"x-auth-request-user-id", "1"}
			if a := host.CallOnRequestHeaders(id, request("/app", append(cookies, forged)...), true); a != types.ActionContinue {
				t.Fatalf("signed-in request: %v", a)
			}
			var got []string
			for _, h := range host.GetCurrentRequestHeaders(id) {
				if h[0] == "x-auth-request-user-id" {
					got = append(got, h[1])
				}
			}
			if (tc.wantUserID == "" && len(got) != 0) || (tc.wantUserID != "" && (len(got) != 1 || got[0] != tc.wantUserID)) {
				t.Errorf("x-auth-request-user-id upstream: %q, want %q", got, tc.wantUserID)
			}
		})
	}
}

// checkUserSyncCall asserts the call follows the contract: a POST of the user as JSON,
// through the user_sync cluster, with the bearer secret.
func checkUserSyncCall(t *testing.T, call proxytest.HttpCalloutAttribute) {
	t.Helper()
	if call.Upstream != "users" || headerOf(call.Headers, ":method") != "POST" || headerOf(call.Headers, ":path") != "/entra/sync" ||
		headerOf(call.Headers, ":authority") != "users.internal" || headerOf(call.Headers, "authorization") != "Bearer sync-s3cret" ||
		headerOf(call.Headers, "content-type") != "application/json" {
		t.Fatalf("user-sync call %s %v", call.Upstream, call.Headers)
	}
	var body struct {
		TenantID string          `json:"tenant_id"`
		ObjectID string          `json:"object_id"`
		Username string          `json:"username"`
		Name     string          `json:"name"`
		Groups   []string        `json:"groups"`
		Flags    map[string]bool `json:"flags"`
		Claims   map[string]any  `json:"claims"`
	}
	if err := json.Unmarshal(call.Body, &body); err != nil {
		t.Fatalf("body %s: %v", call.Body, err)
	}
	if body.TenantID != tenant || body.ObjectID != "oid-1" || body.Username != "ada@contoso.com" || body.Name != "Ada Lovelace" ||
		strings.Join(body.Groups, ",") != "g1,g2" || !body.Flags["is_staff"] || body.Flags["is_superuser"] || body.Claims["nonce"] == nil {
		t.Fatalf("body %s", call.Body)
	}
}

// A refresh that changes what the user-sync call would say (here: the name) syncs the
// user again: the application's answer is the new user id; a refusal ends the session; the
// endpoint being down keeps the session as it was synced, to try at the next refresh.
func TestRefreshSyncsAChangedUserAgain(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		wantStatus uint32 // 0: the request goes on
		wantUserID string
	}{
		{"synced again", 200, `{"user_id":"43"}`, 0, "43"},
		{"refused", 403, `{"error":"gone"}`, 403, ""},
		{"endpoint down", 500, ``, 0, "42"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TEST_USER_SYNC_SECRET", "sync-s3cret")
			host := startedWith(t, strings.TrimSuffix(refreshConfig, "}")+`,"user_sync":{"url":"http://users.internal/entra/sync",
				"cluster":"users","secret_env":"TEST_USER_SYNC_SECRET"}}`)
			cb := exchangeCodeWith(t, host, map[string]any{"refresh_token": "rt-1"})
			calls := host.GetCalloutAttributesFromContext(cb)
			host.CallOnHttpCallResponse(calls[len(calls)-1].CalloutID, [][2]string{{":status", "200"}}, nil, []byte(`{"user_id":"42"}`))
			done := host.GetSentLocalResponse(cb)
			if done == nil || done.StatusCode != 302 {
				t.Fatalf("sign-in: %+v", done)
			}

			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, request("/app", append(sessionCookies(done), browserAccept)...), true)
			call := refreshCall(t, host, id)
			host.CallOnHttpCallResponse(call.CalloutID, [][2]string{{":status", "200"}}, nil, refreshAnswer(
				refreshedIDToken(t, "key-1", entratest.RSAKey(t, "signing"), func(c jwt.MapClaims) { c["name"] = "Ada King" })))
			resync := lastCallTo(t, host, id, "users")
			if resync.Upstream != "users" || !strings.Contains(string(resync.Body), `"name":"Ada King"`) {
				t.Fatalf("no second user-sync call with the new name: %s %s", resync.Upstream, resync.Body)
			}
			host.CallOnHttpCallResponse(resync.CalloutID, [][2]string{{":status", strconv.Itoa(tc.status)}}, nil, []byte(tc.body))
			resp := host.GetSentLocalResponse(id)
			if tc.wantStatus != 0 {
				if resp == nil || resp.StatusCode != tc.wantStatus || len(sessionCookies(resp)) != 0 {
					t.Fatalf("reply %+v, want %d and the session cleared", resp, tc.wantStatus)
				}
				return
			}
			if resp != nil {
				t.Fatalf("reply %+v, want the request to go on", resp)
			}
			if got := headerOf(host.GetCurrentRequestHeaders(id), "x-auth-request-user-id"); got != tc.wantUserID {
				t.Errorf("user id upstream %q, want %q", got, tc.wantUserID)
			}
		})
	}
}
