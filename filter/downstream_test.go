package filter

import (
	"strconv"
	"strings"
	"testing"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// oboConfig gets a token for a downstream API on the user's behalf for every request.
var oboConfig = strings.TrimSuffix(testConfig, "}") + `,"obo_scopes":["api://downstream/.default"]}`

// A signed-in request waits for the on-behalf-of grant and goes upstream with the
// downstream token; the next request of the session uses the kept token without a call.
// A grant Entra refuses stops the request with an error page rather than let it through
// without the token the upstream needs.
func TestOnBehalfOf(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		body       string
		wantStatus uint32 // 0: the request goes on with the token
	}{
		{"granted", 200, `{"access_token":"downstream-at","token_type":"Bearer","expires_in":3599}`, 0},
		{"consent missing", 400, `{"error":"invalid_grant","error_description":"AADSTS65001: consent"}`, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := startedWith(t, oboConfig)
			cookies := signIn(t, host)
			id := host.InitializeHttpContext()
			if a := host.CallOnRequestHeaders(id, request("/app", cookies...), true); a != types.ActionPause {
				t.Fatalf("the request did not wait for the grant: %v", a)
			}
			calls := host.GetCalloutAttributesFromContext(id)
			if len(calls) != 1 {
				t.Fatalf("%d calls, want the on-behalf-of grant", len(calls))
			}
			form := string(calls[0].Body)
			if !strings.Contains(form, "requested_token_use=on_behalf_of") || !strings.Contains(form, "assertion=at") ||
				!strings.Contains(form, "scope=api%3A%2F%2Fdownstream%2F.default") {
				t.Fatalf("the grant: %s", form)
			}
			host.CallOnHttpCallResponse(calls[0].CalloutID, [][2]string{{":status", strconv.Itoa(tc.status)}}, nil, []byte(tc.body))
			resp := host.GetSentLocalResponse(id)
			if tc.wantStatus != 0 {
				if resp == nil || resp.StatusCode != tc.wantStatus {
					t.Fatalf("reply %+v, want %d", resp, tc.wantStatus)
				}
				return
			}
			if resp != nil || headerOf(host.GetCurrentRequestHeaders(id), "x-auth-request-obo-token") != "downstream-at" {
				t.Fatalf("reply %+v, headers %v; want the request on with the downstream token", resp, host.GetCurrentRequestHeaders(id))
			}
			next := host.InitializeHttpContext()
			if a := host.CallOnRequestHeaders(next, request("/app", cookies...), true); a != types.ActionContinue {
				t.Fatalf("the next request: %v, want it on with the kept token", a)
			}
			if n := len(host.GetCalloutAttributesFromContext(next)); n != 0 || headerOf(host.GetCurrentRequestHeaders(next), "x-auth-request-obo-token") != "downstream-at" {
				t.Fatalf("the next request made %d calls, headers %v", n, host.GetCurrentRequestHeaders(next))
			}
		})
	}
}
