package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// process is a program the tests started (the runner, the user-sync service), listening
// on addr.
type process struct {
	cmd    *exec.Cmd
	addr   string
	stderr *lockedBuffer
}

// runner is the wasmhost process.
type runner = process

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor reports whether the output comes to contain substr within a few seconds.
func (b *lockedBuffer) waitFor(substr string) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(b.String(), substr) {
			return true
		}
	}
	return false
}

// startRunner starts wasmhost with args and waits for its "listening on" line.
func startRunner(t testing.TB, args ...string) *runner {
	t.Helper()
	return startProcess(t, runnerFile, nil, append([]string{"-wasm", moduleFile, "-listen", "127.0.0.1:0"}, args...)...)
}

// startProcess starts a program that prints "listening on ADDR" once it serves, with env
// added to the environment, and stops it when the test ends.
func startProcess(t testing.TB, file string, env []string, args ...string) *process {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, file, args...)
	cmd.Env = append(os.Environ(), env...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s's stderr, its end:\n%s", filepath.Base(file), tail(stderr.String(), 3000))
		}
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case line, ok := <-lines:
		if !ok || !strings.HasPrefix(line, "listening on ") {
			t.Fatalf("%s said %q; stderr:\n%s", filepath.Base(file), line, stderr)
		}
		go func() {
			for range lines {
			}
		}()
		return &process{cmd: cmd, addr: strings.TrimPrefix(line, "listening on "), stderr: stderr}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start; stderr:\n%s", filepath.Base(file), stderr)
	}
	return nil
}

type seen struct {
	Method  string              `json:"method"`
	Host    string              `json:"host"`
	Path    string              `json:"path"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

// echoLog keeps what each echo upstream received, by its URL.
var (
	echoMu  sync.Mutex
	echoLog = map[string][]seen{}
)

func echoUpstream(t testing.TB) *httptest.Server {
	var self string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := map[string][]string{}
		for k, v := range r.Header {
			h[strings.ToLower(k)] = v
		}
		got := seen{r.Method, r.Host, r.URL.RequestURI(), h, string(body)}
		echoMu.Lock()
		echoLog[self] = append(echoLog[self], got)
		echoMu.Unlock()
		// An application that checks the sign-in itself: under /claims-challenge/ it asks
		// for authentication context c2 until the filter says the sign-in has it; under
		// /claims-challenge-always/ it always asks.
		if always := strings.HasPrefix(r.URL.Path, "/claims-challenge-always/"); always ||
			strings.HasPrefix(r.URL.Path, "/claims-challenge/") && !strings.Contains(r.Header.Get("X-Auth-Request-Acrs"), "c2") {
			claims := base64.StdEncoding.EncodeToString([]byte(`{"id_token":{"acrs":{"essential":true,"value":"c2"}}}`))
			w.Header().Set("WWW-Authenticate", `Bearer realm="", error="insufficient_claims", claims="`+claims+`"`)
			w.WriteHeader(401)
			return
		}
		w.Header().Set("content-type", "application/json")
		json.NewEncoder(w).Encode(got)
	}))
	self = srv.URL
	t.Cleanup(srv.Close)
	return srv
}

// The built module runs in the runner (a separate process) in front of a real upstream:
// a path in skip_paths passes without a session, and identity headers a client forges
// never reach the upstream.
func TestRunnerProxiesThroughTheFilter(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser()
	cases := []struct {
		name, method, path, body string
		headers                  [][2]string
	}{
		{"get", "GET", "/healthz?x=1", "", [][2]string{{"Accept", "text/html"}}},
		{"post", "POST", "/healthz", `{"name":"x"}`, [][2]string{{"Content-Type", "application/json"}}},
		{"forged identity", "GET", "/healthz", "", [][2]string{
			{"X-Auth-Request-User", "admin@contoso.com"}, {"X-Auth-Request-Groups", "admins"}, {"x-auth-request-oid", "0000"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.base+tc.path, strings.NewReader(tc.body))
			for _, h := range tc.headers {
				req.Header.Add(h[0], h[1])
			}
			resp, err := b.client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var got seen
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 {
				t.Fatalf("status %d, %v", resp.StatusCode, err)
			}
			if got.Path != tc.path || got.Body != tc.body {
				t.Errorf("upstream saw %s %q", got.Path, got.Body)
			}
			for name := range got.Headers {
				if strings.HasPrefix(name, "x-auth-request-") {
					t.Errorf("forged %s reached the upstream", name)
				}
			}
		})
	}
	if !s.runner.stderr.waitFor("entra-auth: started for tenant " + mockentra.DemoTenant) {
		t.Errorf("no start-up log line; stderr:\n%s", s.runner.stderr)
	}
}

// Request headers over Envoy's default max_request_headers_kb (60 KiB of names and
// values) get 431 before the filter sees them; under it they reach the filter (401: no
// session). A runner kinder than Envoy would let a test pass that Envoy fails: Go's and
// Node's own limits (1 MiB, 16 KiB) are neither Envoy's.
func TestRequestHeadersOverEnvoysLimitGet431(t *testing.T) {
	s := newStack(t, stackOptions{})
	b := s.browser()
	for _, tc := range []struct {
		size int
		want int
	}{{40 << 10, 401}, {61 << 10, 431}} {
		p := b.get("/app", "Accept", "application/json", "Authorization", "Bearer "+strings.Repeat("a", tc.size))
		if p.status != tc.want {
			t.Errorf("a %d KiB Authorization header: %d, want %d: %.100s", tc.size>>10, p.status, tc.want, p.body)
		}
	}
}

func TestRunnerExitsWithTheFiltersErrorOnBadConfiguration(t *testing.T) {
	config := filepath.Join(t.TempDir(), "plugin.json")
	os.WriteFile(config, []byte(`{"tenant_id": "x", "client_id": "c", "client_secret": "s", "cookie_secret": "short"}`), 0o600)
	cmd := exec.Command(runnerFile, "-wasm", moduleFile, "-config", config, "-listen", "127.0.0.1:0", "-upstream", "http://127.0.0.1:1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() == 0 {
		t.Fatalf("exit: %v", err)
	}
	for _, want := range []string{`"idp_cluster": is required`, `"cookie_secret": secret 1 is not base64 of 32 bytes`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(stdout.String(), "listening") {
		t.Errorf("stdout %q\nstderr %q", stdout.String(), stderr.String())
	}
}

func TestRunnerRefusesBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-upstream", "http://127.0.0.1:1", "-cluster", "noequals"}, "NAME=VALUE"},
		{[]string{"-upstream", "http://127.0.0.1:1", "-cluster", "entra=https://login.example/some/path"}, "cluster \"entra\""},
		{[]string{"-upstream", "ftp://x"}, "upstream"},
		{[]string{}, "-upstream are required"},
		{[]string{"-upstream", "http://127.0.0.1:1", "-log-level", "loud"}, "-log-level"},
		{[]string{"-upstream", "http://127.0.0.1:1", "-envoy", "1.20"}, "-envoy"},
		{[]string{"-upstream", "http://127.0.0.1:1", "-failure-policy", "FAIL_SOMETIMES"}, "-failure-policy"},
		{[]string{"-upstream", "http://127.0.0.1:1", "-xff-num-trusted-hops", "1"}, "with -use-remote-address"},
	} {
		cmd := exec.Command(runnerFile, append([]string{"-wasm", moduleFile, "-listen", "127.0.0.1:0"}, tc.args...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("%v: err %v, output %q; want it to mention %q", tc.args, err, out, tc.want)
		}
	}
}
