package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// A stack is what a deployment has, on loopback: the mock Entra ID, an application
// behind the filter (echoing what it receives), and the runner process serving HTTPS with
// the built module in front.
type stack struct {
	t        testing.TB
	mock     *mockentra.Server
	mockURL  string
	upstream *httptest.Server
	runner   *runner
	base     string // https://127.0.0.1:PORT
}

type stackOptions struct {
	// config overrides keys of the plugin configuration (nil values delete them).
	config      map[string]any
	mock        *mockentra.Options
	faults      mockentra.Faults
	concurrency int
	logLevel    string
	// clusters and env are more clusters the filter may call (mockCluster for the mock,
	// which also serves Microsoft Graph), and VM variables.
	clusters, env map[string]string
	// runnerArgs are more flags for the runner (a later -wasm replaces the module).
	runnerArgs []string
	// upstreamURL, when set, is the application instead of the echoing upstream.
	upstreamURL string
	// engine, when set, is the engine whatever -engine says (the V8 benchmarks'), and
	// nodeFlags are more flags for Node when the engine is V8.
	engine    string
	nodeFlags []string
}

// mockCluster, as a cluster's address, is the stack's mock Entra ID.
const mockCluster = "(mock)"

// tlsFiles are a self-signed certificate for 127.0.0.1, made once per test binary.
var tlsFiles struct {
	cert, key string
	pool      *x509.CertPool
}

func makeTLSFiles(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	tlsFiles.cert, tlsFiles.key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(tlsFiles.cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(tlsFiles.key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	cert, _ := x509.ParseCertificate(der)
	tlsFiles.pool = x509.NewCertPool()
	tlsFiles.pool.AddCert(cert)
	return nil
}

func newCookieSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	opts := mockentra.DemoOptions()
	if o.mock != nil {
		opts = *o.mock
	}
	m := mockentra.New(opts)
	m.SetFaults(o.faults)
	mockSrv := httptest.NewServer(m.Handler())
	t.Cleanup(mockSrv.Close)
	s := &stack{t: t, mock: m, mockURL: mockSrv.URL, upstream: echoUpstream(t)}

	config := map[string]any{
		"authority": mockSrv.URL, "tenant_id": mockentra.DemoTenant, "client_id": mockentra.DemoClientID,
		"client_secret_env": "ENTRA_CLIENT_SECRET", "idp_cluster": "entra", "cookie_secret": newCookieSecret(),
		"idp_timeout": "2s", "skip_paths": []string{"/healthz"},
	}
	for k, v := range o.config {
		if v == nil {
			delete(config, k)
		} else {
			config[k] = v
		}
	}
	raw, _ := json.Marshal(config)
	path := filepath.Join(t.TempDir(), "plugin.json")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	concurrency := o.concurrency
	if concurrency == 0 {
		concurrency = 2
	}
	level := o.logLevel
	if level == "" {
		level = "info"
	}
	upstream := s.upstream.URL
	if o.upstreamURL != "" {
		upstream = o.upstreamURL
	}
	args := []string{"-log-level", level, "-config", path, "-upstream", upstream, "-cluster", "entra=" + mockSrv.URL,
		"-env", "ENTRA_CLIENT_SECRET=" + mockentra.DemoClientSecret, "-concurrency", strconv.Itoa(concurrency),
		"-tls-cert", tlsFiles.cert, "-tls-key", tlsFiles.key}
	for name, u := range o.clusters {
		if u == mockCluster {
			u = mockSrv.URL
		}
		args = append(args, "-cluster", name+"="+u)
	}
	for k, v := range o.env {
		args = append(args, "-env", k+"="+v)
	}
	eng := *engine
	if o.engine != "" {
		eng = o.engine
	}
	switch eng {
	case "v8", "v8-tiered":
		s.runner = startV8Runner(t, eng, o.nodeFlags, append(args, o.runnerArgs...)...)
	case "wazero":
		s.runner = startRunner(t, append(args, o.runnerArgs...)...)
	default:
		t.Fatalf("-engine %q: want wazero, v8 or v8-tiered", eng)
	}
	s.base = "https://" + s.runner.addr
	return s
}

// browser is a client with a cookie jar that does not follow redirects on its own, so
// that tests see each step.
type browser struct {
	t      testing.TB
	s      *stack
	client *http.Client
	jar    *cookiejar.Jar
}

func (s *stack) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: s.t, s: s, jar: jar, client: &http.Client{
		Jar:           jar,
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tlsFiles.pool}},
	}}
}

// page is a response with its body read.
type page struct {
	status   int
	header   http.Header
	body     string
	location *url.URL
}

func (b *browser) do(method, rawURL string, headers ...string) *page {
	b.t.Helper()
	if strings.HasPrefix(rawURL, "/") {
		rawURL = b.s.base + rawURL
	}
	req, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	p := &page{status: resp.StatusCode, header: resp.Header, body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" {
		p.location, _ = resp.Request.URL.Parse(loc)
	}
	return p
}

func (b *browser) get(path string, headers ...string) *page { return b.do("GET", path, headers...) }

// signIn walks a browser through sign-in as user, from a protected path: the redirect to
// the mock's authorize endpoint, the pick of a user, and the callback. It returns the
// callback's answer (the redirect back to path on success).
func (b *browser) signIn(path, user string) *page {
	b.t.Helper()
	start := b.get(path)
	if start.status != 302 || start.location == nil || !strings.HasPrefix(start.location.String(), b.s.mockURL) {
		b.t.Fatalf("GET %s: %d %s, want a redirect to the mock", path, start.status, start.location)
	}
	return b.pickUser(start.location, user)
}

// callbackFor starts a sign-in at path and picks user at the mock, and returns the mock's
// answer: the redirect to the callback, not yet followed.
func (b *browser) callbackFor(path, user string) *page {
	b.t.Helper()
	start := b.get(path)
	q := start.location.Query()
	q.Set("mock_user", user)
	start.location.RawQuery = q.Encode()
	return b.get(start.location.String())
}

// pickUser signs in at the mock's authorize URL as user and follows Entra's redirect to
// the callback.
func (b *browser) pickUser(authorize *url.URL, user string) *page {
	b.t.Helper()
	q := authorize.Query()
	q.Set("mock_user", user)
	authorize.RawQuery = q.Encode()
	back := b.get(authorize.String())
	if back.status != 302 || back.location == nil || !strings.HasPrefix(back.location.String(), b.s.base+"/.auth/callback") {
		b.t.Fatalf("mock authorize: %d %s %s", back.status, back.location, back.body)
	}
	return b.get(back.location.String())
}

// cookies lists the names of the cookies the browser holds for the site.
func (b *browser) cookies() map[string]string {
	u, _ := url.Parse(b.s.base)
	out := map[string]string{}
	for _, c := range b.jar.Cookies(u) {
		out[c.Name] = c.Value
	}
	return out
}

// echoed decodes what the upstream received.
func (p *page) echoed(t *testing.T) seen {
	t.Helper()
	var s seen
	if err := json.Unmarshal([]byte(p.body), &s); err != nil {
		t.Fatalf("not the upstream's echo (status %d): %.300s", p.status, p.body)
	}
	return s
}

// baseURL is the site's address, parsed.
func (s *stack) baseURL() *url.URL {
	u, _ := url.Parse(s.base)
	return u
}
