package flow

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/session"
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
		if got := f.ownsCookie(name); got != want {
			t.Errorf("ownsCookie(%q) = %v, want %v", name, got, want)
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

func TestOneCredential(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers [][2]string
		bearer  string
		twoOf   bool
	}{
		{"none", nil, "", false},
		{"one bearer", [][2]string{{"authorization", "Bearer eyJ.a.b"}}, "eyJ.a.b", false},
		{"one basic", [][2]string{{"authorization", "Basic YWxhZGRpbjpvcGVu"}}, "", false},
		{"a digest's parameters", [][2]string{{"authorization", `Digest username="a", realm="b"`}}, "", false},
		{"two headers", [][2]string{{"authorization", "Bearer a"}, {"authorization", "Bearer b"}}, "", true},
		{"two headers, other schemes", [][2]string{{"authorization", "Basic x"}, {"authorization", "Basic y"}}, "", true},
		{"joined by Envoy", [][2]string{{"authorization", "Bearer a,Bearer b"}}, "", true},
		{"joined with a space", [][2]string{{"authorization", "Bearer a, Bearer b"}}, "", true},
		{"two tokens", [][2]string{{"authorization", "Bearer a b"}}, "", true},
		{"two schemes joined by Envoy", [][2]string{{"authorization", "Basic Zm9v,Bearer a"}}, "", true},
		{"two schemes joined, spaced", [][2]string{{"authorization", "Basic Zm9v, Negotiate YII"}}, "", true},
	} {
		r := NewRequest(tc.headers)
		err := r.OneCredential()
		if got := errors.Is(err, ErrTwoCredentials); got != tc.twoOf {
			t.Errorf("%s: OneCredential() = %v", tc.name, err)
		}
		if !tc.twoOf && r.Bearer != tc.bearer {
			t.Errorf("%s: Bearer = %q, want %q", tc.name, r.Bearer, tc.bearer)
		}
		if tc.name == "two headers" && r.Bearer != "" {
			t.Errorf("with two Authorization headers, the first was taken as the bearer token")
		}
	}
}

// A session cookie sent twice (a sibling subdomain under cookie_domain can set one of
// the same name) is never resolved by position: a value that does not open cannot lock
// the user out, and two that open to different sessions are refused.
func TestDuplicateSessionCookies(t *testing.T) {
	f, _ := newFlow(t, "")
	ada := signedIn(t, f, testSession(1))
	bob := testSession(1)
	bob.Subject, bob.ObjectID, bob.Username = "sub-2", "oid-2", "bob@contoso.com"
	other := signedIn(t, f, bob)
	name := f.cfg.CookieName
	adaCookie, bobCookie := ada.jar[name], other.jar[name]
	request := func(cookie string) *Request {
		return NewRequest([][2]string{{":path", "/"}, {"accept", "text/html"}, {"cookie", cookie}})
	}
	for _, tc := range []struct {
		name, cookie string
		wantUser     string
		wantErr      error
	}{
		{"ours, then planted garbage", name + "=" + adaCookie + "; " + name + "=planted", "ada@contoso.com", nil},
		{"planted garbage, then ours", name + "=planted; " + name + "=" + adaCookie, "ada@contoso.com", nil},
		{"the same session twice", name + "=" + adaCookie + "; " + name + "=" + adaCookie, "ada@contoso.com", nil},
		{"two different sessions", name + "=" + adaCookie + "; " + name + "=" + bobCookie, "", ErrTwoSessions},
		{"two different sessions, other order", name + "=" + bobCookie + "; " + name + "=" + adaCookie, "", ErrTwoSessions},
		{"two planted values", name + "=x; " + name + "=y", "", ErrSessionInvalid},
		{"too many values", manyValues(name, session.MaxCandidates+1) + name + "=" + adaCookie, "", ErrSessionInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := f.Authenticate(request(tc.cookie))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || s.Username != tc.wantUser {
				t.Fatalf("Authenticate = %v, %v; want %s", s, err, tc.wantUser)
			}
		})
	}
}

func manyValues(name string, n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%s=x%d; ", name, i)
	}
	return b.String()
}
