package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// freeAddr is a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// localBin holds the programs scripts/run-local.sh starts, built once for the tests.
var localBin = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(filepath.Dir(runnerFile), "bin")
	for _, program := range []string{"mockentra", "demoapp", "usersync"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, program), "./e2e/cmd/"+program)
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", &buildError{program, err, out}
		}
	}
	if err := os.Link(runnerFile, filepath.Join(bin, "wasmhost")); err != nil && !os.IsExist(err) {
		return "", err
	}
	return bin, nil
})

type buildError struct {
	program string
	err     error
	out     []byte
}

func (e *buildError) Error() string {
	return "go build " + e.program + ": " + e.err.Error() + "\n" + string(e.out)
}

// localRunCommand is scripts/run-local.sh, the setup `make run` starts, on free ports
// (LISTEN is the filter's), with programs built for the test and env added.
func localRunCommand(t *testing.T, listen string, env ...string) *exec.Cmd {
	t.Helper()
	bin, err := localBin()
	if err != nil {
		t.Fatal(err)
	}
	script := exec.Command("bash", "scripts/run-local.sh")
	script.Dir = ".."
	script.Env = append(os.Environ(), "LISTEN="+listen, "APP="+freeAddr(t), "IDP="+freeAddr(t), "USERS="+freeAddr(t),
		"USERS_DB="+filepath.Join(t.TempDir(), "users.db"), "BIN="+bin, "WASM="+moduleFile)
	script.Env = append(script.Env, env...)
	script.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Ctrl-C reaches the whole group, as in a terminal
	return script
}

// localRun is the running setup: the site to open, and what the script printed.
type localRun struct {
	site   string
	output *lockedBuffer
}

// startLocalRun starts the setup and waits for the filter to listen; Ctrl-C stops it when
// the test ends. The site is http://localhost:PORT/, as the script tells a newcomer.
func startLocalRun(t *testing.T, env ...string) *localRun {
	t.Helper()
	listen := freeAddr(t)
	script := localRunCommand(t, listen, env...)
	output := &lockedBuffer{}
	script.Stderr = output
	stdout, err := script.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := script.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-script.Process.Pid, syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- script.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-script.Process.Pid, syscall.SIGKILL)
			t.Errorf("make run's setup did not stop within 10 s of Ctrl-C")
			<-done
		}
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			output.Write([]byte(sc.Text() + "\n"))
			// The script tells a newcomer where to go only once the runner listens.
			if strings.HasPrefix(sc.Text(), "run: open http://localhost:"+listen[strings.LastIndex(listen, ":")+1:]+"/") {
				ready <- strings.Contains(output.String(), "listening on "+listen+"\n")
			}
		}
		close(ready)
	}()
	select {
	case listened, ok := <-ready:
		if !ok {
			t.Fatalf("run-local.sh ended before the filter listened:\n%s", output)
		}
		if !listened {
			t.Fatalf("run-local.sh said where to go before the filter listened:\n%s", output)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("run-local.sh did not start:\n%s", output)
	}
	port := listen[strings.LastIndex(listen, ":")+1:]
	return &localRun{site: "http://localhost:" + port + "/", output: output}
}

// entraConfig is examples/entra/plugin.json as a user fills it in, for the identity
// provider at authority.
func entraConfig(t *testing.T, authority string) string {
	t.Helper()
	raw, err := os.ReadFile("../examples/entra/plugin.json")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("examples/entra/plugin.json: %v", err)
	}
	cfg["tenant_id"], cfg["client_id"] = mockentra.DemoTenant, mockentra.DemoClientID
	if authority != "" {
		cfg["authority"] = authority
	}
	raw, _ = json.Marshal(cfg)
	file := filepath.Join(t.TempDir(), "my-entra.json")
	if err := os.WriteFile(file, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}

// With a configuration of one's own, `make run` starts no mock and signs in with the
// configuration's authority, the client secret taken from ENTRA_CLIENT_SECRET: what the
// README's "Against real Entra ID" does, with the mock as a stand-in for
// login.microsoftonline.com (no internet here).
func TestLocalRunWithAnotherAuthority(t *testing.T) {
	remote := httptest.NewServer(mockentra.New(mockentra.DemoOptions()).Handler())
	defer remote.Close()
	run := startLocalRun(t, "CONFIG="+entraConfig(t, remote.URL), "ENTRA_CLIENT_SECRET="+mockentra.DemoClientSecret)
	if !strings.Contains(run.output.String(), "signing in with "+remote.URL) || strings.Contains(run.output.String(), "starting the mock") {
		t.Fatalf("the script did not use the configuration's authority:\n%s", run.output)
	}
	// A client like a browser, by hand: the cookies are Secure, which Go's cookie jar keeps
	// only for https, while browsers also keep them for http://localhost.
	start := get(t, run.site+"app", "")
	authorize, _ := url.Parse(start.Header.Get("Location"))
	if start.StatusCode != 302 || !strings.HasPrefix(authorize.String(), remote.URL+"/") {
		t.Fatalf("signed out: %d to %s, want the configured authority", start.StatusCode, authorize)
	}
	q := authorize.Query()
	q.Set("mock_user", "ada@contoso.example")
	authorize.RawQuery = q.Encode()
	back := get(t, authorize.String(), "")
	done := get(t, back.Header.Get("Location"), cookieHeader(start))
	if done.StatusCode != 302 || done.Header.Get("Location") != "/app" {
		t.Fatalf("callback: %d to %s", done.StatusCode, done.Header.Get("Location"))
	}
	page := get(t, run.site+"app", cookieHeader(done))
	if page.StatusCode != 200 {
		t.Fatalf("signed in: %d", page.StatusCode)
	}
}

// The script's refusals: each says what to do.
func TestLocalRunRefuses(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	// Another program on localhost's IPv6 address, where browsers go first.
	busy6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback on this machine: %v", err)
	}
	defer busy6.Close()
	port6 := busy6.Addr().(*net.TCPAddr).Port
	for _, tc := range []struct {
		name   string
		listen string
		env    []string
		want   string
	}{
		{"a port in use", busy.Addr().String(), nil, "is in use by another program; choose another address, e.g. make run LISTEN="},
		{"the port in use on [::1]", "127.0.0.1:" + strconv.Itoa(port6), nil, "another program listens on [::1]:" + strconv.Itoa(port6) + ", where browsers go first"},
		{"no client secret for Entra", freeAddr(t), []string{"CONFIG=" + entraConfig(t, ""), "ENTRA_CLIENT_SECRET="},
			"signs in with https://login.microsoftonline.com: set ENTRA_CLIENT_SECRET"},
		{"the example's placeholders", freeAddr(t), []string{"CONFIG=examples/entra/plugin.json", "ENTRA_CLIENT_SECRET=s"},
			`"tenant_id": must be the Directory (tenant) ID`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := localRunCommand(t, tc.listen, tc.env...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v, output:\n%s\nwant %q", err, out, tc.want)
			}
			if strings.Contains(string(out), "run: open http://") {
				t.Errorf("a refused setup still said where to go:\n%s", out)
			}
		})
	}
}

// make run-django: the same setup with the reference Django project as the application
// (and its user-sync endpoint). A newcomer from Django signs in and lands on Django's page
// as the synced user; Django refuses what does not come through the filter.
func TestLocalRunWithDjango(t *testing.T) {
	onceAcrossPasses(t)
	djangoPython(t)
	run := startLocalRun(t, "APP_KIND=django", "DJANGO_DB="+filepath.Join(t.TempDir(), "django.sqlite3"))
	if !strings.Contains(run.output.String(), "starting the Django project") {
		t.Fatalf("the script did not start Django:\n%s", run.output)
	}
	start := get(t, run.site, "")
	authorize, _ := url.Parse(start.Header.Get("Location"))
	if start.StatusCode != 302 || authorize == nil {
		t.Fatalf("signed out: %d", start.StatusCode)
	}
	q := authorize.Query()
	q.Set("mock_user", "grace@contoso.example")
	authorize.RawQuery = q.Encode()
	back := get(t, authorize.String(), "")
	done := get(t, back.Header.Get("Location"), cookieHeader(start))
	if done.StatusCode != 302 {
		t.Fatalf("callback: %d", done.StatusCode)
	}
	req, _ := http.NewRequest("GET", run.site, nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Cookie", cookieHeader(done))
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Signed in as grace@contoso.example") {
		t.Fatalf("Django's page through the filter: %d %.300s", resp.StatusCode, body)
	}
}
