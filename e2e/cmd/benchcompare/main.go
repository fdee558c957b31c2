// Command benchcompare measures a signed-in request three ways on loopback, in one run:
// to a Go upstream alone, through entra-auth (the built module in the wazero runner) and
// through oauth2-proxy in proxy mode, both in front of the same upstream with an
// equivalent session (the same user, signed in through the same mock Entra ID).
//
// The systems under test run on CPU 0 and this program (load generator, upstream, mock
// identity provider) on CPU 1 when taskset is available and the machine has two CPUs.
// Targets are measured in turn, round after round (A B C A B C ...), so that drift in
// the machine's speed spreads over all of them. For each it reports closed-loop
// throughput, latency p50/p99 at a fixed open-loop rate, CPU time per request of the
// system's process (from /proc) and its peak RSS; last, the line
//
//	signed-in throughput ratio entra-auth/oauth2-proxy: X.XX
//
// oauth2-proxy is built from the Go module proxy (go install) into the -cache folder the
// first time. Run it with `make bench-compare`.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// pinnedEnv marks the copy of this program that already runs under taskset.
const pinnedEnv = "ENTRA_BENCH_PINNED"

type options struct {
	wasm, runner, cache, version   string
	rounds, conns, workers         int
	duration, openDuration, warmup time.Duration
	rate                           float64
	chart, jsonOut, logs, profile  string
	pin                            bool
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchcompare:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	var o options
	fs := flag.NewFlagSet("benchcompare", flag.ContinueOnError)
	fs.StringVar(&o.wasm, "wasm", "dist/entra-auth.wasm", "the filter module (`file`)")
	fs.StringVar(&o.runner, "runner", "bin/wasmhost", "the wazero runner (`program`)")
	fs.StringVar(&o.cache, "cache", ".cache", "`folder` oauth2-proxy is built into (git-ignored)")
	fs.StringVar(&o.version, "oauth2-proxy-version", "v7.15.6", "the oauth2-proxy `version` to build and measure")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds; each measures every target once")
	fs.IntVar(&o.conns, "conns", 16, "connections kept busy in the closed-loop runs")
	fs.IntVar(&o.workers, "workers", 64, "most requests in flight in the open-loop runs")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each closed-loop run")
	fs.DurationVar(&o.openDuration, "open-duration", 5*time.Second, "length of each open-loop run")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "closed-loop warm-up of each target before the rounds")
	fs.Float64Var(&o.rate, "rate", 0, "open-loop `requests/s`; 0 means half the slower proxy's median closed-loop throughput")
	fs.StringVar(&o.chart, "chart", "", "write a PNG chart of throughput and p99 to this `file`")
	fs.StringVar(&o.jsonOut, "json", "", "write the results as JSON to this `file`")
	fs.StringVar(&o.logs, "logs", "", "`folder` for the systems' logs (default: in -cache)")
	fs.StringVar(&o.profile, "runner-cpuprofile", "", "have the runner write a CPU profile of the whole run to this `file`")
	fs.BoolVar(&o.pin, "pin", true, "pin the systems to CPU 0 and this program to CPU 1 when taskset and two CPUs are there")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.rounds < 1 || o.conns < 1 || o.workers < 1 || o.duration <= 0 || o.openDuration <= 0 {
		return errors.New("-rounds, -conns and -workers must be at least 1, durations positive")
	}
	if _, err := exec.LookPath("taskset"); os.Getenv(pinnedEnv) == "" && (err != nil || runtime.NumCPU() < 2) {
		if o.pin {
			fmt.Println("benchcompare: no taskset or fewer than two CPUs: running unpinned")
		}
		o.pin = false
	}
	if o.pin && os.Getenv(pinnedEnv) == "" {
		// Run again on CPU 1, so that the Go runtime sees one CPU from the start.
		self, err := os.Executable()
		if err != nil {
			return err
		}
		cmd := exec.Command("taskset", append([]string{"-c", "1", self}, args...)...)
		cmd.Env = append(os.Environ(), pinnedEnv+"=1")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		return cmd.Run()
	}
	if o.logs == "" {
		o.logs = filepath.Join(o.cache, "bench-compare-logs")
	}
	if err := os.MkdirAll(o.logs, 0o755); err != nil {
		return err
	}
	for _, f := range []string{o.wasm, o.runner} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%w (run `make build` and build the runner first, or use `make bench-compare`)", err)
		}
	}
	oauth2Proxy, err := buildOAuth2Proxy(o.cache, o.version)
	if err != nil {
		return err
	}
	return compare(o, oauth2Proxy)
}

// buildOAuth2Proxy installs oauth2-proxy's version from the module proxy into cache,
// unless it is there already, and returns the program's path.
func buildOAuth2Proxy(cache, version string) (string, error) {
	dir, err := filepath.Abs(filepath.Join(cache, "oauth2-proxy-"+version))
	if err != nil {
		return "", err
	}
	program := filepath.Join(dir, "oauth2-proxy")
	if _, err := os.Stat(program); err == nil {
		return program, nil
	}
	fmt.Printf("benchcompare: building oauth2-proxy %s with go install (about a minute, once)\n", version)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	cmd := exec.Command("go", "install", "github.com/oauth2-proxy/oauth2-proxy/v7@"+version)
	cmd.Dir = dir // outside this module: its go.mod plays no part
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install oauth2-proxy %s: %v\n%s", version, err, out)
	}
	return program, nil
}

// freeAddr returns a loopback address nothing listens on.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// serve runs h on a new loopback listener and returns its base URL.
func serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go http.Serve(ln, h)
	return "http://" + ln.Addr().String(), nil
}

// upstream answers every request with a short page; /whoami echoes the identity headers
// the proxy in front added, which is how the harness checks both proxies sign the user
// in before measuring.
func upstream() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/whoami" {
			fmt.Fprintf(w, "entra-auth=%s oauth2-proxy=%s", r.Header.Get("X-Auth-Request-Email"), r.Header.Get("X-Forwarded-Email"))
			return
		}
		io.WriteString(w, "hello from the upstream\n")
	})
}

func compare(o options, oauth2Proxy string) error {
	mock := mockentra.New(mockentra.DemoOptions())
	mockURL, err := serve(mock.Handler())
	if err != nil {
		return err
	}
	upstreamURL, err := serve(upstream())
	if err != nil {
		return err
	}
	entra, entraURL, err := startEntraAuth(o, mockURL, upstreamURL)
	if err != nil {
		return err
	}
	defer entra.stop()
	o2p, o2pURL, err := startOAuth2Proxy(o, oauth2Proxy, mockURL, upstreamURL)
	if err != nil {
		return err
	}
	defer o2p.stop()

	const user = "ada@contoso.example"
	entraCookie, err := signIn(entraURL+"/", user)
	if err != nil {
		return fmt.Errorf("sign in through entra-auth: %w", err)
	}
	o2pCookie, err := signIn(o2pURL+"/", user)
	if err != nil {
		return fmt.Errorf("sign in through oauth2-proxy: %w (see %s)", err, o2p.log.Name())
	}
	for _, c := range []struct{ url, cookie, want string }{
		{entraURL, entraCookie, "entra-auth=" + user + " "},
		{o2pURL, o2pCookie, "oauth2-proxy=" + user},
	} {
		if err := checkIdentity(c.url+"/whoami", c.cookie, c.want); err != nil {
			return err
		}
	}
	targets := []*result{
		{target: target{name: "upstream-direct", url: upstreamURL + "/page"}},
		{target: target{name: "entra-auth", url: entraURL + "/page", cookie: entraCookie}, proc: entra},
		{target: target{name: "oauth2-proxy", url: o2pURL + "/page", cookie: o2pCookie}, proc: o2p},
	}
	return measure(o, targets)
}

// startEntraAuth runs the wazero runner with the module, one worker (one VM), as Envoy
// would with --concurrency 1.
func startEntraAuth(o options, mockURL, upstreamURL string) (*process, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	config, _ := json.Marshal(map[string]any{
		"authority": mockURL, "tenant_id": mockentra.DemoTenant, "client_id": mockentra.DemoClientID,
		"client_secret": mockentra.DemoClientSecret, "idp_cluster": "entra", "cookie_secret": randomBase64(32),
	})
	configFile := filepath.Join(o.logs, "entra-auth-plugin.json")
	if err := os.WriteFile(configFile, config, 0o600); err != nil {
		return nil, "", err
	}
	argv := []string{o.runner, "-wasm", o.wasm, "-config", configFile, "-listen", addr, "-upstream", upstreamURL,
		"-concurrency", "1", "-log-level", "warn", "-cluster", "entra=" + mockURL}
	if o.profile != "" {
		argv = append(argv, "-cpuprofile", o.profile)
	}
	p, err := start("entra-auth", o.pin, 0, nil, filepath.Join(o.logs, "entra-auth.log"), addr, argv...)
	return p, "http://" + addr, err
}

// startOAuth2Proxy runs oauth2-proxy in proxy mode with the generic OIDC provider
// against the mock (discovery, PKCE), logging only startup and errors, as the runner
// does.
func startOAuth2Proxy(o options, program, mockURL, upstreamURL string) (*process, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	p, err := start("oauth2-proxy", o.pin, 0, nil, filepath.Join(o.logs, "oauth2-proxy.log"), addr,
		program, "--http-address="+addr, "--upstream="+upstreamURL,
		"--provider=oidc", "--oidc-issuer-url="+mockURL+"/"+mockentra.DemoTenant+"/v2.0",
		"--client-id="+mockentra.DemoClientID, "--client-secret="+mockentra.DemoClientSecret,
		"--redirect-url=http://"+addr+"/oauth2/callback", "--code-challenge-method=S256",
		"--scope=openid profile email", "--email-domain=*",
		// Entra ID sends no email_verified claim; without this oauth2-proxy asks the
		// userinfo endpoint (Microsoft Graph) on every sign-in.
		"--insecure-oidc-allow-unverified-email=true", "--cookie-secret="+randomBase64(24),
		"--cookie-secure=false", "--skip-provider-button=true", "--pass-user-headers=true",
		"--request-logging=false", "--auth-logging=false")
	return p, "http://" + addr, err
}

// checkIdentity asks the upstream, through a proxy, who the user is.
func checkIdentity(url, cookie, want string) error {
	c := newClient(1)
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Accept", "text/html")
	req.Header.Set("Cookie", cookie)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
		return fmt.Errorf("%s: got %d %q, want the upstream to see %q", url, resp.StatusCode, body, want)
	}
	return nil
}
