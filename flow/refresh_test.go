package flow

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/session"
)

// refreshable is testSession with tokens whose access token expires at expires.
func refreshable(expires time.Time) *session.Session {
	s := testSession(2)
	s.ID, s.AccessToken, s.RefreshToken, s.AccessExpires, s.UserID = "sid-1", "at-1", "rt-1", expires, "42"
	return s
}

func TestRefreshDue(t *testing.T) {
	f, clock := newFlow(t, "")
	expires := testNow.Add(time.Hour)
	s := refreshable(expires)
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{
		{testNow, false},
		{expires.Add(-5*time.Minute - time.Second), false},
		{expires.Add(-5 * time.Minute), true},
		{expires.Add(time.Hour), true},
	} {
		clock.t = tc.at
		if got := f.RefreshDue(s); got != tc.want {
			t.Errorf("at expiry%+v: due %v, want %v", tc.at.Sub(expires), got, tc.want)
		}
	}
	s.RefreshToken = ""
	if f.RefreshDue(s) {
		t.Error("a session without a refresh token cannot be refreshed")
	}
	clock.t = expires
	if !f.AccessExpired(s) || f.AccessExpired(testSession(0)) {
		t.Error("AccessExpired")
	}
}

func TestRefreshRequest(t *testing.T) {
	for _, extra := range []string{"", `,"client_auth":"client_secret_basic"`} {
		f, _ := newFlow(t, extra)
		r := must(f.RefreshRequest(testDiscovery, refreshable(testNow)))(t)
		form, _ := url.ParseQuery(string(r.Body))
		if form.Get("grant_type") != "refresh_token" || form.Get("refresh_token") != "rt-1" || form.Get("scope") != "openid profile email offline_access" ||
			form.Get("client_id") == "" || (extra == "") != (form.Get("client_secret") == "s3cret") {
			t.Errorf("%s: form %v", extra, form)
		}
		if !strings.HasSuffix(r.Pairs()[1][1], "/oauth2/v2.0/token") {
			t.Errorf("request %v", r.Pairs())
		}
	}
}

func TestParseRefreshResponse(t *testing.T) {
	if tk, err := ParseRefreshResponse(200, []byte(`{"access_token":"a","refresh_token":"r","expires_in":3599}`)); err != nil || tk.IDToken != "" || tk.RefreshToken != "r" || tk.ExpiresIn != 3599*time.Second {
		t.Errorf("without an id_token: %+v %v", tk, err)
	}
	if tk, err := ParseRefreshResponse(200, []byte(`{"access_token":"a","id_token":"i"}`)); err != nil || tk.IDToken != "i" {
		t.Errorf("with an id_token: %+v %v", tk, err)
	}
	if _, err := ParseRefreshResponse(200, []byte(`{"id_token":"i"}`)); !errors.Is(err, ErrIdPResponse) {
		t.Errorf("no access token: %v", err)
	}
	for _, tc := range []struct {
		status   int
		body     string
		rejected bool
	}{
		{400, `{"error":"invalid_grant","error_description":"AADSTS70008: expired"}`, true},
		{400, `{"error":"interaction_required","error_codes":[50076]}`, true},
		{401, `{"error":"invalid_client"}`, false},
		{503, `down`, false},
		{0, ``, false},
	} {
		_, err := ParseRefreshResponse(tc.status, []byte(tc.body))
		if err == nil || errors.Is(RefreshFailed(err), ErrRefreshRejected) != tc.rejected {
			t.Errorf("%d %s: %v (rejected: %v)", tc.status, tc.body, RefreshFailed(err), tc.rejected)
		}
	}
}

func TestRefreshed(t *testing.T) {
	f, clock := newFlow(t, `,"forward_access_token":"x-access-token"`)
	clock.t = testNow.Add(50 * time.Minute)
	old := refreshable(testNow.Add(time.Hour))
	same := `"iss":"iss","sub":"sub-1","oid":"oid-1","tid":"tid-1"`

	s, err := f.Refreshed(old, &Tokens{AccessToken: "at-2", RefreshToken: "rt-2", ExpiresIn: time.Hour},
		claimsOf(t, `{`+same+`,"name":"Ada King","preferred_username":"ada@contoso.com","groups":["g3"]}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.AccessToken != "at-2" || s.RefreshToken != "rt-2" || !s.AccessExpires.Equal(clock.t.Add(time.Hour)) || s.Name != "Ada King" ||
		strings.Join(s.Groups, ",") != "g3" || s.ID != old.ID || !s.Expires.Equal(old.Expires) || !s.IssuedAt.Equal(old.IssuedAt) || s.UserID != "42" {
		t.Errorf("refreshed %+v", s)
	}
	if old.AccessToken != "at-1" || old.Name != "Ada Lovelace" || len(old.Groups) != 2 {
		t.Errorf("the old session changed: %+v", old)
	}

	// No id_token in the answer, no refresh token either: the identity and the refresh
	// token stay.
	s, err = f.Refreshed(old, &Tokens{AccessToken: "at-3", ExpiresIn: time.Hour}, nil)
	if err != nil || s.RefreshToken != "rt-1" || s.Name != "Ada Lovelace" || s.AccessToken != "at-3" {
		t.Errorf("without id_token: %+v %v", s, err)
	}

	for _, swap := range []string{`"iss":"other"`, `"sub":"sub-2"`, `"oid":"oid-2"`, `"tid":"tid-2"`} {
		key := strings.SplitN(swap, ":", 2)[0]
		raw := `{` + strings.Replace(same, key+`:`+map[string]string{`"iss"`: `"iss"`, `"sub"`: `"sub-1"`, `"oid"`: `"oid-1"`, `"tid"`: `"tid-1"`}[key], swap, 1) + `}`
		if _, err := f.Refreshed(old, &Tokens{AccessToken: "x"}, claimsOf(t, raw)); !errors.Is(err, ErrRefreshIdentity) {
			t.Errorf("%s: %v", raw, err)
		}
	}
}

func TestSessionEnded(t *testing.T) {
	f, _ := newFlow(t, "")
	b := signedIn(t, f, testSession(400)) // a session in several cookies
	if len(b.jar) < 2 {
		t.Fatalf("jar %v", b.jar)
	}
	resp := f.SessionEnded(b.request("/reports?q=1"), "req-1")
	if resp.Status != 302 || header(resp, "location") != "/.auth/login?rd="+url.QueryEscape("/reports?q=1") {
		t.Errorf("browser: %d %v", resp.Status, resp.Headers)
	}
	b.take(t, resp)
	if len(b.jar) != 0 {
		t.Errorf("cookies left: %v", b.jar)
	}

	b = signedIn(t, f, testSession(1))
	api := b.request("/api/items")
	api.Accept = "application/json"
	resp = f.SessionEnded(api, "req-2")
	if resp.Status != 401 || len(headers(resp, "set-cookie")) == 0 || fmt.Sprint(headers(resp, "set-cookie")) == "" {
		t.Errorf("program: %d %v", resp.Status, resp.Headers)
	}
}
