package e2e

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
	"github.com/entra-auth/entra-auth/e2e/usersync"
)

// shortTokens is a mock whose access tokens last lifetime, behind a filter that refreshes
// them refreshBefore ahead; one worker, so that every request meets the same VM.
func shortTokens(t *testing.T, lifetime time.Duration, refreshBefore string, more func(*stackOptions)) *stack {
	t.Helper()
	opts := mockentra.DemoOptions()
	opts.TokenLifetime = lifetime
	o := stackOptions{mock: &opts, concurrency: 1, config: map[string]any{"refresh_before": refreshBefore}}
	if more != nil {
		more(&o)
	}
	return newStack(t, o)
}

// sessionCookie is the browser's session cookie value.
func (b *browser) sessionCookie() string { return b.cookies()["__Host-entra-auth"] }

func TestRefreshBeforeExpiry(t *testing.T) {
	s := shortTokens(t, 6*time.Second, "4s", nil)
	b := s.browser()
	if done := b.signIn("/", "ada@contoso.example"); done.status != 302 {
		t.Fatalf("sign-in: %d", done.status)
	}
	first := b.sessionCookie()

	// Fresh tokens: nothing to refresh.
	if p := b.get("/app"); p.status != 200 || s.mock.RefreshRequests.Load() != 0 || p.header.Get("Set-Cookie") != "" {
		t.Fatalf("fresh session: %d, %d refreshes, Set-Cookie %q", p.status, s.mock.RefreshRequests.Load(), p.header.Get("Set-Cookie"))
	}

	// Within refresh_before of expiry: the request waits for a refresh, goes through, and
	// the response stores the renewed session.
	time.Sleep(2100 * time.Millisecond)
	p := b.get("/app")
	got := p.echoed(t)
	if p.status != 200 || s.mock.RefreshRequests.Load() != 1 || got.Headers["x-auth-request-oid"][0] != "00000000-0000-0000-0000-00000000ada1" {
		t.Fatalf("due: %d, %d refreshes, headers %v", p.status, s.mock.RefreshRequests.Load(), got.Headers)
	}
	renewed := b.sessionCookie()
	if renewed == "" || renewed == first {
		t.Fatal("the response did not store the renewed session")
	}
	checkSessionCookieAttributes(t, p.header.Values("Set-Cookie"))

	// The renewed session is fresh again; and a request still carrying the old cookie (sent
	// before the browser saw the new one) gets the renewed session, not a second refresh
	// with a refresh token Entra has rotated away.
	if p := b.get("/app"); p.status != 200 || s.mock.RefreshRequests.Load() != 1 {
		t.Fatalf("after the refresh: %d, %d refreshes", p.status, s.mock.RefreshRequests.Load())
	}
	stale := s.browser()
	stale.setSession(first)
	if p := stale.get("/app"); p.status != 200 || s.mock.RefreshRequests.Load() != 1 || stale.sessionCookie() == first || stale.sessionCookie() == "" {
		t.Fatalf("old cookie: %d, %d refreshes, given the renewed session: %v", p.status, s.mock.RefreshRequests.Load(), stale.sessionCookie() != first)
	}
}

// setSession gives the browser a session cookie value.
func (b *browser) setSession(value string) {
	u := *b.s.baseURL()
	b.jar.SetCookies(&u, []*http.Cookie{{Name: "__Host-entra-auth", Value: value, Path: "/", Secure: true}})
}

func TestRefreshRevokedEndsTheSession(t *testing.T) {
	s := shortTokens(t, 3*time.Second, "3s", nil) // due at once
	b := s.browser()
	b.signIn("/", "ada@contoso.example")
	api := s.browser()
	api.setSession(b.sessionCookie())

	s.mock.RevokeRefreshTokens()
	p := b.get("/reports?q=1")
	if p.status != 302 || p.location.String() != s.base+"/.auth/login?rd=%2Freports%3Fq%3D1" {
		t.Fatalf("browser after revocation: %d %s", p.status, p.location)
	}
	if b.sessionCookie() != "" {
		t.Error("the ended session's cookie was not cleared")
	}
	if p := api.get("/api/items", "Accept", "application/json"); p.status != 401 || !strings.HasPrefix(p.header.Get("WWW-Authenticate"), "Bearer") {
		t.Fatalf("program after revocation: %d %v", p.status, p.header)
	}
}

// Many requests of one session due for a refresh at once: one refresh, all let through.
func TestConcurrentRequestsRefreshOnce(t *testing.T) {
	s := shortTokens(t, 6*time.Second, "4s", nil)
	b := s.browser()
	b.signIn("/", "ada@contoso.example")
	cookie := b.sessionCookie()
	time.Sleep(2100 * time.Millisecond) // due; the renewed tokens will not be
	requestAllAtOnce(t, s, cookie, 12)
	if n := s.mock.RefreshRequests.Load(); n != 1 {
		t.Fatalf("12 concurrent requests made %d refreshes, want 1", n)
	}
}

// A refresh that fails while the tokens still hold lets the request through on the
// session it has; once they have expired, it does not.
func TestRefreshWhileTheProviderIsDown(t *testing.T) {
	s := shortTokens(t, 4*time.Second, "3s", nil)
	b := s.browser()
	b.signIn("/", "ada@contoso.example")
	time.Sleep(1100 * time.Millisecond) // due, not expired
	s.mock.SetFaults(mockentra.Faults{Status: map[string]int{"token": 503}})
	if p := b.get("/app"); p.status != 200 || p.echoed(t).Headers["x-auth-request-user"] == nil {
		t.Fatalf("still valid: %d", p.status)
	}
	if !s.runner.stderr.waitFor("refreshing the session failed; it is still valid") {
		t.Error("the failed refresh was not logged")
	}
	time.Sleep(3 * time.Second) // expired
	if p := b.get("/app"); p.status != 503 || !strings.Contains(p.body, "Entra ID could not be reached") {
		t.Fatalf("expired, provider down: %d %.200s", p.status, p.body)
	}
	s.mock.SetFaults(mockentra.Faults{})
	if p := b.get("/app"); p.status != 200 {
		t.Fatalf("provider back: %d %.200s", p.status, p.body)
	}
	checkNoTokenLogged(t, s)
}

// A refreshed ID token carries the directory's changes: the upstream sees them at once,
// and the application's directory hears about them only when something it is told changed.
func TestRefreshCarriesDirectoryChangesAndResyncs(t *testing.T) {
	svc := newSyncService(t, usersync.Options{})
	s := shortTokens(t, 3*time.Second, "3s", func(o *stackOptions) {
		o.config["user_sync"] = map[string]any{"url": "http://users.internal/sync", "cluster": "users", "secret_env": "USER_SYNC_SECRET"}
		o.clusters = map[string]string{"users": svc.srv.URL}
		o.env = map[string]string{"USER_SYNC_SECRET": syncSecret}
	})
	b := s.browser()
	b.signIn("/", "ada@contoso.example")
	if svc.calls.Load() != 1 {
		t.Fatalf("sign-in synced %d times", svc.calls.Load())
	}

	// Nothing changed: the refresh does not sync.
	if p := b.get("/app"); p.status != 200 || s.mock.RefreshRequests.Load() != 1 || svc.calls.Load() != 1 {
		t.Fatalf("unchanged: %d, %d refreshes, %d syncs", p.status, s.mock.RefreshRequests.Load(), svc.calls.Load())
	}

	s.mock.UpdateUser("ada@contoso.example", func(u *mockentra.User) {
		u.Name = "Ada King"
		u.Groups = []string{groupThree}
	})
	p := b.get("/app")
	got := p.echoed(t)
	if p.status != 200 || got.Headers["x-auth-request-name"][0] != "Ada King" || got.Headers["x-auth-request-groups"][0] != groupThree {
		t.Fatalf("after the change: %d %v", p.status, got.Headers)
	}
	if svc.calls.Load() != 2 {
		t.Fatalf("the change made %d syncs in all, want 2", svc.calls.Load())
	}
	stored := storedUser(t, svc, "00000000-0000-0000-0000-00000000ada1")
	if stored.Name != "Ada King" || strings.Join(stored.Groups, ",") != groupThree {
		t.Fatalf("the directory has %+v", stored)
	}
	if v := got.Headers["x-auth-request-user-id"]; len(v) != 1 || v[0] == "" {
		t.Errorf("user id after re-sync: %v", v)
	}
}

// Two workers, each with its own VM: the requests of one session due for a refresh land
// on both, and the session is still refreshed once (the mock allows each refresh token
// once, as a strict provider does, so a second refresh would end the session). Later
// requests still carrying the old cookie, on either worker, get the renewed session.
func TestRefreshAcrossWorkers(t *testing.T) {
	s := shortTokens(t, 6*time.Second, "4s", func(o *stackOptions) { o.concurrency = 2 })
	b := s.browser()
	b.signIn("/", "ada@contoso.example")
	old := b.sessionCookie()
	time.Sleep(2100 * time.Millisecond)

	requestAllAtOnce(t, s, old, 16)
	if n := s.mock.RefreshRequests.Load(); n != 1 {
		t.Fatalf("16 requests on 2 workers made %d refreshes, want 1", n)
	}
	for i := range 6 {
		c := s.browser()
		c.setSession(old)
		if p := c.get("/app"); p.status != 200 || c.sessionCookie() == old {
			t.Fatalf("old cookie, request %d: %d, renewed: %v", i, p.status, c.sessionCookie() != old)
		}
	}
	if n := s.mock.RefreshRequests.Load(); n != 1 {
		t.Fatalf("old cookies made %d refreshes in all, want 1", n)
	}
}

// requestAllAtOnce sends n requests with the session cookie at once, each from a browser
// (and connection) of its own, so that the workers share them out; each must get 200.
func requestAllAtOnce(t *testing.T, s *stack, cookie string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	statuses := make(chan int, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.browser()
			c.setSession(cookie)
			statuses <- c.get("/app").status
		}()
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 200 {
			t.Errorf("a request got %d", st)
		}
	}
}

// A refreshed ID token that fails verification is no passing outage: it ends the session
// even while the old tokens still hold. The browser is sent to sign in again and brought
// back to the page it asked for; an unknown key gets one key refetch first, and ends the
// session when the refetched keys do not have it either.
func TestRefreshedIDTokenThatFailsVerificationEndsTheSession(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault mockentra.Faults
	}{
		{"bad signature", mockentra.Faults{BadSignature: true}},
		{"another audience", mockentra.Faults{WrongAudience: true}},
		{"another issuer", mockentra.Faults{WrongIssuer: true}},
		{"another nonce", mockentra.Faults{WrongNonce: true}},
		{"an unknown key", mockentra.Faults{UnknownKID: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := shortTokens(t, 30*time.Second, "30s", nil) // due at once, valid for long
			b := s.browser()
			b.signIn("/", "ada@contoso.example")
			keysBefore := s.mock.KeysRequests.Load()
			s.mock.SetFaults(tc.fault)
			p := b.get("/reports?q=1")
			if p.status != 302 || p.location == nil || p.location.String() != s.base+"/.auth/login?rd=%2Freports%3Fq%3D1" {
				t.Fatalf("got %d %v, want the sign-in again, back to /reports?q=1", p.status, p.location)
			}
			if b.sessionCookie() != "" {
				t.Error("the ended session's cookie was not cleared")
			}
			if !s.runner.stderr.waitFor("does not verify") {
				t.Errorf("the reason was not logged:\n%s", tail(s.runner.stderr.String(), 2000))
			}
			if tc.fault.UnknownKID && s.mock.KeysRequests.Load() == keysBefore {
				t.Error("an unknown key ended the session without a key refetch")
			}
			checkNoTokenLogged(t, s)
		})
	}
}
