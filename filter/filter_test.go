package filter

import (
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/flow"
	"github.com/entra-auth/entra-auth/internal/entratest"
	"github.com/entra-auth/entra-auth/internal/sharedstate"
	"github.com/entra-auth/entra-auth/session"
)

// These tests run the filter natively on the SDK's emulator. The emulator resumes streams
// only from their own callbacks, so here the provider's metadata is loaded before the
// requests; waiting for it is tested end to end under the Envoy-like host (e2e/).

const (
	tenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	clientID = "11111111-2222-3333-4444-555555555555"
	issuer   = "https://login.microsoftonline.com/" + tenant + "/v2.0"
)

var (
	cookieSecret = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	testConfig   = `{"tenant_id":"` + tenant + `","client_id":"` + clientID + `","client_secret":"s3cret",
		"idp_cluster":"entra","cookie_secret":"` + cookieSecret + `","skip_paths":["/healthz"]}`
)

func newHost(t *testing.T, config string) proxytest.HostEmulator {
	t.Helper()
	opt := proxytest.NewEmulatorOption().WithVMContext(NewVMContext()).WithPluginConfiguration([]byte(config))
	host, reset := proxytest.NewHostEmulator(opt)
	t.Cleanup(reset)
	return host
}

func discoveryJSON() []byte {
	base := "https://login.microsoftonline.com/" + tenant
	b, _ := json.Marshal(map[string]string{
		"issuer": issuer, "authorization_endpoint": base + "/oauth2/v2.0/authorize",
		"token_endpoint": base + "/oauth2/v2.0/token", "jwks_uri": base + "/discovery/v2.0/keys",
		"end_session_endpoint": base + "/oauth2/v2.0/logout",
	})
	return b
}

// started returns a host whose plugin started and loaded the provider's metadata.
func started(t *testing.T) proxytest.HostEmulator {
	t.Helper()
	return startedWith(t, testConfig)
}

// startedWith is started with another configuration.
func startedWith(t *testing.T, config string) proxytest.HostEmulator {
	t.Helper()
	host := newHost(t, config)
	if host.StartPlugin() != types.OnPluginStartStatusOK {
		t.Fatalf("plugin did not start: %v", host.GetCriticalLogs())
	}
	host.Tick() // the first tick fetches the metadata
	answer := func(wantPath string, body []byte) {
		calls := host.GetCalloutAttributesFromContext(proxytest.PluginContextID)
		last := calls[len(calls)-1]
		if last.Upstream != "entra" || !strings.HasSuffix(headerOf(last.Headers, ":path"), wantPath) {
			t.Fatalf("callout %s %v, want %s", last.Upstream, last.Headers, wantPath)
		}
		host.CallOnHttpCallResponse(last.CalloutID, [][2]string{{":status", "200"}}, nil, body)
	}
	answer("/v2.0/.well-known/openid-configuration", discoveryJSON())
	answer("/discovery/v2.0/keys", entratest.JWKS(t, entratest.JWK("key-1", &entratest.RSAKey(t, "signing").PublicKey, "")))
	return host
}

func headerOf(h [][2]string, name string) string {
	for _, p := range h {
		if p[0] == name {
			return p[1]
		}
	}
	return ""
}

func request(path string, extra ...[2]string) [][2]string {
	return append([][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "app.contoso.com"}, {":path", path}, {"x-request-id", "req-1"}}, extra...)
}

var browserAccept = [2]string{"accept", "text/html,application/xhtml+xml"}

// Envoy starts a plugin first in a canary VM that it destroys at once, cancelling its
// calls: a plugin that fetched at start, taking the shared fetch lease, would leave the
// lease with a VM that is gone. The fetch waits for the first tick, which a canary never
// gets.
func TestPluginStartMakesNoCall(t *testing.T) {
	host := newHost(t, testConfig)
	if host.StartPlugin() != types.OnPluginStartStatusOK {
		t.Fatalf("plugin did not start: %v", host.GetCriticalLogs())
	}
	if calls := host.GetCalloutAttributesFromContext(proxytest.PluginContextID); len(calls) != 0 {
		t.Fatalf("plugin start dispatched %d calls", len(calls))
	}
	lease := sharedstate.KeysFor("https://login.microsoftonline.com/" + tenant + "/v2.0/.well-known/openid-configuration").Lease
	if v, _, err := proxywasm.GetSharedData(lease); err != nil || len(v) != 0 {
		t.Errorf("plugin start took the fetch lease, or did not make its key: %q, %v", v, err)
	}
	for _, key := range []string{sharedstate.UsedStatesKey, sharedstate.UnknownKidKey, sharedstate.SlotKey("any session")} {
		if _, _, err := proxywasm.GetSharedData(key); err != nil {
			t.Errorf("plugin start did not make %s: %v", key, err)
		}
	}
	host.Tick()
	if calls := host.GetCalloutAttributesFromContext(proxytest.PluginContextID); len(calls) != 1 {
		t.Fatalf("the first tick dispatched %d calls, want the discovery fetch", len(calls))
	}
	now := time.Now()
	if err := sharedstate.TakeLease(hostStore{}, lease, "another VM", now, now.Add(time.Minute)); !errors.Is(err, sharedstate.ErrTaken) {
		t.Errorf("the first tick fetched without the lease: another VM's take = %v", err)
	}
}

func TestPluginStartRefusesBadConfiguration(t *testing.T) {
	host := newHost(t, `{"tenant_id": "common", "tenantid": "x"}`)
	if host.StartPlugin() != types.OnPluginStartStatusFailed {
		t.Fatal("started with a bad configuration")
	}
	logs := strings.Join(host.GetCriticalLogs(), "\n")
	for _, want := range []string{`"tenantid": unknown key (did you mean "tenant_id"?)`, `"client_id": is required`, `"idp_cluster": is required`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestSignedOutBrowserIsSentToSignIn(t *testing.T) {
	host := started(t)
	id := host.InitializeHttpContext()
	if a := host.CallOnRequestHeaders(id, request("/app?x=1", browserAccept), true); a != types.ActionPause {
		t.Fatalf("action %v", a)
	}
	resp := host.GetSentLocalResponse(id)
	loc, _ := url.Parse(headerOf(resp.Headers, "location"))
	if resp.StatusCode != 302 || loc.Host != "login.microsoftonline.com" || loc.Query().Get("code_challenge_method") != "S256" {
		t.Fatalf("%d %v", resp.StatusCode, resp.Headers)
	}
	if c := headerOf(resp.Headers, "set-cookie"); !strings.HasPrefix(c, "__Host-entra-auth-signin-") {
		t.Errorf("sign-in cookie %q", c)
	}
}

// Security rule: programs get 401 with WWW-Authenticate, not a redirect.
func TestSignedOutProgramGets401(t *testing.T) {
	host := started(t)
	for name, headers := range map[string][][2]string{
		"json client": {{"accept", "application/json"}},
		"no accept":   nil,
		"XHR":         {browserAccept, {"x-requested-with", "XMLHttpRequest"}},
	} {
		id := host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, request("/api/items", headers...), true)
		resp := host.GetSentLocalResponse(id)
		if resp.StatusCode != 401 || !strings.HasPrefix(headerOf(resp.Headers, "www-authenticate"), "Bearer realm=") || headerOf(resp.Headers, "location") != "" {
			t.Errorf("%s: %d %v", name, resp.StatusCode, resp.Headers)
		}
	}
}

// signIn runs a whole sign-in on the emulator and returns the session cookies.
func signIn(t *testing.T, host proxytest.HostEmulator) [][2]string {
	t.Helper()
	cb := exchangeCode(t, host)
	done := host.GetSentLocalResponse(cb)
	if done == nil || done.StatusCode != 302 || headerOf(done.Headers, "location") != "/app" {
		t.Fatalf("completion %+v; logs %v %v", done, host.GetWarnLogs(), host.GetErrorLogs())
	}
	return sessionCookies(done)
}

// exchangeCode starts a sign-in at /app, calls back, and answers the token request with
// a signed ID token; it returns the callback's stream.
func exchangeCode(t *testing.T, host proxytest.HostEmulator) (callback uint32) {
	t.Helper()
	return exchangeCodeWith(t, host, nil)
}

// exchangeCodeWith is exchangeCode with more fields in the token answer (a refresh token,
// say).
func exchangeCodeWith(t *testing.T, host proxytest.HostEmulator, more map[string]any) (callback uint32) {
	t.Helper()
	return exchangeCodeAnswering(t, host, func(nonce string) map[string]any {
		answer := map[string]any{"id_token": idToken(t, "key-1", entratest.RSAKey(t, "signing"), nonce, nil),
			"access_token": "at", "token_type": "Bearer", "expires_in": 3599}
		maps.Copy(answer, more)
		return answer
	})
}

// exchangeCodeAnswering starts a sign-in at /app, calls back, and answers the token
// request with what answer gives for the sign-in's nonce; it returns the callback's stream.
func exchangeCodeAnswering(t *testing.T, host proxytest.HostEmulator, answer func(nonce string) map[string]any) (callback uint32) {
	t.Helper()
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/app", browserAccept), true)
	start := host.GetSentLocalResponse(id)
	loc, _ := url.Parse(headerOf(start.Headers, "location"))
	q := loc.Query()
	signInCookie, _, _ := strings.Cut(headerOf(start.Headers, "set-cookie"), ";")

	cb := host.InitializeHttpContext()
	host.CallOnRequestHeaders(cb, request("/.auth/callback?code=the-code&state="+url.QueryEscape(q.Get("state")), browserAccept, [2]string{"cookie", signInCookie}), true)
	calls := host.GetCalloutAttributesFromContext(cb)
	if len(calls) != 1 || headerOf(calls[0].Headers, ":method") != "POST" {
		t.Fatalf("token request %+v (reply %+v)", calls, host.GetSentLocalResponse(cb))
	}
	form, _ := url.ParseQuery(string(calls[0].Body))
	if form.Get("code") != "the-code" || form.Get("code_verifier") == "" || form.Get("client_secret") != "s3cret" {
		t.Fatalf("token form %v", form)
	}
	tokens, _ := json.Marshal(answer(q.Get("nonce")))
	host.CallOnHttpCallResponse(calls[0].CalloutID, [][2]string{{":status", "200"}}, nil, tokens)
	return cb
}

// idToken is Ada's ID token for the sign-in with nonce, signed with key under kid, its
// claims changed by change.
func idToken(t *testing.T, kid string, key *rsa.PrivateKey, nonce string, change func(jwt.MapClaims)) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{
		"aud": clientID, "iss": issuer, "tid": tenant, "sub": "sub-1", "oid": "oid-1", "nonce": nonce,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "ver": "2.0",
		"preferred_username": "ada@contoso.com", "name": "Ada Lovelace", "groups": []string{"g1", "g2"},
	}
	if change != nil {
		change(claims)
	}
	token := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	token.Header["kid"] = kid
	signed, err := token.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// clearsSession reports whether response headers clear the session cookie.
func clearsSession(headers [][2]string) bool {
	for _, h := range headers {
		if h[0] == "set-cookie" && strings.HasPrefix(h[1], "__Host-entra-auth=") && strings.Contains(h[1], "Max-Age=0") {
			return true
		}
	}
	return false
}

// sessionCookies turns a response's Set-Cookie headers into the Cookie headers a
// browser would send next.
func sessionCookies(r *proxytest.LocalHttpResponse) [][2]string {
	var cookies [][2]string
	for _, h := range r.Headers {
		if h[0] == "set-cookie" && !strings.Contains(h[1], "Max-Age=0") {
			nv, _, _ := strings.Cut(h[1], ";")
			cookies = append(cookies, [2]string{"cookie", nv})
		}
	}
	return cookies
}

func TestSignInThenSignedInRequest(t *testing.T) {
	host := started(t)
	cookies := signIn(t, host)
	id := host.InitializeHttpContext()
	forged := [2]string{"x-auth-request-user", "admin@contoso.com"}
	if a := host.CallOnRequestHeaders(id, request("/app", append(cookies, forged)...), true); a != types.ActionContinue {
		t.Fatalf("signed-in request: %v, reply %+v", a, host.GetSentLocalResponse(id))
	}
	got := map[string][]string{}
	for _, h := range host.GetCurrentRequestHeaders(id) {
		got[h[0]] = append(got[h[0]], h[1])
	}
	for name, want := range map[string]string{
		"x-auth-request-user": "ada@contoso.com", "x-auth-request-name": "Ada Lovelace",
		"x-auth-request-oid": "oid-1", "x-auth-request-tid": tenant, "x-auth-request-groups": "g1,g2",
	} {
		if len(got[name]) != 1 || got[name][0] != want {
			t.Errorf("%s = %v, want [%s]", name, got[name], want)
		}
	}
}

// Security rule: client-sent x-auth-request-* headers are removed on every request,
// authenticated or not.
func TestForgedIdentityHeadersAreRemovedOnEveryRoute(t *testing.T) {
	host := started(t)
	forged := [][2]string{{"x-auth-request-user", "admin"}, {"X-Auth-Request-Groups", "admins"}, {"x-auth-request-user-id", "1"}}
	for _, path := range []string{"/healthz", "/app", "/.auth/me", "/.auth/callback?code=x&state=y"} {
		id := host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, request(path, forged...), true)
		for _, h := range host.GetCurrentRequestHeaders(id) {
			if strings.HasPrefix(strings.ToLower(h[0]), "x-auth-request-") {
				t.Errorf("%s: %s survived", path, h[0])
			}
		}
	}
}

// A body answered Continue would release headers the filter paused: the filter holds
// every body until it decides to pass the request.
func TestBodyOfAnUnauthenticatedRequestIsHeld(t *testing.T) {
	host := started(t)
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/api/upload", [2]string{"accept", "application/json"}), false)
	if a := host.CallOnRequestBody(id, []byte("payload"), false); a != types.ActionPause {
		t.Fatalf("body of an unauthenticated request: %v", a)
	}
	if a := host.CallOnRequestTrailers(id, [][2]string{{"grpc-status", "0"}}); a != types.ActionPause {
		t.Fatalf("trailers of an unauthenticated request: %v", a)
	}
	skip := host.InitializeHttpContext()
	host.CallOnRequestHeaders(skip, request("/healthz"), false)
	if a := host.CallOnRequestBody(skip, []byte("payload"), false); a != types.ActionContinue {
		t.Fatalf("body of a passed request: %v", a)
	}
	if a := host.CallOnRequestTrailers(skip, [][2]string{{"grpc-status", "0"}}); a != types.ActionContinue {
		t.Fatalf("trailers of a passed request: %v", a)
	}
}

func TestMe(t *testing.T) {
	host := started(t)
	id := host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/.auth/me"), true)
	if r := host.GetSentLocalResponse(id); r.StatusCode != 401 {
		t.Fatalf("signed out: %d", r.StatusCode)
	}
	cookies := signIn(t, host)
	id = host.InitializeHttpContext()
	host.CallOnRequestHeaders(id, request("/.auth/me", cookies...), true)
	r := host.GetSentLocalResponse(id)
	var me map[string]any
	if err := json.Unmarshal(r.Data, &me); err != nil || r.StatusCode != 200 || me["oid"] != "oid-1" || me["preferred_username"] != "ada@contoso.com" {
		t.Fatalf("%d %s", r.StatusCode, r.Data)
	}
}

// A panic in a callback is recovered: the stream gets a 500 page with its request id,
// the panic is counted, and the next request is served. (A plugin that never started
// has no flow, so reading a request panics.)
func TestPanicInACallbackIsAnsweredNotFatal(t *testing.T) {
	host := newHost(t, testConfig) // not started
	id := host.InitializeHttpContext()
	if a := host.CallOnRequestHeaders(id, request("/app", browserAccept), true); a != types.ActionPause {
		t.Fatalf("action %v, want the request held", a)
	}
	resp := host.GetSentLocalResponse(id)
	if resp == nil || resp.StatusCode != 500 || !strings.Contains(string(resp.Data), "req-1") {
		t.Fatalf("local response %+v, want a 500 page naming the request id", resp)
	}
	if n, err := host.GetCounterMetric("entra_auth_panics"); err != nil || n != 1 {
		t.Errorf("entra_auth_panics = %d, %v; want 1", n, err)
	}
	logs := strings.Join(host.GetCriticalLogs(), "\n")
	if !strings.Contains(logs, "recovered from a panic in OnHttpRequestHeaders") || !strings.Contains(logs, "goroutine") {
		t.Errorf("no panic with its stack in the log:\n%s", logs)
	}
}

// The single-use record of sign-in states fails closed: a state already recorded is a
// replay, and a record that cannot be read (here: never created) refuses the callback
// rather than letting it go ahead unrecorded.
func TestUsedStatesFailClosed(t *testing.T) {
	now := time.Now()
	cb := &flow.Callback{Code: "c", SignIn: &session.SignIn{State: "state-1", Expires: now.Add(time.Minute)}}

	newHost(t, testConfig) // no plugin start: the record was never created
	p := (&vmContext{}).NewPluginContext(1).(*plugin)
	if err := p.markStateUsed(cb, now); !errors.Is(err, flow.ErrSharedState) {
		t.Fatalf("without the record: %v, want ErrSharedState", err)
	}

	if err := sharedstate.Create(p.shared, sharedstate.UsedStatesKey); err != nil {
		t.Fatal(err)
	}
	if err := p.markStateUsed(cb, now); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := p.markStateUsed(cb, now); !errors.Is(err, flow.ErrStateUsed) {
		t.Fatalf("second use: %v, want a replay (ErrStateUsed)", err)
	}
	other := &flow.Callback{Code: "c", SignIn: &session.SignIn{State: "state-2", Expires: now.Add(time.Minute)}}
	if err := p.markStateUsed(other, now); err != nil {
		t.Fatalf("another sign-in: %v", err)
	}
}

// What only an attack or a broken client sends is refused with a warning naming the
// request and the reason: an operator's logs at warning level show probing.
func TestProbingIsWarned(t *testing.T) {
	host := started(t)
	for _, tc := range []struct {
		name    string
		headers [][2]string
		inLog   string
	}{
		{"a double-encoded dot segment", request("/healthz/%252e%252e/admin"), "path"},
		{"two credentials", request("/api", [2]string{"authorization", "Bearer a"}, [2]string{"authorization", "Bearer b"}), "credential"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warns := len(host.GetWarnLogs())
			id := host.InitializeHttpContext()
			host.CallOnRequestHeaders(id, tc.headers, true)
			if r := host.GetSentLocalResponse(id); r == nil || r.StatusCode != 400 {
				t.Fatalf("reply %+v, want 400", r)
			}
			got := host.GetWarnLogs()[warns:]
			if len(got) != 1 || !strings.Contains(got[0], "request req-1: refused") || !strings.Contains(got[0], tc.inLog) {
				t.Errorf("warnings %q, want one naming the request and the %s", got, tc.inLog)
			}
		})
	}
}
