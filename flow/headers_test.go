package flow

import (
	"strings"
	"testing"
)

// An application server may fold a header's name: case ignored, '_' taken for '-'. A
// client header that folds to one the filter sets must never reach the upstream.
func TestClientMayNotSendAnyFoldingOfOurHeaders(t *testing.T) {
	f, _ := newFlow(t, `,"forward_access_token":"x-access-token","obo_scopes":["api://orders/.default"],"obo_header":"x-orders-token"`)
	plain, _ := newFlow(t, `,"forward_access_token":"authorization"`)
	for _, tc := range []struct {
		flow *Flow
		name string
		want bool
	}{
		{f, "x-auth-request-email", true},
		{f, "X-Auth-Request-Email", true},
		{f, "X_Auth_Request_Email", true},
		{f, "x-auth-request_email", true},
		{f, "X-AUTH-REQUEST-EMAIL", true},
		{f, "x_auth_request_user_id", true},
		{f, "x-auth-request-anything-new", true},
		{f, "x-access-token", true}, // forward_access_token
		{f, "X_ACCESS_TOKEN", true}, // forward_access_token, folded
		{f, "x_orders-token", true}, // obo_header, folded
		{f, "x-auth-requestemail", false},
		{f, "x-auth-reques", false},
		{f, "x-access-tokens", false},
		{f, "authorization", false},
		{plain, "authorization", false}, // the bearer credential: replaced when forwarded, never stripped
		{plain, "x-access-token", false},
		{f, "x-auth-request\u2010email", false}, // a Unicode hyphen folds to nothing of ours
		{f, "x-access-to\u212aen", false},       // nor does the Kelvin sign: names are ASCII
	} {
		if got := tc.flow.ClientMayNotSend(tc.name); got != tc.want {
			t.Errorf("ClientMayNotSend(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The allocation-free folding agrees with the plain one for every name, and every
// spelling of a name the filter owns is owned.
func FuzzClientMayNotSend(f *testing.F) {
	for _, s := range []string{"x-auth-request-email", "X_AUTH_REQUEST_USER", "x-access-token", "x_Orders_Token", "authorization", "x-auth-request", "", "\xff_auth"} {
		f.Add(s)
	}
	flow, _ := newFlow(f, `,"forward_access_token":"x-access-token","obo_scopes":["api://orders/.default"],"obo_header":"x-orders-token"`)
	owned := []string{"x-access-token", "x-orders-token"}
	f.Fuzz(func(t *testing.T, name string) {
		folded := foldHeaderName(name)
		want := strings.HasPrefix(folded, HeaderPrefix)
		for _, o := range owned {
			want = want || folded == o
		}
		if got := flow.ClientMayNotSend(name); got != want {
			t.Fatalf("ClientMayNotSend(%q) = %v, folded %q says %v", name, got, folded, want)
		}
		upperBytes := []byte(name)
		for i, c := range upperBytes {
			if 'a' <= c && c <= 'z' {
				upperBytes[i] = c - 'a' + 'A'
			}
		}
		upper := string(upperBytes)
		for _, other := range []string{upper, strings.ReplaceAll(name, "-", "_"), strings.ReplaceAll(name, "_", "-")} {
			if flow.ClientMayNotSend(other) != want {
				t.Fatalf("%q and %q fold alike but are judged apart", name, other)
			}
		}
	})
}

func TestOwnsCookie(t *testing.T) {
	f, _ := newFlow(t, `,"cookie_name":"__Host-ea"`)
	for name, want := range map[string]bool{
		"__Host-ea":                  true,
		"__Host-ea.1":                true,
		"__Host-ea.12":               true,
		"__Host-ea-signin-abcdef012": true,
		"__Host-ea.":                 false,
		"__Host-ea.x":                false,
		"__Host-ea2":                 false,
		"__Host-e":                   false,
		"theme":                      false,
		"__host-ea":                  false, // cookie names are case-sensitive
	} {
		if got := f.OwnsCookie(name); got != want {
			t.Errorf("OwnsCookie(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestUpstreamCookieKeepsOnlyTheApplications(t *testing.T) {
	f, _ := newFlow(t, `,"cookie_name":"__Host-ea"`)
	got, changed := f.UpstreamCookie(NewRequest([][2]string{{"cookie", "theme=dark; __Host-ea=2.sealed"}, {"cookie", "__Host-ea.1=rest; lang=en; __Host-ea-signin-0123=s"}}))
	if !changed || got != "theme=dark; lang=en" {
		t.Errorf("UpstreamCookie = %q, %v; want the application's cookies alone", got, changed)
	}
	if _, changed := f.UpstreamCookie(NewRequest([][2]string{{"cookie", "theme=dark"}})); changed {
		t.Error("a request without the filter's cookies was changed")
	}
}
