package e2e

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/e2e/envoyhost"
	"github.com/entra-auth/entra-auth/e2e/mockentra"
	"github.com/entra-auth/entra-auth/flow"
)

// inProcess is the module in the Envoy-like host inside the test process, with the mock
// Entra ID and an upstream: no runner process, so that benchmarks measure the filter.
type inProcess struct {
	host     *envoyhost.Host
	proxy    *httptest.Server
	mock     *mockentra.Server
	mockURL  string
	upstream *httptest.Server
}

func newInProcess(tb testing.TB, concurrency int, transport http.RoundTripper) *inProcess {
	tb.Helper()
	return newInProcessWith(tb, concurrency, transport, nil)
}

// newInProcessWith also merges more keys into the plugin configuration and gives the
// clusters and VM variables they need.
func newInProcessWith(tb testing.TB, concurrency int, transport http.RoundTripper, more *moreConfig) *inProcess {
	tb.Helper()
	onceAcrossPasses(tb) // in-process in wazero whatever -engine says
	mockOpts := mockentra.DemoOptions()
	if more != nil && more.tokenLifetime > 0 {
		mockOpts.TokenLifetime = more.tokenLifetime
	}
	if more != nil && more.clientCertificate != nil {
		mockOpts.Clients[0].Certificate = more.clientCertificate
	}
	m := mockentra.New(mockOpts)
	mockSrv := httptest.NewServer(m.Handler())
	tb.Cleanup(mockSrv.Close)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	tb.Cleanup(upstream.Close)
	settings := map[string]any{
		"authority": mockSrv.URL, "tenant_id": mockentra.DemoTenant, "client_id": mockentra.DemoClientID,
		"client_secret": mockentra.DemoClientSecret, "idp_cluster": "entra", "cookie_secret": newCookieSecret(),
		"skip_paths": []string{"/healthz"},
	}
	clusters := map[string]string{"entra": mockSrv.URL}
	var env map[string]string
	if more != nil {
		maps.Copy(settings, more.config)
		maps.DeleteFunc(settings, func(_ string, v any) bool { return v == nil })
		maps.Copy(clusters, more.clusters)
		env = more.env
	}
	config, _ := json.Marshal(settings)
	ctx := context.Background()
	host, err := envoyhost.New(ctx, envoyhost.Config{
		Module: readModule(tb), PluginConfiguration: config, Concurrency: concurrency, Env: env,
		Clusters: clusters, Upstream: upstream.URL, Transport: transport,
		CompilationCacheDir: compileCache, Log: func(envoyhost.Log) {}, LogLevel: envoyhost.LogWarn,
	})
	if err != nil {
		tb.Fatal(err)
	}
	proxy := httptest.NewUnstartedServer(host)
	proxy.Config.ConnContext = host.ConnContext
	proxy.Start()
	tb.Cleanup(func() {
		proxy.Close()
		host.Close(ctx)
	})
	return &inProcess{host: host, proxy: proxy, mock: m, mockURL: mockSrv.URL, upstream: upstream}
}

// moreConfig is configuration beyond the basic sign-in, with the clusters and VM
// environment variables it names.
type moreConfig struct {
	config        map[string]any
	clusters, env map[string]string
	// tokenLifetime, when set, is the mock's token lifetime; clientCertificate (DER) is
	// registered on the mock's client.
	tokenLifetime     time.Duration
	clientCertificate []byte
}

var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get requests url with a browser's Accept and the given cookie header.
func get(tb testing.TB, rawURL, cookie string) *http.Response {
	tb.Helper()
	headers := map[string]string{"Accept": "text/html"}
	if cookie != "" {
		headers["Cookie"] = cookie
	}
	return getWith(tb, rawURL, headers)
}

// getWithBearer requests url as an API client with a bearer token.
func getWithBearer(tb testing.TB, rawURL, token string) *http.Response {
	tb.Helper()
	return getWith(tb, rawURL, map[string]string{"Accept": "application/json", "Authorization": "Bearer " + token})
}

// getWith requests url with headers, without following redirects, and reads the body.
func getWith(tb testing.TB, rawURL string, headers map[string]string) *http.Response {
	tb.Helper()
	req, _ := http.NewRequest("GET", rawURL, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// cookieHeader turns a response's Set-Cookie values into a Cookie header (the cookies
// are Secure; over the plain HTTP of a benchmark, the header is set by hand).
func cookieHeader(resp *http.Response) string {
	var pairs []string
	for _, c := range resp.Header.Values("Set-Cookie") {
		if !strings.Contains(c, "Max-Age=0") {
			nv, _, _ := strings.Cut(c, ";")
			pairs = append(pairs, nv)
		}
	}
	return strings.Join(pairs, "; ")
}

// startSignIn returns the callback URL Entra sends the browser to and the sign-in cookie.
func (p *inProcess) startSignIn(tb testing.TB) (callback, cookie string) {
	tb.Helper()
	start := get(tb, p.proxy.URL+"/app", "")
	authorize, err := url.Parse(start.Header.Get("Location"))
	if err != nil || start.StatusCode != 302 {
		tb.Fatalf("sign-in start: %d", start.StatusCode)
	}
	q := authorize.Query()
	q.Set("mock_user", "ada@contoso.example")
	authorize.RawQuery = q.Encode()
	back := get(tb, authorize.String(), "")
	return back.Header.Get("Location"), cookieHeader(start)
}

// signIn returns the Cookie header of a signed-in browser.
func (p *inProcess) signIn(tb testing.TB) string {
	tb.Helper()
	callback, cookie := p.startSignIn(tb)
	done := get(tb, callback, cookie)
	if done.StatusCode != 302 {
		tb.Fatalf("callback: %d", done.StatusCode)
	}
	return cookieHeader(done)
}

// BenchmarkCompileModule measures what Envoy pays once per module: compiling the .wasm
// with wazero's compiler, without a compilation cache and with one already filled (as
// the runner's second start, or a worker after the first).
func BenchmarkCompileModule(b *testing.B) {
	module := readModule(b)
	ctx := context.Background()
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "no-cache", true: "cache"}[cached], func(b *testing.B) {
			config := func() wazero.RuntimeConfig { return wazero.NewRuntimeConfig() }
			if cached {
				cache, err := wazero.NewCompilationCacheWithDir(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer cache.Close(ctx)
				config = func() wazero.RuntimeConfig { return wazero.NewRuntimeConfig().WithCompilationCache(cache) }
				r := wazero.NewRuntimeWithConfig(ctx, config())
				if _, err := r.CompileModule(ctx, module); err != nil { // fill the cache
					b.Fatal(err)
				}
				r.Close(ctx)
			}
			for b.Loop() {
				r := wazero.NewRuntimeWithConfig(ctx, config())
				if _, err := r.CompileModule(ctx, module); err != nil {
					b.Fatal(err)
				}
				r.Close(ctx)
			}
			b.ReportMetric(float64(len(module))/(1<<20), "module-MiB")
		})
	}
}

// BenchmarkStartVM measures what each worker pays: instantiating the compiled module and
// running _initialize, proxy_on_vm_start and proxy_on_configure (compiled code from the
// cache, as it would be after the first worker), and shutting down.
func BenchmarkStartVM(b *testing.B) {
	module := readModule(b)
	config, _ := json.Marshal(map[string]any{"tenant_id": mockentra.DemoTenant, "client_id": mockentra.DemoClientID,
		"client_secret": "s", "idp_cluster": "entra", "cookie_secret": newCookieSecret()})
	ctx := context.Background()
	start := func() (*envoyhost.Host, error) {
		return envoyhost.New(ctx, envoyhost.Config{Module: module, CompilationCacheDir: compileCache,
			PluginConfiguration: config, Log: func(envoyhost.Log) {}})
	}
	if h, err := start(); err == nil { // fill the compilation cache
		h.Close(ctx)
	}
	for b.Loop() {
		h, err := start()
		if err != nil {
			b.Fatal(err)
		}
		h.Close(ctx)
	}
}

// BenchmarkRequest compares one request four ways: to the upstream alone; through a
// plain Go reverse proxy (the cost of the extra HTTP hop); through the filter on a
// skip_paths path (the filter's fixed cost: host, VM calls, header scan); and as a
// signed-in request through the filter (cookie opened, identity headers set).
// vm-µs/op is the time spent inside the module's callbacks per request: the filter's own
// cost in wazero, which is what Envoy would spend; the rest of the difference to the
// reverse proxy is this host's goroutine hand-offs, which Envoy's event loop does not have.
func BenchmarkRequest(b *testing.B) {
	p := newInProcess(b, 1, nil)
	cookie := p.signIn(b)
	upstreamURL, _ := url.Parse(p.upstream.URL)
	plain := httptest.NewServer(httputil.NewSingleHostReverseProxy(upstreamURL))
	defer plain.Close()

	for _, target := range []struct{ name, url, cookie string }{
		{"upstream-alone", p.upstream.URL + "/page", ""},
		{"reverse-proxy", plain.URL + "/page", ""},
		{"filter-skip-path", p.proxy.URL + "/healthz", ""},
		{"filter-signed-in", p.proxy.URL + "/page", cookie},
	} {
		b.Run(target.name, func(b *testing.B) {
			client := &http.Client{}
			req, _ := http.NewRequest("GET", target.url, nil)
			req.Header.Set("Accept", "text/html")
			if target.cookie != "" {
				req.Header.Set("Cookie", target.cookie)
			}
			b.ReportAllocs()
			vmBefore := p.host.VMTime()
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatal(resp.Status)
				}
			}
			if strings.HasPrefix(target.name, "filter") {
				b.ReportMetric(float64((p.host.VMTime()-vmBefore).Nanoseconds())/1e3/float64(b.N), "vm-µs/op")
			}
		})
	}
}

// BenchmarkCallback measures a whole callback in wazero: the token exchange answered by
// the mock, RS256 verification of the ID token, the session sealed into cookies; and the
// same with user_sync on, against the reference service (the usersync program, its own
// process, its SQLite database in a file) on loopback: the difference is what the
// call-out adds to a sign-in.
func BenchmarkCallback(b *testing.B) {
	for _, tc := range []struct {
		name                string
		userSync, assertion bool
	}{{"no-user-sync", false, false}, {"user-sync", true, false}, {"client-assertion", false, true}} {
		b.Run(tc.name, func(b *testing.B) {
			var more *moreConfig
			if tc.assertion {
				keyPEM, certPEM, der := clientCertificate(b, "client assertion")
				more = &moreConfig{
					config: map[string]any{"client_secret": nil,
						"client_assertion": map[string]any{"private_key_env": "ENTRA_CLIENT_KEY", "certificate_env": "ENTRA_CLIENT_CERT"}},
					env:               map[string]string{"ENTRA_CLIENT_KEY": keyPEM, "ENTRA_CLIENT_CERT": certPEM},
					clientCertificate: der,
				}
			}
			if tc.userSync {
				program, err := usersyncProgram()
				if err != nil {
					b.Fatal(err)
				}
				svc := startProcess(b, program, []string{"USER_SYNC_SECRET=" + syncSecret},
					"-listen", "127.0.0.1:0", "-db", filepath.Join(b.TempDir(), "users.db"))
				more = &moreConfig{
					config: map[string]any{"user_sync": map[string]any{"url": "http://users.internal/sync", "cluster": "users", "secret_env": "USER_SYNC_SECRET",
						"flags": map[string]any{"is_staff": map[string]any{"groups": []string{groupTwo}}}}},
					clusters: map[string]string{"users": "http://" + svc.addr},
					env:      map[string]string{"USER_SYNC_SECRET": syncSecret},
				}
			}
			p := newInProcessWith(b, 1, nil, more)
			var vm time.Duration
			for b.Loop() {
				b.StopTimer()
				callback, cookie := p.startSignIn(b)
				before := p.host.VMTime()
				b.StartTimer()
				done := get(b, callback, cookie)
				if done.StatusCode != 302 {
					b.Fatalf("callback: %d", done.StatusCode)
				}
				if tc.userSync && !strings.Contains(cookieHeader(done), "__Host-entra-auth=") {
					b.Fatal("no session after the user sync")
				}
				vm += p.host.VMTime() - before
			}
			b.ReportMetric(float64(vm.Nanoseconds())/1e3/float64(b.N), "vm-µs/op")
		})
	}
}

// BenchmarkSignedInRequestInVM runs requests through the host directly (no sockets, the
// upstream answered in memory), so that little else competes with the VM for the two
// cores: vm-µs/op is then close to the filter's CPU cost per request, all callbacks and
// host calls included. The cases: a skip_paths path (the fixed cost of any request through
// the filter); a signed-in browser whose session the VM opened before (the common path);
// one whose cookie the VM has not seen (the session decrypted and decoded: each request
// carries the same session sealed anew, as after a refresh in another worker); and a
// signed-out browser sent to sign in.
func BenchmarkSignedInRequestInVM(b *testing.B) {
	for _, tc := range []struct {
		name, path string
		signedIn   bool
		// fresh makes the cookie sealed anew for every request.
		fresh      bool
		wantStatus int
	}{
		{"skip-path", "/healthz", false, false, 200},
		{"signed-in", "/page", true, false, 200},
		{"signed-in-cache-miss", "/page", true, true, 200},
		{"signed-out-redirect", "/page", false, false, 302},
	} {
		b.Run(tc.name, func(b *testing.B) {
			secret := newCookieSecret()
			p := newInVM(b, &moreConfig{config: map[string]any{"cookie_secret": secret}})
			cookie := ""
			if tc.signedIn {
				cookie = p.signIn(b)
			}
			var reseal func() string
			if tc.fresh {
				reseal = resealer(b, secret, cookie)
			}
			var vm time.Duration
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("GET", tc.path, nil)
				req.Header.Set("Accept", "text/html")
				if tc.fresh {
					b.StopTimer() // stopping reads memory statistics: only when needed
					req.Header.Set("Cookie", reseal())
					b.StartTimer()
				} else if cookie != "" {
					req.Header.Set("Cookie", cookie)
				}
				rec := httptest.NewRecorder()
				before := p.host.VMTime()
				p.host.ServeHTTP(rec, req)
				vm += p.host.VMTime() - before
				if rec.Code != tc.wantStatus {
					b.Fatalf("%d, want %d", rec.Code, tc.wantStatus)
				}
			}
			b.ReportMetric(float64(vm.Nanoseconds())/1e3/float64(b.N), "vm-µs/op")
		})
	}
}

// resealer returns a function that seals the session in cookie anew each time, with the
// filter's own code run natively and the same cookie secret: the same session, cookie
// bytes the VM has never seen.
func resealer(tb testing.TB, secret, cookie string) func() string {
	cfg, err := config.Parse([]byte(`{"tenant_id":"`+mockentra.DemoTenant+`","client_id":"`+mockentra.DemoClientID+
		`","client_secret":"s","idp_cluster":"entra","cookie_secret":"`+secret+`"}`), func(string) (string, bool) { return "", false })
	if err != nil {
		tb.Fatal(err)
	}
	f, err := flow.New(cfg, rand.Reader, time.Now)
	if err != nil {
		tb.Fatal(err)
	}
	req := flow.NewRequest([][2]string{{":authority", "app.contoso.example"}, {":path", "/page"}, {"cookie", cookie}})
	sess, err := f.Authenticate(req)
	if err != nil {
		tb.Fatalf("the signed-in cookie does not open natively: %v", err)
	}
	return func() string {
		setCookies, err := f.SessionCookies(req, sess)
		if err != nil {
			tb.Fatal(err)
		}
		var pairs []string
		for _, c := range setCookies {
			if !strings.Contains(c, "Max-Age=0") {
				nv, _, _ := strings.Cut(c, ";")
				pairs = append(pairs, nv)
			}
		}
		return strings.Join(pairs, "; ")
	}
}

// BenchmarkHeaderMarshalling is a skip_paths request with more and more request headers:
// the filter reads them all across the ABI once (proxy_get_header_map_pairs: the host
// serializes them into memory the module allocates, the SDK splits them), so the growth of
// vm-µs/op with the count is the marshalling's cost per header.
func BenchmarkHeaderMarshalling(b *testing.B) {
	p := newInVM(b, nil)
	for _, extra := range []int{0, 16, 64} {
		b.Run(fmt.Sprintf("headers=%d", extra+4), func(b *testing.B) {
			req := httptest.NewRequest("GET", "/healthz", nil)
			req.Header.Set("Accept", "text/html")
			for i := range extra {
				req.Header.Set(fmt.Sprintf("X-Extra-%02d", i), strings.Repeat("v", 40))
			}
			before := p.host.VMTime()
			for b.Loop() {
				rec := httptest.NewRecorder()
				p.host.ServeHTTP(rec, req)
				if rec.Code != 200 {
					b.Fatalf("%d", rec.Code)
				}
			}
			b.ReportMetric(float64((p.host.VMTime()-before).Nanoseconds())/1e3/float64(b.N), "vm-µs/op")
		})
	}
}

// BenchmarkLinearMemory reports a VM's linear memory after 1,000 and after 100,000
// signed-in requests (each request also carries a forged identity header the filter
// removes). It does its 100,000 requests once, whatever b.N.
func BenchmarkLinearMemory(b *testing.B) {
	p := newInVM(b, nil)
	cookie := p.signIn(b)
	var after1k, after100k uint32
	for b.Loop() {
		if after100k == 0 {
			p.serveSignedIn(b, cookie, 1000)
			after1k = slices.Max(p.host.MemorySizes())
			p.serveSignedIn(b, cookie, 99_000)
			after100k = slices.Max(p.host.MemorySizes())
		}
	}
	b.ReportMetric(float64(after1k)/1024, "KiB-after-1k")
	b.ReportMetric(float64(after100k)/1024, "KiB-after-100k")
	b.ReportMetric((float64(after100k)-float64(after1k))/1024, "KiB-growth")
}

// BenchmarkRefresh is a signed-in request whose access token is due for renewal: the
// request waits for the refresh_token grant (answered by the mock on loopback), the RS256
// verification of the refreshed ID token in wazero, and the renewed session sealed into
// the response's cookies. refresh_before equals the token lifetime, so every session the
// benchmark carries is due.
func BenchmarkRefresh(b *testing.B) {
	p := newInProcessWith(b, 1, nil, &moreConfig{config: map[string]any{"refresh_before": "1h"}, tokenLifetime: time.Hour})
	cookie := p.signIn(b)
	var vm time.Duration
	for b.Loop() {
		before := p.host.VMTime()
		resp := get(b, p.proxy.URL+"/page", cookie)
		vm += p.host.VMTime() - before
		if resp.StatusCode != 200 {
			b.Fatalf("refreshing request: %d", resp.StatusCode)
		}
		renewed := cookieHeader(resp)
		if renewed == "" {
			b.Fatal("no renewed session")
		}
		cookie = renewed
	}
	b.ReportMetric(float64(vm.Nanoseconds())/1e3/float64(b.N), "vm-µs/op")
	if n := p.mock.RefreshRequests.Load(); n < int64(b.N) {
		b.Fatalf("%d refreshes for %d requests", n, b.N)
	}
}

// BenchmarkBearer is an API request with a bearer access token: a token the VM verified
// before (cache hit) and a new token each time (cache miss: RS256 in wazero), beside a
// signed-in request with a session cookie.
func BenchmarkBearer(b *testing.B) {
	p := newInProcessWith(b, 1, nil, &moreConfig{config: map[string]any{"api_audiences": apiAudiences}})
	mint := func() string {
		token, err := p.mock.MintAccessToken(mockentra.AccessToken{User: p.mock.Users()[0], Audience: mockentra.DemoClientID,
			Scopes: []string{"access_as_user"}, IssuerBase: p.mockURL})
		if err != nil {
			b.Fatal(err)
		}
		return token
	}
	for _, tc := range []struct {
		name string
		hit  bool
	}{{"cache-hit", true}, {"cache-miss", false}} {
		b.Run(tc.name, func(b *testing.B) {
			token := mint()
			var vm time.Duration
			for b.Loop() {
				if !tc.hit {
					b.StopTimer()
					token = mint()
					b.StartTimer()
				}
				before := p.host.VMTime()
				if resp := getWithBearer(b, p.proxy.URL+"/api/items", token); resp.StatusCode != 200 {
					b.Fatalf("bearer request: %d", resp.StatusCode)
				}
				vm += p.host.VMTime() - before
			}
			b.ReportMetric(float64(vm.Nanoseconds())/1e3/float64(b.N), "vm-µs/op")
		})
	}
}
