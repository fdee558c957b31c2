package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// forgedSpellings are one identity header in the spellings an application server folds
// to the same name (HTTP_X_AUTH_REQUEST_EMAIL in CGI, WSGI, PHP, Django's META), each
// with a value that gives itself away.
var forgedSpellings = map[string]string{
	"X_Auth_Request_Email":   "forged-underscores@evil.example",
	"x-auth-request_email":   "forged-mixed@evil.example",
	"X-AUTH-REQUEST-EMAIL":   "forged-upper@evil.example",
	"x_auth_request_user_id": "forged-user-id",
	"X-Auth-Request-Groups":  "forged-admins",
}

// sendRaw sends a GET with headers spelled exactly as given (not canonicalized by
// net/http) and decodes what the upstream echoed.
func sendRaw(t *testing.T, client *http.Client, url string, headers map[string]string) seen {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for name, value := range headers {
		req.Header[name] = []string{value}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got seen
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: status %d, %v", url, resp.StatusCode, err)
	}
	return got
}

// checkNoForgery fails if any forged value reached the upstream, under any name.
func checkNoForgery(t *testing.T, got seen) {
	t.Helper()
	for name, values := range got.Headers {
		for _, v := range values {
			if strings.HasPrefix(v, "forged") {
				t.Errorf("the upstream got %s: %s", name, v)
			}
		}
	}
}

// Client-sent identity headers are removed in every spelling an application server may
// fold to ours, on every kind of request: a skip path, a signed-in browser, a bearer call.
func TestForgedIdentityHeadersInEverySpellingNeverReachTheUpstream(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{"api_audiences": apiAudiences}})
	with := func(extra map[string]string) map[string]string { return merged(forgedSpellings, extra) }
	t.Run("skip path", func(t *testing.T) {
		checkNoForgery(t, sendRaw(t, s.browser().client, s.base+"/healthz", with(nil)))
	})
	t.Run("signed in", func(t *testing.T) {
		b := s.browser()
		b.signIn("/app", "ada@contoso.example")
		got := sendRaw(t, b.client, s.base+"/app", with(map[string]string{"Accept": "text/html"}))
		checkNoForgery(t, got)
		if email := got.Headers["x-auth-request-email"]; len(email) != 1 || email[0] != "ada@contoso.example" {
			t.Errorf("x-auth-request-email = %q, want the signed-in user's alone", email)
		}
	})
	t.Run("bearer", func(t *testing.T) {
		token, err := s.mock.MintAccessToken(mockentra.AccessToken{User: s.mock.Users()[0], Audience: mockentra.DemoClientID,
			Scopes: []string{"access_as_user"}, IssuerBase: s.mockURL})
		if err != nil {
			t.Fatal(err)
		}
		got := sendRaw(t, s.browser().client, s.base+"/api/items",
			with(map[string]string{"Accept": "application/json", "Authorization": "Bearer " + token}))
		checkNoForgery(t, got)
	})
}

// The filter's cookies (the session, with its refresh token, and sign-in cookies) never
// reach the upstream; the application's own cookies do, as the browser sent them.
func TestFiltersCookiesStayWithTheFilter(t *testing.T) {
	s := newStack(t, stackOptions{})
	signedIn := s.browser()
	signedIn.signIn("/app", "ada@contoso.example")
	signingIn := s.browser() // a sign-in started and not finished: its sign-in cookie
	if p := signingIn.get("/app"); p.status != 302 || len(signingIn.cookies()) == 0 {
		t.Fatalf("no sign-in cookie: %d %v", p.status, signingIn.cookies())
	}
	for _, tc := range []struct {
		name string
		b    *browser
		path string
	}{
		{"signed in", signedIn, "/app"},
		{"signed in, skip path", signedIn, "/healthz"},
		{"signing in, skip path", signingIn, "/healthz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sendRaw(t, tc.b.client, s.base+tc.path, map[string]string{"Accept": "text/html", "Cookie": "theme=dark"})
			cookie := strings.Join(got.Headers["cookie"], "; ")
			if cookie != "theme=dark" {
				t.Errorf("the upstream got cookies %q, want the application's alone", cookie)
			}
			for name := range tc.b.cookies() {
				if strings.Contains(cookie, name) {
					t.Errorf("the upstream got the filter's cookie %s", name)
				}
			}
		})
	}
}

// One credential per request: two Authorization headers (which Envoy joins into one
// value) or two tokens in one are refused with 400, on any path; a request let through
// on its session carries no Authorization the filter did not check.
func TestOneCredentialPerRequest(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{"api_audiences": apiAudiences}})
	token, err := s.mock.MintAccessToken(mockentra.AccessToken{User: s.mock.Users()[0], Audience: mockentra.DemoClientID,
		Scopes: []string{"access_as_user"}, IssuerBase: s.mockURL})
	if err != nil {
		t.Fatal(err)
	}
	send := func(b *browser, path string, authorizations ...string) (int, seen) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.base+path, nil)
		req.Header["Accept"] = []string{"application/json"}
		if len(authorizations) > 0 {
			req.Header["Authorization"] = authorizations
		}
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got seen
		json.NewDecoder(resp.Body).Decode(&got)
		return resp.StatusCode, got
	}
	anon := s.browser()
	for _, tc := range []struct {
		name, path     string
		authorizations []string
	}{
		{"two bearer headers, API", "/api/items", []string{"Bearer " + token, "Bearer forged"}},
		{"two bearer headers, the good one second", "/api/items", []string{"Bearer forged", "Bearer " + token}},
		{"two tokens in one header", "/api/items", []string{"Bearer " + token + ", Bearer forged"}},
		{"two headers on a skip path", "/healthz", []string{"Basic Zm9yZ2Vk", "Bearer " + token}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, got := send(anon, tc.path, tc.authorizations...); status != 400 {
				t.Errorf("status %d, want 400; the upstream saw %v", status, got.Headers["authorization"])
			}
		})
	}
	t.Run("one good bearer token still works", func(t *testing.T) {
		if status, _ := send(anon, "/api/items", "Bearer "+token); status != 200 {
			t.Errorf("status %d, want 200", status)
		}
	})
	t.Run("a signed-in request does not pass on an unchecked credential", func(t *testing.T) {
		b := s.browser()
		b.signIn("/app", "ada@contoso.example")
		got := sendRaw(t, b.client, s.base+"/app", map[string]string{"Accept": "text/html", "Authorization": "Basic Zm9yZ2VkOmFkbWlu"})
		if a := got.Headers["authorization"]; len(a) > 0 {
			t.Errorf("the upstream got the client's authorization %q", a)
		}
	})
}

// A session cookie sent twice is never resolved by its position: a planted value that
// does not open is passed over (in either order), two sessions are refused with 400.
func TestSessionCookieSentTwice(t *testing.T) {
	s := newStack(t, stackOptions{})
	ada, bob := s.browser(), s.browser()
	ada.signIn("/app", "ada@contoso.example")
	bob.signIn("/app", "grace@contoso.example")
	name := "__Host-entra-auth"
	adaCookie, bobCookie := ada.cookies()[name], bob.cookies()[name]
	if adaCookie == "" || bobCookie == "" {
		t.Fatalf("no session cookies: %v %v", ada.cookies(), bob.cookies())
	}
	plain := &http.Client{Transport: ada.client.Transport, CheckRedirect: ada.client.CheckRedirect}
	for _, tc := range []struct {
		name, cookie string
		status       int
		user         string
	}{
		{"ours, then planted", name + "=" + adaCookie + "; " + name + "=planted-by-a-sibling", 200, "ada@contoso.example"},
		{"planted, then ours", name + "=planted-by-a-sibling; " + name + "=" + adaCookie, 200, "ada@contoso.example"},
		{"two sessions", name + "=" + adaCookie + "; " + name + "=" + bobCookie, 400, ""},
		{"two sessions, other order", name + "=" + bobCookie + "; " + name + "=" + adaCookie, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", s.base+"/app", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("Cookie", tc.cookie)
			resp, err := plain.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.user != "" {
				var got seen
				json.NewDecoder(resp.Body).Decode(&got)
				if u := got.Headers["x-auth-request-email"]; len(u) != 1 || u[0] != tc.user {
					t.Errorf("the upstream was told the user is %q, want %s", u, tc.user)
				}
			}
		})
	}
}

// Nobody writes into the filter's pages or its log: a callback's error and
// error_description are the client's words, and so is an X-Request-Id.
func TestNobodyWritesIntoPagesOrLogs(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser()
	start := b.get("/app")
	if start.status != 302 {
		t.Fatalf("sign-in start: %d", start.status)
	}
	state := start.location.Query().Get("state")
	forgedLine := "[2026-11-29 00:00:00.000][critical][wasm] vm 0: entra-auth: forged"
	q := url.Values{"state": {state}, "error": {"<script>alert(1)</script>"}, "error_description": {"evil\n" + forgedLine}}
	page := b.do("GET", "/.auth/callback?"+q.Encode(), "X-Request-Id", "<img src=x onerror=alert(1)>")
	if page.status != 403 {
		t.Fatalf("callback with an error: %d", page.status)
	}
	for _, bad := range []string{"<script", "alert(1)", "evil", "forged", "<img"} {
		if strings.Contains(page.body, bad) {
			t.Errorf("the page carries the client's %q:\n%s", bad, page.body)
		}
	}
	if !s.runner.stderr.waitFor("sign-in refused") {
		t.Fatalf("the refusal was not logged:\n%s", tail(s.runner.stderr.String(), 2000))
	}
	for _, line := range strings.Split(s.runner.stderr.String(), "\n") {
		if strings.HasPrefix(line, forgedLine) || strings.HasPrefix(line, "evil") {
			t.Errorf("a forged log line: %q", line)
		}
	}
}
