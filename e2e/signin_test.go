package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// End to end: a cookie-keeping client signs in through the runner process, running the
// built module, against the mock Entra ID, over real loopback HTTP(S).

func TestSignInEndToEnd(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser()

	// Signed out: /.auth/me says so, a program gets 401, a browser goes to sign in.
	if p := b.get("/.auth/me", "Accept", "application/json"); p.status != 401 {
		t.Fatalf("/.auth/me signed out: %d", p.status)
	}
	done := b.signIn("/app/page?x=1", "ada@contoso.example")
	if done.status != 302 || done.location.Path != "/app/page" || done.location.RawQuery != "x=1" {
		t.Fatalf("callback answered %d %s: %.300s", done.status, done.location, done.body)
	}
	for name, value := range b.cookies() {
		if strings.HasPrefix(name, "__Host-entra-auth-signin-") {
			t.Errorf("the sign-in cookie %s outlived the sign-in (%d bytes)", name, len(value))
		}
	}
	checkSessionCookieAttributes(t, done.header.Values("Set-Cookie"))

	// Signed in: the upstream learns who the user is, and nothing a client forges.
	p := b.get("/app/page?x=1", "X-Auth-Request-User", "mallory@evil.example", "X-Auth-Request-Roles", "Admin,Owner",
		"X-Auth-Request-Acrs", "c1", "x-auth-request-auth-time", "9999999999")
	got := p.echoed(t)
	if v := got.Headers["x-auth-request-acrs"]; len(v) != 0 {
		t.Errorf("a forged x-auth-request-acrs reached the upstream: %v", v)
	}
	want := map[string]string{
		"x-auth-request-user": "ada@contoso.example", "x-auth-request-email": "ada@contoso.example",
		"x-auth-request-name": "Ada Lovelace", "x-auth-request-oid": "00000000-0000-0000-0000-00000000ada1",
		"x-auth-request-tid": mockentra.DemoTenant, "x-auth-request-roles": "Admin",
		"x-auth-request-groups": "a4f7c0d2-1111-4a5b-9c3d-000000000001,a4f7c0d2-1111-4a5b-9c3d-000000000002",
	}
	for name, value := range want {
		if v := got.Headers[name]; len(v) != 1 || v[0] != value {
			t.Errorf("%s = %v, want [%s]", name, v, value)
		}
	}
	// And when the user last authenticated (Unix seconds), from the ID token's auth_time.
	if v := got.Headers["x-auth-request-auth-time"]; len(v) != 1 || !recentUnix(v[0]) {
		t.Errorf("x-auth-request-auth-time = %v, want the sign-in's time", v)
	}

	// /.auth/me answers the claims as JSON.
	me := b.get("/.auth/me", "Accept", "application/json")
	var claims map[string]any
	if err := json.Unmarshal([]byte(me.body), &claims); err != nil || me.status != 200 || claims["preferred_username"] != "ada@contoso.example" {
		t.Fatalf("/.auth/me: %d %s", me.status, me.body)
	}
	if at, _ := claims["auth_time"].(float64); !recentUnix(strconv.FormatInt(int64(at), 10)) || fmt.Sprint(claims["amr"]) != "[pwd]" || fmt.Sprint(claims["acrs"]) != "[]" {
		t.Errorf("/.auth/me says how Ada signed in: auth_time %v, amr %v, acrs %v", claims["auth_time"], claims["amr"], claims["acrs"])
	}

	// Logout clears the session and goes to Entra's end-session endpoint with a hint.
	out := b.get("/.auth/logout")
	if out.status != 302 || !strings.HasPrefix(out.location.String(), s.mockURL+"/"+mockentra.DemoTenant+"/oauth2/v2.0/logout?") {
		t.Fatalf("logout: %d %s", out.status, out.location)
	}
	if q := out.location.Query(); q.Get("post_logout_redirect_uri") != s.base+"/.auth/signed-out" || q.Get("logout_hint") == "" {
		t.Errorf("logout query %v", q)
	}
	// Entra sends the browser back to a page that says it is signed out, not to one that
	// would sign it in again at once.
	back := b.get(out.location.String())
	if back.status != 302 || back.location.String() != s.base+"/.auth/signed-out" {
		t.Fatalf("Entra's sign-out: %d %s", back.status, back.location)
	}
	if p := b.get(back.location.String()); p.status != 200 || !strings.Contains(p.body, "You are signed out") || !strings.Contains(p.body, `href="/.auth/login?rd=%2F"`) {
		t.Errorf("the signed-out page: %d %.300s", p.status, p.body)
	}
	if p := b.get("/.auth/me", "Accept", "application/json"); p.status != 401 {
		t.Errorf("/.auth/me after logout: %d", p.status)
	}
	if p := b.get("/app/page"); p.status != 302 {
		t.Errorf("protected page after logout: %d", p.status)
	}
}

// Security rule: cookies are Secure, HttpOnly, SameSite=Lax, Path=/, without Domain,
// with the __Host- prefix.
func checkSessionCookieAttributes(t *testing.T, setCookies []string) {
	t.Helper()
	found := false
	for _, c := range setCookies {
		if strings.Contains(c, "Max-Age=0") {
			continue
		}
		found = true
		for _, attr := range []string{"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} {
			if !strings.Contains(c, "; "+attr) {
				t.Errorf("cookie %.40s… lacks %s", c, attr)
			}
		}
		if strings.Contains(c, "Domain=") || !strings.HasPrefix(c, "__Host-entra-auth") {
			t.Errorf("cookie %.60s…", c)
		}
	}
	if !found {
		t.Error("no session cookie set")
	}
}

// Security rule: non-browser requests get 401 with WWW-Authenticate, not a redirect; and
// the body of a request that is not let through never reaches the upstream.
func TestProgramsGet401(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser()
	for _, headers := range [][]string{{"Accept", "application/json"}, {"X-Requested-With", "XMLHttpRequest"}} {
		p := b.do("POST", "/api/items", headers...)
		if p.status != 401 || !strings.HasPrefix(p.header.Get("Www-Authenticate"), "Bearer realm=") || p.location != nil {
			t.Errorf("%v: %d %v", headers, p.status, p.header)
		}
		var body map[string]string
		if json.Unmarshal([]byte(p.body), &body) != nil || body["error"] != "sign_in_required" || body["request_id"] == "" {
			t.Errorf("%v: body %s", headers, p.body)
		}
	}
	if n := len(s.echoes()); n != 0 {
		t.Errorf("the upstream received %d unauthenticated requests", n)
	}
}

// Security rule: after sign-in, redirect only to a same-origin path.
func TestSignInReturnsOnlyToThisSite(t *testing.T) {
	s := newStack(t, stackOptions{})
	for _, rd := range []string{"//evil.example/x", "/\\evil.example", "https://evil.example/", "/\t/evil.example", "/ok/path?a=b"} {
		b := s.browser()
		start := b.get("/.auth/login?rd=" + url.QueryEscape(rd))
		if start.status != 302 {
			t.Fatalf("login: %d", start.status)
		}
		done := b.pickUser(start.location, "ada@contoso.example")
		want := "/"
		if rd == "/ok/path?a=b" {
			want = rd
		}
		if loc := done.header.Get("Location"); loc != want {
			t.Errorf("rd %q: back to %q, want %q", rd, loc, want)
		}
	}
}

// Security rule: state binds the callback to the browser that started it, and is single-use.
func TestCallbackStateRules(t *testing.T) {
	s := newStack(t, stackOptions{})

	t.Run("another browser's callback", func(t *testing.T) {
		victim, attacker := s.browser(), s.browser()
		start := victim.get("/app")
		q := start.location.Query()
		q.Set("mock_user", "ada@contoso.example")
		start.location.RawQuery = q.Encode()
		back := victim.get(start.location.String())
		p := attacker.get(back.location.String())
		if p.status != 400 || !strings.Contains(p.body, "not started in this browser") {
			t.Errorf("login CSRF: %d %.200s", p.status, p.body)
		}
		if _, ok := attacker.cookies()["__Host-entra-auth"]; ok {
			t.Error("the attacker's browser got a session")
		}
	})

	t.Run("replayed callback", func(t *testing.T) {
		b := s.browser()
		start := b.get("/app")
		signInCookies := b.cookies()
		q := start.location.Query()
		q.Set("mock_user", "ada@contoso.example")
		start.location.RawQuery = q.Encode()
		back := b.get(start.location.String())
		if first := b.get(back.location.String()); first.status != 302 {
			t.Fatalf("first callback: %d", first.status)
		}
		tokenRequests := s.mock.TokenRequests.Load()
		replay := s.browser()
		u, _ := url.Parse(s.base)
		for name, value := range signInCookies {
			replay.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/", Secure: true}})
		}
		p := replay.get(back.location.String())
		if p.status != 400 || !strings.Contains(p.body, "already used") || s.mock.TokenRequests.Load() != tokenRequests {
			t.Errorf("replay: %d %.200s, token requests %d -> %d", p.status, p.body, tokenRequests, s.mock.TokenRequests.Load())
		}
	})

	t.Run("reloaded callback", func(t *testing.T) {
		b := s.browser()
		back := b.callbackFor("/app", "ada@contoso.example")
		if first := b.get(back.location.String()); first.status != 302 || first.location.Path != "/app" {
			t.Fatalf("first callback: %d %v", first.status, first.location)
		}
		tokenRequests := s.mock.TokenRequests.Load()
		if again := b.get(back.location.String()); again.status != 302 || again.location.Path != "/" {
			t.Errorf("reloaded while signed in: %d %v %.200s, want on to /", again.status, again.location, again.body)
		}
		signedOut := s.browser()
		if p := signedOut.get(back.location.String()); p.status != 400 || !strings.Contains(p.body, "already used") {
			t.Errorf("the used link in a signed-out browser: %d %.200s", p.status, p.body)
		}
		if s.mock.TokenRequests.Load() != tokenRequests {
			t.Errorf("a visit again exchanged the code again (%d token requests)", s.mock.TokenRequests.Load()-tokenRequests)
		}
	})

	t.Run("tabs sign in in parallel", func(t *testing.T) {
		b := s.browser()
		one, two := b.get("/one"), b.get("/two")
		if a := b.pickUser(two.location, "ada@contoso.example"); a.header.Get("Location") != "/two" {
			t.Errorf("second tab: %d %s", a.status, a.header.Get("Location"))
		}
		if a := b.pickUser(one.location, "ada@contoso.example"); a.header.Get("Location") != "/one" {
			t.Errorf("first tab: %d %s", a.status, a.header.Get("Location"))
		}
	})
}

// Security rule: a tampered, truncated or foreign cookie is no session, never a 500.
func TestBadSessionCookiesAreNoSession(t *testing.T) {
	s := newStack(t, stackOptions{})
	other := newStack(t, stackOptions{})
	foreign := other.browser()
	foreign.signIn("/", "ada@contoso.example")
	foreignValue := foreign.cookies()["__Host-entra-auth"]

	good := s.browser()
	good.signIn("/", "ada@contoso.example")
	value := good.cookies()["__Host-entra-auth"]
	u, _ := url.Parse(s.base)
	for name, v := range map[string]string{
		"tampered":  value[:len(value)/2] + flip(value[len(value)/2]) + value[len(value)/2+1:],
		"truncated": value[:len(value)-10],
		"foreign":   foreignValue,
		"garbage":   "not-a-session",
		"huge":      strings.Repeat("A", 3000),
	} {
		b := s.browser()
		b.jar.SetCookies(u, []*http.Cookie{{Name: "__Host-entra-auth", Value: v, Path: "/", Secure: true}})
		if p := b.get("/app"); p.status != 302 {
			t.Errorf("%s, browser: %d", name, p.status)
		}
		if p := b.get("/app", "Accept", "application/json"); p.status != 401 {
			t.Errorf("%s, program: %d", name, p.status)
		}
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// Sessions too large for one cookie are split and read back.
func TestLargeSessionIsSplitAcrossCookies(t *testing.T) {
	opts := mockentra.DemoOptions()
	many := mockentra.User{Username: "many@contoso.example", Name: "Many Groups", Email: "many@contoso.example",
		ObjectID: "00000000-0000-0000-0000-000000000999", TenantID: mockentra.DemoTenant}
	for i := 0; i < 150; i++ {
		many.Groups = append(many.Groups, fmt.Sprintf("%08d-86f1-41af-91ab-2d7cd011db47", i))
	}
	opts.Users = append(opts.Users, many)
	s := newStack(t, stackOptions{mock: &opts})
	b := s.browser()
	b.signIn("/", "many@contoso.example")
	chunks := 0
	for name := range b.cookies() {
		if strings.HasPrefix(name, "__Host-entra-auth") {
			chunks++
		}
	}
	if chunks < 2 {
		t.Fatalf("%d session cookies", chunks)
	}
	got := b.get("/").echoed(t)
	if groups := strings.Split(got.Headers["x-auth-request-groups"][0], ","); len(groups) != 150 {
		t.Errorf("%d groups upstream", len(groups))
	}
}

// ID tokens that fail a rule are refused with a page, and the browser gets no session.
func TestBadIDTokensAreRefused(t *testing.T) {
	s := newStack(t, stackOptions{})
	cases := []struct {
		name   string
		faults mockentra.Faults
		status int
		code   string
	}{
		{"bad signature", mockentra.Faults{BadSignature: true}, 401, "failed validation"},
		{"another audience", mockentra.Faults{WrongAudience: true}, 401, "failed validation"},
		{"another issuer", mockentra.Faults{WrongIssuer: true}, 401, "failed validation"},
		{"another nonce", mockentra.Faults{WrongNonce: true}, 401, "failed validation"},
		{"expired", mockentra.Faults{Expired: true}, 401, "failed validation"},
		{"another tenant", mockentra.Faults{WrongTenant: true}, 401, "failed validation"},
		{"sign-in refused by Entra", mockentra.Faults{AuthorizeError: "access_denied"}, 403, "cancelled, or consent was refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s.mock.SetFaults(tc.faults)
			defer s.mock.SetFaults(mockentra.Faults{})
			b := s.browser()
			p := b.signIn("/app", "ada@contoso.example")
			if p.status != tc.status || !strings.Contains(p.body, tc.code) || !strings.Contains(p.body, "Request id: ") {
				t.Errorf("%d %.300s", p.status, p.body)
			}
			if _, ok := b.cookies()["__Host-entra-auth"]; ok {
				t.Error("a session was set")
			}
		})
	}
}

func TestWrongClientSecretIsAConfigurationError(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{"client_secret_env": nil, "client_secret": "wrong"}})
	p := s.browser().signIn("/", "ada@contoso.example")
	if p.status != 502 || !strings.Contains(p.body, "invalid_client") {
		t.Errorf("%d %.300s", p.status, p.body)
	}
	if !s.runner.stderr.waitFor("AADSTS7000215") {
		t.Error("the log lacks Entra's error code")
	}
	if strings.Contains(s.runner.stderr.String(), "eyJ") {
		t.Error("something shaped like a token reached the log")
	}
}

func TestMultiTenant(t *testing.T) {
	for _, tc := range []struct {
		allowed []string
		user    string
		status  int
	}{
		{[]string{mockentra.DemoTenant}, "ada@contoso.example", 302},
		{[]string{mockentra.DemoTenant}, "alan@fabrikam.example", 403},
		{[]string{"*"}, "alan@fabrikam.example", 302},
	} {
		t.Run(tc.user+" "+strings.Join(tc.allowed, ","), func(t *testing.T) {
			s := newStack(t, stackOptions{config: map[string]any{"tenant_id": "organizations", "allowed_tenants": tc.allowed}})
			b := s.browser()
			p := b.signIn("/", tc.user)
			if p.status != tc.status {
				t.Fatalf("%d %.300s", p.status, p.body)
			}
			if tc.status == 302 {
				u := mockentra.DemoUsers()
				want := mockentra.DemoTenant
				if tc.user == u[2].Username {
					want = mockentra.DemoOtherTenant
				}
				if got := b.get("/").echoed(t).Headers["x-auth-request-tid"]; len(got) != 1 || got[0] != want {
					t.Errorf("tid %v", got)
				}
			}
		})
	}
}

// Security rule: an unknown kid triggers a JWKS refresh at once, so a rotated key works
// on its first use; but at most one such refresh per 30 s, whatever the traffic.
func TestKeyRotationAndUnknownKidFlood(t *testing.T) {
	s := newStack(t, stackOptions{concurrency: 2})
	s.browser().signIn("/", "ada@contoso.example")
	fetches := s.mock.KeysRequests.Load()

	s.mock.Rotate()
	if p := s.browser().signIn("/", "grace@contoso.example"); p.status != 302 {
		t.Fatalf("first use of a rotated key: %d %.300s", p.status, p.body)
	}
	if n := s.mock.KeysRequests.Load() - fetches; n != 1 {
		t.Fatalf("rotation cost %d key fetches, want 1", n)
	}

	s.mock.SetFaults(mockentra.Faults{UnknownKID: true})
	before := s.mock.KeysRequests.Load()
	var wg sync.WaitGroup
	statuses := make(chan int, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- s.browser().signIn("/", "ada@contoso.example").status
		}()
	}
	wg.Wait()
	close(statuses)
	for st := range statuses {
		if st != 502 {
			t.Errorf("bogus kid: %d", st)
		}
	}
	// The rotation above used the 30-second allowance, so the flood fetches nothing.
	if n := s.mock.KeysRequests.Load() - before; n != 0 {
		t.Errorf("20 tokens with unknown kids cost %d key fetches, want 0 within 30 s of the last", n)
	}
}

// N workers fetch the discovery document and the keys once, not N times; requests that
// arrive before they are loaded wait and are then answered, not failed.
func TestMetadataIsFetchedOnceAndRequestsWaitForIt(t *testing.T) {
	s := newStack(t, stackOptions{concurrency: 4, faults: mockentra.Faults{Delay: map[string]time.Duration{"keys": 800 * time.Millisecond}}})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := s.browser()
			b.client.Transport = &http.Transport{TLSClientConfig: b.client.Transport.(*http.Transport).TLSClientConfig, DisableKeepAlives: true}
			if p := b.get("/"); p.status != 302 || p.location == nil || !strings.HasPrefix(p.location.String(), s.mockURL) {
				t.Errorf("early request: %d %s", p.status, p.body)
			}
		}()
	}
	wg.Wait()
	if d, k := s.mock.DiscoveryRequests.Load(), s.mock.KeysRequests.Load(); d != 1 || k != 1 {
		t.Errorf("4 workers made %d discovery and %d key requests, want 1 each", d, k)
	}
}

func TestIdentityProviderDown(t *testing.T) {
	s := newStack(t, stackOptions{faults: mockentra.Faults{Status: map[string]int{"discovery": 500}}})
	p := s.browser().get("/")
	if p.status != 503 || !strings.Contains(p.body, "could not be reached") {
		t.Fatalf("with the provider down: %d %.300s", p.status, p.body)
	}
	if !s.runner.stderr.waitFor("fetching the identity provider's metadata failed") {
		t.Error("no log line about the failure")
	}
	s.mock.SetFaults(mockentra.Faults{})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if p := s.browser().get("/"); p.status == 302 {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatal("the filter did not recover when the provider came back")
}

// echoes is what the upstream received so far.
func (s *stack) echoes() []seen {
	echoMu.Lock()
	defer echoMu.Unlock()
	return append([]seen(nil), echoLog[s.upstream.URL]...)
}

func TestClientSecretBasic(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{"client_auth": "client_secret_basic"}})
	if p := s.browser().signIn("/", "ada@contoso.example"); p.status != 302 {
		t.Fatalf("%d %.300s", p.status, p.body)
	}
}

// A token without kid is checked against the only key when the set holds one, and
// refused when it holds several.
func TestTokenWithoutKid(t *testing.T) {
	s := newStack(t, stackOptions{faults: mockentra.Faults{NoKID: true}})
	if p := s.browser().signIn("/", "ada@contoso.example"); p.status != 302 {
		t.Fatalf("one key: %d %.300s", p.status, p.body)
	}
	s.mock.Rotate()
	s.mock.SetFaults(mockentra.Faults{})
	s.browser().signIn("/", "ada@contoso.example") // the filter learns the second key
	s.mock.SetFaults(mockentra.Faults{NoKID: true})
	if p := s.browser().signIn("/", "ada@contoso.example"); p.status == 302 {
		t.Fatal("a token without kid was accepted while the key set holds two keys")
	}
}

// Security rule: tokens, codes, secrets and cookie values never appear in logs, even at
// debug level and through failures.
func TestNothingSecretIsLogged(t *testing.T) {
	s := newStack(t, stackOptions{logLevel: "trace"})
	b := s.browser()
	start := b.get("/app")
	q := start.location.Query()
	q.Set("mock_user", "ada@contoso.example")
	start.location.RawQuery = q.Encode()
	back := b.get(start.location.String())
	code := back.location.Query().Get("code")
	b.get(back.location.String())
	session := b.cookies()["__Host-entra-auth"]
	s.mock.SetFaults(mockentra.Faults{BadSignature: true})
	s.browser().signIn("/", "ada@contoso.example")
	s.mock.SetFaults(mockentra.Faults{})
	tampered := s.browser()
	u, _ := url.Parse(s.base)
	tampered.jar.SetCookies(u, []*http.Cookie{{Name: "__Host-entra-auth", Value: session[:len(session)-4] + "AAAA", Path: "/", Secure: true}})
	tampered.get("/app", "Accept", "application/json")

	logs := s.runner.stderr.String()
	for name, secret := range map[string]string{
		"authorization code": code, "session cookie": session[:40], "client secret": mockentra.DemoClientSecret,
		"state": q.Get("state"), "nonce": q.Get("nonce"), "a JWT": "eyJ",
	} {
		if secret != "" && strings.Contains(logs, secret) {
			t.Errorf("the log contains the %s", name)
		}
	}
}

// A token endpoint slower than idp_timeout is Envoy's 504 to the filter, and a 503 page
// to the person, who can try again.
func TestSlowTokenEndpoint(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{"idp_timeout": "500ms"},
		faults: mockentra.Faults{Delay: map[string]time.Duration{"token": 2 * time.Second}}})
	p := s.browser().signIn("/", "ada@contoso.example")
	if p.status != 503 || !strings.Contains(p.body, "could not be reached") {
		t.Fatalf("%d %.300s", p.status, p.body)
	}
	s.mock.SetFaults(mockentra.Faults{})
	if p := s.browser().signIn("/", "ada@contoso.example"); p.status != 302 {
		t.Fatalf("after the endpoint recovered: %d", p.status)
	}
}

// recentUnix reports whether v is a Unix time in seconds within a minute of now.
func recentUnix(v string) bool {
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && time.Since(time.Unix(n, 0)).Abs() < time.Minute
}
