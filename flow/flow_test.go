package flow

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/jwks"
	"github.com/entra-auth/entra-auth/session"
)

var testNow = time.Unix(1_800_000_000, 0)

// Cookie secrets, and the smallest configuration that starts, for flow's tests.
var (
	secretA = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", 32)))
	secretB = base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("b", 32)))
	minimal = `{"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "11111111-2222-3333-4444-555555555555",
	"client_secret": "s3cret", "idp_cluster": "entra", "cookie_secret": "` + secretA + `"}`
)

func noEnv(string) (string, bool) { return "", false }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newFlow(t testing.TB, extra string) (*Flow, *clock) {
	t.Helper()
	cfgJSON := `{"tenant_id":"72f988bf-86f1-41af-91ab-2d7cd011db47","client_id":"11111111-2222-3333-4444-555555555555","client_secret":"s3cret",
		"idp_cluster":"entra"` + extra + `}`
	if !strings.Contains(extra, "cookie_secret") {
		cfgJSON = strings.TrimSuffix(cfgJSON, "}") + `,"cookie_secret":"` + secretA + `"}`
	}
	cfg, err := config.Parse([]byte(cfgJSON), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{testNow}
	f, err := New(cfg, rand.Reader, c.now)
	if err != nil {
		t.Fatal(err)
	}
	return f, c
}

var testDiscovery = &Discovery{
	Issuer:                "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0",
	AuthorizationEndpoint: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/authorize",
	TokenEndpoint:         "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token",
	JWKSURI:               "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys",
	EndSessionEndpoint:    "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/logout",
}

// browser is a minimal cookie-keeping client for flow tests.
type browser struct{ jar map[string]string }

func newBrowser() *browser { return &browser{jar: map[string]string{}} }

// jarOf makes the cookie jar of a request that carries cookies.
func jarOf(cookies map[string]string) session.Jar {
	var pairs []string
	for name, value := range cookies {
		pairs = append(pairs, name+"="+value)
	}
	return session.NewJar(strings.Join(pairs, "; "))
}

func (b *browser) request(path string) *Request {
	return &Request{Method: "GET", Scheme: "https", Authority: "app.contoso.com", Path: path, Accept: "text/html", Cookies: jarOf(b.jar)}
}

// take applies a response's Set-Cookie headers, as a browser would.
func (b *browser) take(t testing.TB, r *Response) {
	t.Helper()
	for _, h := range r.Headers {
		if h[0] != "set-cookie" {
			continue
		}
		nv, attrs, _ := strings.Cut(h[1], ";")
		name, value, _ := strings.Cut(nv, "=")
		if strings.Contains(attrs, "Max-Age=0") {
			delete(b.jar, name)
		} else {
			b.jar[name] = value
		}
	}
}

func header(r *Response, name string) string {
	for _, h := range r.Headers {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

func headers(r *Response, name string) []string {
	var out []string
	for _, h := range r.Headers {
		if h[0] == name {
			out = append(out, h[1])
		}
	}
	return out
}

func TestRoute(t *testing.T) {
	f, _ := newFlow(t, `,"skip_paths":["/healthz","/static/*"]`)
	for path, want := range map[string]Route{
		"/":                       RouteProtected,
		"/.auth/callback?code=x":  RouteCallback,
		"/.auth/login?rd=/a":      RouteLogin,
		"/.auth/logout":           RouteLogout,
		"/.auth/me":               RouteMe,
		"/healthz":                RouteSkip,
		"/healthz/more":           RouteProtected,
		"/static/app.js":          RouteSkip,
		"/staticx":                RouteProtected,
		"/.auth/callbackx":        RouteProtected,
		"/.AUTH/ME":               RouteProtected,
		"/healthz?probe=1":        RouteSkip,
		"/static/../admin":        RouteSkip, // Envoy normalizes paths before filters when configured; see README
		"/.auth/callback/../me":   RouteProtected,
		"/.auth/logout?rd=//evil": RouteLogout,
	} {
		if got := f.Route(&Request{Path: path}); got != want {
			t.Errorf("%s: %v, want %v", path, got, want)
		}
	}
}

// Security rule: after sign-in, redirect only to a same-origin path.
func TestSafeReturnPath(t *testing.T) {
	for rd, want := range map[string]string{
		"/":                             "/",
		"/app/page?x=1#frag":            "/app/page?x=1#frag",
		"/a/b%2F%2Fc":                   "/a/b%2F%2Fc",
		"":                              "/",
		"relative":                      "/",
		"//evil.example":                "/",
		"///evil.example":               "/",
		"/\\evil.example":               "/",
		"/\\/evil.example":              "/",
		"\\\\evil.example":              "/",
		"https://evil.example/":         "/",
		"http:/evil.example":            "/",
		"javascript:alert(1)":           "/",
		"/\t/evil.example":              "/",
		"/\r\n/evil.example":            "/",
		"/ok\x00":                       "/",
		"/" + strings.Repeat("a", 3000): "/",
	} {
		if got := SafeReturnPath(rd); got != want {
			t.Errorf("SafeReturnPath(%q) = %q, want %q", rd, got, want)
		}
	}
}

func FuzzSafeReturnPath(f *testing.F) {
	for _, s := range []string{"/a", "//x", "/\\x", "https://x", "/%2f%2fx", "/\t/x"} {
		f.Add(s)
	}
	app, _ := url.Parse("https://app.contoso.com/start")
	f.Fuzz(func(t *testing.T, rd string) {
		got := SafeReturnPath(rd)
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("%q -> %q does not parse", rd, got)
		}
		if dest := app.ResolveReference(u); dest.Host != app.Host || dest.Scheme != app.Scheme {
			t.Fatalf("%q -> %q leads to %s", rd, got, dest)
		}
		if strings.ContainsAny(got, "\\\t\r\n") || strings.HasPrefix(got, "//") {
			t.Fatalf("%q -> %q", rd, got)
		}
	})
}

func TestStartSignIn(t *testing.T) {
	f, _ := newFlow(t, "")
	b := newBrowser()
	resp, err := f.StartSignIn(b.request("/app?x=1"), testDiscovery, "/app?x=1")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 302 || header(resp, "cache-control") != "no-store" {
		t.Fatalf("status %d", resp.Status)
	}
	loc, err := url.Parse(header(resp, "location"))
	if err != nil || !strings.HasPrefix(loc.String(), testDiscovery.AuthorizationEndpoint+"?") {
		t.Fatalf("location %q", header(resp, "location"))
	}
	q := loc.Query()
	for k, want := range map[string]string{
		"client_id": "11111111-2222-3333-4444-555555555555", "response_type": "code", "response_mode": "query",
		"redirect_uri": "https://app.contoso.com/.auth/callback", "scope": config.DefaultScopes, "code_challenge_method": "S256",
	} {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("%s %q is too short", k, q.Get(k))
		}
	}
	if q.Get("code_verifier") != "" {
		t.Error("the PKCE verifier left the proxy")
	}
	cookie := header(resp, "set-cookie")
	wantAttrs := "; Path=/; Max-Age=600; Secure; HttpOnly; SameSite=Lax"
	if !strings.HasPrefix(cookie, "__Host-entra-auth-signin-"+q.Get("state")[:16]+"=") || !strings.HasSuffix(cookie, wantAttrs) || strings.Contains(cookie, "Domain") {
		t.Errorf("sign-in cookie %q", cookie)
	}
	// The cookie holds the verifier whose S256 challenge was sent.
	b.take(t, resp)
	cb, err := f.BeginCallback(b.request("/.auth/callback?code=c1&state=" + url.QueryEscape(q.Get("state"))))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(cb.SignIn.CodeVerifier))
	if base64.RawURLEncoding.EncodeToString(sum[:]) != q.Get("code_challenge") || cb.SignIn.Nonce != q.Get("nonce") || cb.SignIn.ReturnTo != "/app?x=1" {
		t.Errorf("sign-in state %+v does not match the request", cb.SignIn)
	}
}

func TestStartSignInMakesReturnToSafe(t *testing.T) {
	f, _ := newFlow(t, "")
	b := newBrowser()
	resp, _ := f.StartSignIn(b.request("/"), testDiscovery, "//evil.example/")
	b.take(t, resp)
	state := mustQuery(t, header(resp, "location")).Get("state")
	cb, err := f.BeginCallback(b.request("/.auth/callback?code=c&state=" + state))
	if err != nil || cb.SignIn.ReturnTo != "/" {
		t.Fatalf("return to %q, %v", cb.SignIn.ReturnTo, err)
	}
}

func mustQuery(t testing.TB, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// signIn runs a sign-in start in browser b and returns its state.
func signIn(t testing.TB, f *Flow, b *browser, returnTo string) string {
	t.Helper()
	resp, err := f.StartSignIn(b.request(returnTo), testDiscovery, returnTo)
	if err != nil {
		t.Fatal(err)
	}
	b.take(t, resp)
	return mustQuery(t, header(resp, "location")).Get("state")
}

// Security rule: state binds the callback to the browser that started it, is single-use,
// and expires.
func TestBeginCallback(t *testing.T) {
	f, clk := newFlow(t, "")
	other, _ := newFlow(t, `,"cookie_secret":"`+secretB+`"`)
	cases := []struct {
		name    string
		setup   func(t *testing.T) (*browser, string) // returns browser and callback path
		wantErr error
	}{
		{"valid", func(t *testing.T) (*browser, string) {
			b := newBrowser()
			return b, "/.auth/callback?code=c&state=" + signIn(t, f, b, "/")
		}, nil},
		{"two tabs each complete", func(t *testing.T) (*browser, string) {
			b := newBrowser()
			first := signIn(t, f, b, "/one")
			signIn(t, f, b, "/two")
			return b, "/.auth/callback?code=c&state=" + first
		}, nil},
		{"another browser's state", func(t *testing.T) (*browser, string) {
			victim, attacker := newBrowser(), newBrowser()
			signIn(t, f, attacker, "/")
			return attacker, "/.auth/callback?code=c&state=" + signIn(t, f, victim, "/")
		}, ErrStateMissing},
		{"state cookie of another prefix collision", func(t *testing.T) (*browser, string) {
			b := newBrowser()
			state := signIn(t, f, b, "/")
			return b, "/.auth/callback?code=c&state=" + state[:16] + "tampered-rest-of-the-state-xxxxxxxxx"
		}, ErrStateInvalid},
		{"cookie sealed by another proxy", func(t *testing.T) (*browser, string) {
			b := newBrowser()
			return b, "/.auth/callback?code=c&state=" + signIn(t, other, b, "/")
		}, ErrStateInvalid},
		{"tampered cookie", func(t *testing.T) (*browser, string) {
			b := newBrowser()
			state := signIn(t, f, b, "/")
			for k, v := range b.jar {
				b.jar[k] = v[:len(v)-2] + "AA"
			}
			return b, "/.auth/callback?code=c&state=" + state
		}, ErrStateInvalid},
		{"expired", func(t *testing.T) (*browser, string) {
			b := newBrowser()
			state := signIn(t, f, b, "/")
			clk.t = testNow.Add(11 * time.Minute)
			return b, "/.auth/callback?code=c&state=" + state
		}, ErrStateExpired},
		{"no state", func(t *testing.T) (*browser, string) {
			b := newBrowser()
			signIn(t, f, b, "/")
			return b, "/.auth/callback?code=c"
		}, ErrStateInvalid},
		{"no code", func(t *testing.T) (*browser, string) {
			b := newBrowser()
			return b, "/.auth/callback?state=" + signIn(t, f, b, "/")
		}, ErrCallback},
		{"repeated state", func(t *testing.T) (*browser, string) {
			b := newBrowser()
			s := signIn(t, f, b, "/")
			return b, "/.auth/callback?code=c&state=" + s + "&state=" + s
		}, ErrCallback},
		{"error from Entra", func(t *testing.T) (*browser, string) {
			return newBrowser(), "/.auth/callback?error=access_denied&error_description=AADSTS65004%3A+User+declined+to+consent&state=x"
		}, ErrSignInRefused},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk.t = testNow
			b, path := tc.setup(t)
			cb, err := f.BeginCallback(b.request(path))
			if tc.wantErr == nil {
				if err != nil || cb.Code != "c" {
					t.Fatalf("cb %+v err %v", cb, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestSignInStateIsSingleUse(t *testing.T) {
	f, _ := newFlow(t, "")
	b := newBrowser()
	state := signIn(t, f, b, "/page")
	callback := "/.auth/callback?code=c&state=" + state
	cb, err := f.BeginCallback(b.request(callback))
	if err != nil {
		t.Fatal(err)
	}
	done, err := f.CompleteSignIn(b.request(callback), cb, &session.Session{Subject: "s", Expires: testNow.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	b.take(t, done)
	if _, err := f.BeginCallback(b.request(callback)); !errors.Is(err, ErrStateMissing) {
		t.Fatalf("replayed callback: %v", err)
	}
}

func TestTooManyParallelSignInsClearTheOldest(t *testing.T) {
	f, _ := newFlow(t, "")
	b := newBrowser()
	for i := 0; i < maxSignIns; i++ {
		signIn(t, f, b, "/")
	}
	if n := len(f.signInCookies(jarOf(b.jar))); n != maxSignIns {
		t.Fatalf("%d sign-in cookies", n)
	}
	last := signIn(t, f, b, "/")
	if n := len(f.signInCookies(jarOf(b.jar))); n != 1 {
		t.Errorf("%d sign-in cookies after the limit, want only the newest", n)
	}
	if _, err := f.BeginCallback(b.request("/.auth/callback?code=c&state=" + last)); err != nil {
		t.Errorf("the newest sign-in: %v", err)
	}
}

func TestTokenRequest(t *testing.T) {
	cb := &Callback{Code: "the-code", SignIn: &session.SignIn{CodeVerifier: "the-verifier", RedirectURI: "https://app/.auth/callback"}}
	for _, tc := range []struct {
		extra      string
		wantSecret bool
		wantBasic  string
	}{
		{"", true, ""},
		{`,"client_auth":"client_secret_basic"`, false, "Basic " + base64.StdEncoding.EncodeToString([]byte("11111111-2222-3333-4444-555555555555:s3cret"))},
	} {
		f, _ := newFlow(t, tc.extra)
		r := must(f.TokenRequest(testDiscovery, cb))(t)
		if r.Method != "POST" || r.Authority != "login.microsoftonline.com" || r.Path != "/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token" {
			t.Errorf("request %s %s %s", r.Method, r.Authority, r.Path)
		}
		form, _ := url.ParseQuery(string(r.Body))
		for k, want := range map[string]string{"grant_type": "authorization_code", "code": "the-code", "code_verifier": "the-verifier", "redirect_uri": "https://app/.auth/callback", "client_id": "11111111-2222-3333-4444-555555555555"} {
			if form.Get(k) != want {
				t.Errorf("%s = %q", k, form.Get(k))
			}
		}
		if (form.Get("client_secret") == "s3cret") != tc.wantSecret {
			t.Errorf("client_secret in body: %q", form.Get("client_secret"))
		}
		var auth string
		for _, h := range r.Pairs() {
			if h[0] == "authorization" {
				auth = h[1]
			}
		}
		if auth != tc.wantBasic {
			t.Errorf("authorization %q, want %q", auth, tc.wantBasic)
		}
	}
}

func TestParseTokenResponse(t *testing.T) {
	cases := []struct {
		name    string
		status  int
		body    string
		wantErr error
		check   func(*testing.T, *Tokens, error)
	}{
		{"tokens", 200, `{"token_type":"Bearer","id_token":"a.b.c","access_token":"at","refresh_token":"rt","expires_in":3599}`, nil,
			func(t *testing.T, tk *Tokens, _ error) {
				if tk.IDToken != "a.b.c" || tk.RefreshToken != "rt" || tk.ExpiresIn != 3599*time.Second {
					t.Errorf("%+v", tk)
				}
			}},
		{"no id_token", 200, `{"access_token":"at"}`, ErrIdPResponse, nil},
		{"invalid_grant", 400, `{"error":"invalid_grant","error_description":"AADSTS54005: OAuth2 Authorization code was already redeemed.\r\nTrace ID: x","error_codes":[54005],"trace_id":"t1","correlation_id":"c1"}`, ErrTokenEndpoint,
			func(t *testing.T, _ *Tokens, err error) {
				var e *OAuthError
				if !errors.As(err, &e) || e.Code != "invalid_grant" || e.EntraCodes[0] != 54005 || e.TraceID != "t1" || strings.Contains(e.Description, "Trace ID") {
					t.Errorf("%+v", e)
				}
			}},
		{"envoy 503", 503, "upstream connect error", ErrIdPUnavailable, nil},
		{"no answer", 0, "", ErrIdPUnavailable, nil},
		{"html error", 400, "<html>", ErrIdPResponse, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tk, err := ParseTokenResponse(tc.status, []byte(tc.body))
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if tc.wantErr == nil && err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, tk, err)
			}
		})
	}
}

func testSession(groups int) *session.Session {
	s := &session.Session{Issuer: "iss", Subject: "sub-1", ObjectID: "oid-1", TenantID: "tid-1", Username: "ada@contoso.com",
		Email: "ada@contoso.com", Name: "Ada Lovelace", Roles: []string{"Admin"}, LoginHint: "hint-1",
		IssuedAt: testNow, Expires: testNow.Add(8 * time.Hour)}
	for i := 0; i < groups; i++ {
		s.Groups = append(s.Groups, fmt.Sprintf("%08d-86f1-41af-91ab-2d7cd011db47", i))
	}
	return s
}

// signedIn returns a browser holding a session like s.
func signedIn(t testing.TB, f *Flow, s *session.Session) *browser {
	t.Helper()
	b := newBrowser()
	state := signIn(t, f, b, "/page")
	cb, err := f.BeginCallback(b.request("/.auth/callback?code=c&state=" + state))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := f.CompleteSignIn(b.request("/"), cb, s)
	if err != nil {
		t.Fatal(err)
	}
	if header(resp, "location") != "/page" {
		t.Fatalf("completion redirects to %q", header(resp, "location"))
	}
	b.take(t, resp)
	return b
}

func TestSessionCookies(t *testing.T) {
	f, clk := newFlow(t, "")
	for _, groups := range []int{0, 3, 200} {
		t.Run(fmt.Sprint(groups, " groups"), func(t *testing.T) {
			clk.t = testNow
			b := signedIn(t, f, testSession(groups))
			got, err := f.Authenticate(b.request("/"))
			if err != nil || len(got.Groups) != groups || got.Name != "Ada Lovelace" {
				t.Fatalf("%+v %v", got, err)
			}
			for name, v := range b.jar {
				if len(v) > maxCookieValue {
					t.Errorf("%s holds %d bytes", name, len(v))
				}
			}
			if groups == 200 && len(session.Present(jarOf(b.jar), f.cfg.CookieName, maxSessionChunks)) < 2 {
				t.Error("a large session was not split")
			}
		})
	}
	t.Run("a smaller session clears stale chunks", func(t *testing.T) {
		b := signedIn(t, f, testSession(200))
		state := signIn(t, f, b, "/")
		cb, _ := f.BeginCallback(b.request("/.auth/callback?code=c&state=" + state))
		resp, _ := f.CompleteSignIn(b.request("/"), cb, testSession(1))
		b.take(t, resp)
		if n := len(session.Present(jarOf(b.jar), f.cfg.CookieName, maxSessionChunks)); n != 1 {
			t.Errorf("%d session cookies remain", n)
		}
		if s, err := f.Authenticate(b.request("/")); err != nil || len(s.Groups) != 1 {
			t.Errorf("%v %v", s, err)
		}
	})
}

// Security rule: a tampered, truncated or foreign cookie is no session, never an error
// of the server.
func TestAuthenticate(t *testing.T) {
	f, clk := newFlow(t, "")
	other, _ := newFlow(t, `,"cookie_secret":"`+secretB+`"`)
	cases := []struct {
		name    string
		jar     func(t *testing.T) map[string]string
		wantErr error
	}{
		{"valid", func(t *testing.T) map[string]string { return signedIn(t, f, testSession(2)).jar }, nil},
		{"none", func(t *testing.T) map[string]string { return map[string]string{} }, ErrNoSession},
		{"foreign proxy", func(t *testing.T) map[string]string { return signedIn(t, other, testSession(2)).jar }, ErrSessionInvalid},
		{"tampered", func(t *testing.T) map[string]string {
			j := signedIn(t, f, testSession(2)).jar
			v := []byte(j["__Host-entra-auth"])
			v[len(v)/2] ^= 1
			j["__Host-entra-auth"] = string(v)
			return j
		}, ErrSessionInvalid},
		{"truncated", func(t *testing.T) map[string]string {
			j := signedIn(t, f, testSession(2)).jar
			j["__Host-entra-auth"] = j["__Host-entra-auth"][:40]
			return j
		}, ErrSessionInvalid},
		{"chunk missing", func(t *testing.T) map[string]string {
			j := signedIn(t, f, testSession(200)).jar
			delete(j, "__Host-entra-auth.1")
			return j
		}, ErrSessionInvalid},
		{"sign-in cookie presented as the session", func(t *testing.T) map[string]string {
			b := newBrowser()
			signIn(t, f, b, "/")
			jar := map[string]string{}
			for _, v := range b.jar {
				jar["__Host-entra-auth"] = v
			}
			return jar
		}, ErrSessionInvalid},
		{"garbage", func(t *testing.T) map[string]string { return map[string]string{"__Host-entra-auth": "%%%"} }, ErrSessionInvalid},
		{"expired", func(t *testing.T) map[string]string {
			j := signedIn(t, f, testSession(2)).jar
			clk.t = testNow.Add(8*time.Hour + time.Second)
			return j
		}, ErrSessionExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk.t = testNow
			jar := tc.jar(t)
			s, err := f.Authenticate(&Request{Cookies: jarOf(jar)})
			if tc.wantErr == nil {
				if err != nil || s.Subject != "sub-1" {
					t.Fatalf("%v %v", s, err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestCookieSecretRotationKeepsSessions(t *testing.T) {
	before, _ := newFlow(t, "")
	b := signedIn(t, before, testSession(1))
	after, _ := newFlow(t, `,"cookie_secret":["`+secretB+`","`+secretA+`"]`)
	if _, err := after.Authenticate(b.request("/")); err != nil {
		t.Fatalf("a session sealed before rotation: %v", err)
	}
	// Sessions sealed after rotation use the new secret: a proxy that only has the old
	// one cannot open them.
	c := signedIn(t, after, testSession(1))
	if _, err := before.Authenticate(c.request("/")); !errors.Is(err, ErrSessionInvalid) {
		t.Fatalf("new session opened with the old secret only: %v", err)
	}
}

func TestIdentityHeaders(t *testing.T) {
	s := testSession(2)
	s.Name = "Ada\r\nX-Injected: yes"
	s.UserID = "42"
	got := map[string]string{}
	for _, h := range identityHeaders(s) {
		got[h[0]] = h[1]
		if !IsIdentityHeader(h[0]) {
			t.Errorf("%s lacks the prefix", h[0])
		}
	}
	want := map[string]string{
		HeaderUser: "ada@contoso.com", HeaderEmail: "ada@contoso.com", HeaderName: "AdaX-Injected: yes",
		HeaderOID: "oid-1", HeaderTID: "tid-1", HeaderRoles: "Admin", HeaderUserID: "42",
		HeaderGroups: "00000000-86f1-41af-91ab-2d7cd011db47,00000001-86f1-41af-91ab-2d7cd011db47",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got[HeaderEmail]; !ok || len(identityHeaders(&session.Session{Subject: "s"})) != 0 {
		t.Error("empty values must be left out")
	}
}

// The identity headers kept with an opened session belong to that session only, and a
// caller appending to them (a forwarded token) does not change what the next request gets.
func TestIdentityIsTheSessionsOwn(t *testing.T) {
	f, _ := newFlow(t, "")
	ada, grace := testSession(1), testSession(0)
	grace.Username, grace.Email, grace.Name, grace.ObjectID = "grace@contoso.com", "grace@contoso.com", "Grace Hopper", "oid-2"
	adaCookies := signedIn(t, f, ada).jar
	s, err := f.Authenticate(&Request{Cookies: jarOf(adaCookies)})
	if err != nil {
		t.Fatal(err)
	}
	// One request keeps its headers while it waits (an on-behalf-of exchange, say) ...
	waiting := append(f.Identity(s), [2]string{"authorization", "Bearer forwarded"})
	again, err := f.Authenticate(&Request{Cookies: jarOf(adaCookies)})
	if err != nil || again != s {
		t.Fatalf("the second request did not hit the cache: %v", err)
	}
	// ... while the next appends its own.
	_ = append(f.Identity(again), [2]string{"x-downstream-token", "other"})
	if got := waiting[len(waiting)-1]; got[0] != "authorization" {
		t.Errorf("a waiting request's headers were overwritten: %v", got)
	}
	if got := f.Identity(again); !slices.Equal(got, identityHeaders(ada)) {
		t.Errorf("cached identity changed: %v", got)
	}
	// A session Authenticate did not return last (renewed by another request, say).
	for _, h := range f.Identity(grace) {
		if h[0] == HeaderUser && h[1] != "grace@contoso.com" {
			t.Errorf("another session got %s = %q", h[0], h[1])
		}
	}
}

func TestNewSessionUsername(t *testing.T) {
	f, _ := newFlow(t, "")
	for _, tc := range []struct{ claims, want string }{
		{`{"preferred_username":"p","upn":"u","email":"e"}`, "p"},
		{`{"upn":"u","email":"e"}`, "u"},
		{`{"email":"e"}`, "e"},
	} {
		c := &jwks.Claims{}
		_ = c.UnmarshalJSON([]byte(tc.claims))
		if s, err := f.NewSession(c, nil, "n"); err != nil || s.Username != tc.want {
			t.Errorf("%s: %+v %v", tc.claims, s, err)
		}
	}
	c := &jwks.Claims{}
	_ = c.UnmarshalJSON([]byte(`{"sub":"s"}`))
	s, _ := f.NewSession(c, &Tokens{AccessToken: "at", RefreshToken: "rt", ExpiresIn: time.Hour}, "n-1")
	if !s.Expires.Equal(testNow.Add(8*time.Hour)) || !s.AccessExpires.Equal(testNow.Add(time.Hour)) || s.RefreshToken != "rt" ||
		s.Nonce != "n-1" || len(s.ID) != 22 {
		t.Errorf("session %+v", s)
	}
	// The access token goes in the cookie only when something will use it.
	if s.AccessToken != "" {
		t.Errorf("a session kept an access token nothing uses: %q", s.AccessToken)
	}
	for _, uses := range []string{`,"forward_access_token":"x-access-token"`, `,"obo_scopes":["api://downstream/.default"],"obo_header":"x-obo"`} {
		g, _ := newFlow(t, uses)
		if s, _ := g.NewSession(c, &Tokens{AccessToken: "at", ExpiresIn: time.Hour}, "n"); s.AccessToken != "at" {
			t.Errorf("with %s the session has no access token", uses)
		}
	}
	other, _ := f.NewSession(c, nil, "n")
	if other.ID == s.ID {
		t.Error("two sessions share an id")
	}
}

func TestLogout(t *testing.T) {
	f, _ := newFlow(t, "")
	b := signedIn(t, f, testSession(200))
	signIn(t, f, b, "/") // a sign-in in progress too
	s, _ := f.Authenticate(b.request("/"))
	resp := f.Logout(b.request("/.auth/logout"), testDiscovery, s)
	q := mustQuery(t, header(resp, "location"))
	if !strings.HasPrefix(header(resp, "location"), testDiscovery.EndSessionEndpoint+"?") ||
		q.Get("post_logout_redirect_uri") != "https://app.contoso.com/.auth/signed-out" || q.Get("logout_hint") != "hint-1" {
		t.Errorf("location %q", header(resp, "location"))
	}
	b.take(t, resp)
	if len(b.jar) != 0 {
		t.Errorf("cookies left after logout: %v", b.jar)
	}
	noEndSession := *testDiscovery
	noEndSession.EndSessionEndpoint = ""
	if loc := header(f.Logout(b.request("/"), &noEndSession, nil), "location"); loc != "https://app.contoso.com/.auth/signed-out" {
		t.Errorf("without end-session endpoint: %q", loc)
	}
	other, _ := newFlow(t, `,"post_logout_redirect_uri":"https://www.contoso.com/goodbye"`)
	if q := mustQuery(t, header(other.Logout(b.request("/.auth/logout"), testDiscovery, nil), "location")); q.Get("post_logout_redirect_uri") != "https://www.contoso.com/goodbye" {
		t.Errorf("configured post_logout_redirect_uri: %v", q)
	}
}

// After sign-out the browser lands on a page that says so (no session needed, nothing of
// the request in it), with a way to sign in again; a program gets the same as JSON.
func TestSignedOutPage(t *testing.T) {
	f, _ := newFlow(t, "")
	if got := f.Route(&Request{Path: "/.auth/signed-out?x=<script>"}); got != RouteSignedOut {
		t.Fatalf("route %v", got)
	}
	page := f.SignedOut(&Request{Path: "/.auth/signed-out?x=<script>", Accept: "text/html"})
	body := string(page.Body)
	if page.Status != 200 || !strings.Contains(body, "You are signed out") || !strings.Contains(body, `<a href="/.auth/login?rd=%2F">Sign in again</a>`) ||
		strings.Contains(body, "script") || header(page, "cache-control") != "no-store" {
		t.Errorf("page %d %s", page.Status, body)
	}
	js := f.SignedOut(&Request{Path: "/.auth/signed-out", Accept: "application/json"})
	if js.Status != 200 || string(js.Body) != `{"signed_out":true,"sign_in":"/.auth/login?rd=%2F"}` {
		t.Errorf("JSON %d %s", js.Status, js.Body)
	}
}

// Security rule: non-browser requests get 401 with WWW-Authenticate, not a redirect.
func TestSignInRequiredForPrograms(t *testing.T) {
	f, _ := newFlow(t, "")
	for _, tc := range []struct {
		accept, xrw string
		browser     bool
	}{
		{"text/html,application/xhtml+xml", "", true},
		{"application/json", "", false},
		{"*/*", "", false},
		{"text/html", "XMLHttpRequest", false},
		{"", "", false},
	} {
		r := &Request{Accept: tc.accept, RequestedWith: tc.xrw, Authority: "app.contoso.com"}
		if r.IsBrowser() != tc.browser {
			t.Errorf("accept %q xrw %q: browser %v", tc.accept, tc.xrw, r.IsBrowser())
		}
		if tc.browser {
			continue
		}
		resp := f.SignInRequired(r, "req-1")
		if resp.Status != 401 || !strings.HasPrefix(header(resp, "www-authenticate"), `Bearer realm="app.contoso.com"`) || header(resp, "content-type") != "application/json" {
			t.Errorf("%+v", resp)
		}
	}
}

// A signed-out browser's own request for /favicon.ico gets an empty 204, not a 401 for
// its console; anything else there, and any other image, is still refused.
func TestSignedOutFavicon(t *testing.T) {
	f, _ := newFlow(t, "")
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/favicon.ico", 204},
		{"HEAD", "/favicon.ico", 204},
		{"GET", "/favicon.ico?v=2", 204},
		{"POST", "/favicon.ico", 401},
		{"GET", "/static/favicon.ico", 401},
		{"GET", "/logo.png", 401},
	} {
		r := &Request{Method: tc.method, Path: tc.path, Accept: "image/avif,image/webp,*/*", Authority: "app.contoso.com"}
		resp := f.SignInRequired(r, "req-1")
		if resp.Status != tc.want || (tc.want == 204 && (len(resp.Body) != 0 || header(resp, "cache-control") != "no-store")) {
			t.Errorf("%s %s: %+v, want %d", tc.method, tc.path, resp, tc.want)
		}
	}
}

func TestExplain(t *testing.T) {
	f, _ := newFlow(t, "")
	for _, tc := range []struct {
		err    error
		status int
		code   string
		level  Level // an operator's: info for ordinary use, warn for attacks and misconfiguration, error for outages
	}{
		{&OAuthError{Kind: ErrSignInRefused, Code: "access_denied"}, 403, "sign_in_refused", LevelInfo},
		{&OAuthError{Kind: ErrTokenEndpoint, Code: "invalid_grant"}, 400, "sign_in_expired", LevelInfo},
		{&OAuthError{Kind: ErrTokenEndpoint, Code: "invalid_client"}, 502, "token_endpoint_refused", LevelWarn},
		{fmt.Errorf("%w: reload", ErrStateUsed), 400, "sign_in_used", LevelInfo},
		{ErrStateMissing, 400, "sign_in_state_missing", LevelInfo},
		{ErrStateExpired, 400, "sign_in_expired", LevelInfo},
		{fmt.Errorf("x: %w", ErrStateInvalid), 400, "sign_in_invalid", LevelWarn},
		{fmt.Errorf("%w: kid", jwks.ErrUnknownKey), 502, "signing_key_unknown", LevelWarn},
		{jwks.ErrTenant, 403, "tenant_not_allowed", LevelInfo},
		{jwks.ErrNonce, 401, "id_token_invalid", LevelWarn},
		{jwks.ErrSignature, 401, "id_token_invalid", LevelWarn},
		{fmt.Errorf("%w: down", ErrIdPUnavailable), 503, "idp_unavailable", LevelError},
		{ErrIdPResponse, 502, "idp_bad_response", LevelError},
		{fmt.Errorf("%w: 403", ErrUserRefused), 403, "user_refused", LevelInfo},
		{fmt.Errorf("%w: check", ErrUserSyncSecret), 403, "user_sync_misconfigured", LevelWarn},
		{fmt.Errorf("%w: 503", ErrUserSyncUnavailable), 503, "user_directory_unavailable", LevelError},
		{fmt.Errorf("%w: %w", ErrDownstreamToken, &OAuthError{Kind: ErrTokenEndpoint, Code: "invalid_grant"}), 502, "downstream_token_unavailable", LevelWarn},
		{errors.New("surprise"), 500, "internal_error", LevelError},
	} {
		if p := f.Explain(tc.err); p.Status != tc.status || p.Code != tc.code || p.Level != tc.level {
			t.Errorf("%v: %+v", tc.err, p)
		}
	}
}

func TestErrorResponseEscapes(t *testing.T) {
	r := ErrorResponse(&Request{Accept: "text/html"}, 400, "c", "<script>x</script>", `"><img>`)
	if strings.Contains(string(r.Body), "<script>") || strings.Contains(string(r.Body), "<img>") {
		t.Errorf("unescaped: %s", r.Body)
	}
}

func TestParseDiscovery(t *testing.T) {
	f, _ := newFlow(t, "")
	valid := `{"issuer":"https://login.microsoftonline.com/t/v2.0","authorization_endpoint":"https://login.microsoftonline.com/t/oauth2/v2.0/authorize",
		"token_endpoint":"https://login.microsoftonline.com/t/oauth2/v2.0/token","jwks_uri":"https://login.microsoftonline.com/t/discovery/v2.0/keys",
		"end_session_endpoint":"https://login.microsoftonline.com/t/oauth2/v2.0/logout"}`
	if d, err := ParseDiscovery(f.cfg, 200, []byte(valid)); err != nil || d.EndSessionEndpoint == "" || must(d.KeysRequest())(t).Path != "/t/discovery/v2.0/keys" {
		t.Fatalf("%+v %v", d, err)
	}
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"unavailable", 503, "", ErrIdPUnavailable},
		{"tenant not found", 400, `{"error":"invalid_tenant"}`, ErrIdPResponse},
		{"no jwks_uri", 200, strings.Replace(valid, `"jwks_uri"`, `"x"`, 1), ErrIdPResponse},
		{"token endpoint elsewhere", 200, strings.Replace(valid, "https://login.microsoftonline.com/t/oauth2/v2.0/token", "https://evil.example/token", 1), ErrIdPResponse},
		{"not JSON", 200, "<html>", ErrIdPResponse},
	} {
		if _, err := ParseDiscovery(f.cfg, tc.status, []byte(tc.body)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func FuzzParseCallbackQuery(f *testing.F) {
	f.Add("code=abc&state=def")
	f.Add("error=access_denied&error_description=AADSTS%20x")
	f.Add("state=a&state=b")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := parseCallbackQuery(raw)
		if err != nil {
			if !errors.Is(err, ErrCallback) {
				t.Fatalf("error %v is not ErrCallback", err)
			}
			return
		}
		if len(q.Code)+len(q.State) > len(raw) {
			t.Fatalf("parsed more than given")
		}
	})
}

func TestOpenedSessionsAreCachedAndBounded(t *testing.T) {
	f, clk := newFlow(t, "")
	b := signedIn(t, f, testSession(1))
	first, err := f.Authenticate(b.request("/"))
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := f.Authenticate(b.request("/")); again != first {
		t.Error("the same cookie was opened twice")
	}
	// A cookie whose tail matches a cached one but whose text differs is opened, and
	// refused, on its own.
	v := b.jar["__Host-entra-auth"]
	forged := map[string]string{"__Host-entra-auth": flipFirst(v)}
	if _, err := f.Authenticate(&Request{Cookies: jarOf(forged)}); !errors.Is(err, ErrSessionInvalid) {
		t.Fatalf("a cookie sharing the cached tail: %v", err)
	}
	clk.t = testNow.Add(9 * time.Hour)
	if _, err := f.Authenticate(b.request("/")); !errors.Is(err, ErrSessionExpired) {
		t.Fatalf("a cached session outlived its expiry: %v", err)
	}
	if f.opened.Len() != 0 {
		t.Errorf("the expired session stayed cached")
	}
	clk.t = testNow
	for i := 0; i < maxOpenedSessions+50; i++ {
		s := testSession(0)
		s.Subject = fmt.Sprint("sub-", i)
		f.remember(fmt.Sprintf("sealed-%030d", i), s)
	}
	if f.opened.Len() > maxOpenedSessions {
		t.Errorf("cache grew to %d", f.opened.Len())
	}
}

func flipFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

// must returns a request builder's request, failing tb on its error.
func must(r *HTTPRequest, err error) func(tb testing.TB) *HTTPRequest {
	return func(tb testing.TB) *HTTPRequest {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return r
	}
}

func TestCallbackVisitedAgain(t *testing.T) {
	f, _ := newFlow(t, "")
	if got := CallbackState(&Request{Path: "/.auth/callback?code=c&state=abc"}); got != "abc" {
		t.Errorf("CallbackState = %q", got)
	}
	for _, path := range []string{"/.auth/callback", "/.auth/callback?code=c", "/.auth/callback?state=a&state=b"} {
		if got := CallbackState(&Request{Path: path}); got != "" {
			t.Errorf("CallbackState(%q) = %q, want none", path, got)
		}
	}
	if r := f.AlreadySignedIn(nil); r.Status != 302 || header(r, "location") != "/" || header(r, "set-cookie") != "" {
		t.Errorf("without the sign-in cookie: %+v", r)
	}
	cb := &Callback{SignIn: &session.SignIn{ReturnTo: "/reports?q=1"}, cookie: "__Host-entra-auth-signin-x"}
	r := f.AlreadySignedIn(cb)
	if r.Status != 302 || header(r, "location") != "/reports?q=1" ||
		!strings.HasPrefix(header(r, "set-cookie"), "__Host-entra-auth-signin-x=;") {
		t.Errorf("with the sign-in cookie: %+v", r)
	}
	cb.SignIn.ReturnTo = "//evil.example/"
	if r := f.AlreadySignedIn(cb); header(r, "location") != "/" {
		t.Errorf("an unsafe return path: %q", header(r, "location"))
	}
}
