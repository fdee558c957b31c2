package e2e

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// Envoy starts a plugin first in a canary VM and destroys it, at start and at every
// configuration push, then starts it on the main thread and every worker; the runner
// does the same. The first sign-in after either must not wait for anything the canary
// left behind: it takes the metadata fetch, if one is due, and the token call, and no
// more. (A filter that fetched from its plugin start left the fetch lease with the
// canary, and sign-ins waited three IdP timeouts for it to run out.)
func TestFirstSignInAfterStartAndPushIsNotHeldByTheCanary(t *testing.T) {
	const roundTrip = 300 * time.Millisecond // each of discovery, keys and token
	faults := mockentra.Faults{Delay: map[string]time.Duration{"discovery": roundTrip, "keys": roundTrip, "token": roundTrip}}
	s := newStack(t, stackOptions{faults: faults, config: map[string]any{"idp_timeout": "2s"}})
	// A fetch (discovery, then keys), the token call, the mock's authorize step and the
	// requests themselves; a lease left by the canary would add 3 × idp_timeout + 1 s.
	const bound = 4*roundTrip + 2*time.Second // well under the 7.9 s a stuck lease costs

	signIn := func(when string) {
		t.Helper()
		began := time.Now()
		done := s.browser().signIn("/app", "ada@contoso.example")
		took := time.Since(began)
		if done.status != 302 || done.location == nil || done.location.Path != "/app" {
			t.Fatalf("%s: sign-in ended with %d %v: %.300s", when, done.status, done.location, done.body)
		}
		t.Logf("%s: the first sign-in took %v", when, took.Round(time.Millisecond))
		if took > bound {
			t.Errorf("%s: the first sign-in took %v, more than a metadata fetch and a token call (%v)", when, took, bound)
		}
	}
	signIn("after start")

	// Push a configuration that names the tenant by its domain: another discovery URL,
	// so the new plugin needs a fetch of its own, and a new skip path to see it applied.
	var config map[string]any
	raw, err := os.ReadFile(configPathOf(t, s))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &config); err != nil {
		t.Fatal(err)
	}
	config["tenant_id"] = mockentra.DemoDomain
	config["skip_paths"] = []string{"/healthz", "/pushed"}
	push(t, s, config)
	if p := s.browser().get("/pushed"); p.status != 200 {
		t.Fatalf("after the push, /pushed is %d, want 200 (skipped)", p.status)
	}
	signIn("after a configuration push")

	// A configuration the canary refuses changes nothing.
	config["tenant_id"] = "not a tenant"
	if err := os.WriteFile(configPathOf(t, s), mustJSON(t, config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.runner.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !s.runner.stderr.waitFor("configuration push refused") {
		t.Fatalf("the runner did not refuse a bad configuration:\n%s", tail(s.runner.stderr.String(), 2000))
	}
	if p := s.browser().get("/pushed"); p.status != 200 {
		t.Errorf("after a refused push, /pushed is %d: the old configuration should stay", p.status)
	}
	signIn("after a refused push")
}

// configPathOf is the plugin configuration file the stack's runner was started with.
func configPathOf(t *testing.T, s *stack) string {
	t.Helper()
	args := s.runner.cmd.Args
	for i, a := range args {
		if a == "-config" && i+1 < len(args) {
			return args[i+1]
		}
	}
	t.Fatal("the runner has no -config")
	return ""
}

// push writes config to the runner's configuration file, signals the runner, and
// waits until it says the push went through.
func push(t *testing.T, s *stack, config map[string]any) {
	t.Helper()
	before := strings.Count(s.runner.stderr.String(), "configuration pushed")
	if err := os.WriteFile(configPathOf(t, s), mustJSON(t, config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.runner.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Count(s.runner.stderr.String(), "configuration pushed") > before {
			return
		}
	}
	t.Fatalf("the runner did not take the pushed configuration:\n%s", tail(s.runner.stderr.String(), 2000))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
