package e2e

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// v8Module is the module the V8 benchmarks run: the build's by default; make bench also
// runs an older commit's (the baseline) with this flag, run after run, so that the two
// are measured side by side.
var v8Module = flag.String("v8-module", "", "the module the V8 benchmarks run (default: the build's)")

// v8Profile, when set, is a directory where Node writes a CPU profile of each V8
// benchmark's runner (--cpu-prof), which names the module's functions: open it in
// Chrome's DevTools, or sum its self time by function.
var v8Profile = flag.String("v8-profile", "", "a `directory` for CPU profiles of the V8 benchmarks' runners")

// v8ModuleFile is the module the V8 benchmarks run.
func v8ModuleFile() string {
	if *v8Module != "" {
		return *v8Module
	}
	return moduleFile
}

// v8Bench is a stack whose runner is e2e/v8/runner.js with Envoy's flags and -timings,
// one worker: what a request costs inside the module in Envoy's engine.
type v8Bench struct {
	*stack
	secret string
}

func newV8Bench(b *testing.B) *v8Bench {
	b.Helper()
	nodePath(b)
	module := v8ModuleFile()
	secret := newCookieSecret()
	var nodeFlags []string
	if *v8Profile != "" {
		nodeFlags = []string{"--cpu-prof", "--cpu-prof-dir=" + *v8Profile}
	}
	s := newStack(b, stackOptions{engine: "v8", nodeFlags: nodeFlags, concurrency: 1, logLevel: "warn",
		config:     map[string]any{"cookie_secret": secret, "api_audiences": apiAudiences},
		runnerArgs: []string{"-timings", "-wasm", module}})
	return &v8Bench{stack: s, secret: secret}
}

// v8Timings is what runner.js's /__v8/timings answers: the module's time in each stream
// that ended since the last ask, and the largest linear memory of its VMs.
type v8Timings struct {
	NS          []int64             `json:"ns"`
	HostNS      []int64             `json:"host_ns"`
	Imports     map[string]v8Import `json:"imports"`
	MemoryBytes int                 `json:"memory_bytes"`
	Metrics     map[string]int64    `json:"metrics"`
}

// timings asks the runner for the streams' times since the last ask, and forgets them.
func (v *v8Bench) timings(tb testing.TB) v8Timings {
	tb.Helper()
	p := v.browser().get("/__v8/timings")
	var t v8Timings
	if p.status != 200 {
		tb.Fatalf("/__v8/timings: %d %s", p.status, p.body)
	}
	if err := json.Unmarshal([]byte(p.body), &t); err != nil {
		tb.Fatal(err)
	}
	return t
}

// v8Import is one import's calls and their time in runner.js's host functions.
type v8Import struct {
	Calls int   `json:"calls"`
	NS    int64 `json:"ns"`
}

// add appends more's streams and calls to t.
func (t *v8Timings) add(more v8Timings) {
	t.NS = append(t.NS, more.NS...)
	t.HostNS = append(t.HostNS, more.HostNS...)
	if t.Imports == nil {
		t.Imports = map[string]v8Import{}
	}
	for name, im := range more.Imports {
		sum := t.Imports[name]
		sum.Calls += im.Calls
		sum.NS += im.NS
		t.Imports[name] = sum
	}
}

// report gives the median and 99th percentile of the streams' time in the module; the
// median of that time less this host's functions (what the module itself runs, which
// Envoy's C++ host calls would add to); and the host calls per stream.
func (t *v8Timings) report(b *testing.B) {
	b.Helper()
	if len(t.NS) == 0 || len(t.NS) != len(t.HostNS) {
		b.Fatalf("%d stream timings, %d host timings", len(t.NS), len(t.HostNS))
	}
	own := make([]int64, len(t.NS))
	for i := range t.NS {
		own[i] = t.NS[i] - t.HostNS[i]
	}
	quantile := func(ns []int64, q float64) float64 {
		ns = slices.Sorted(slices.Values(ns))
		return float64(ns[min(len(ns)-1, int(q*float64(len(ns))))]) / 1e3
	}
	calls := 0
	for _, im := range t.Imports {
		calls += im.Calls
	}
	b.ReportMetric(quantile(t.NS, 0.5), "median-µs")
	b.ReportMetric(quantile(t.NS, 0.99), "p99-µs")
	b.ReportMetric(quantile(own, 0.5), "module-median-µs")
	b.ReportMetric(float64(calls)/float64(len(t.NS)), "host-calls/op")
}

// signedInCookie signs Ada in and returns the Cookie header her browser then sends.
func (v *v8Bench) signedInCookie(b *testing.B) string {
	b.Helper()
	br := v.browser()
	if done := br.signIn("/page", "ada@contoso.example"); done.status != 302 {
		b.Fatalf("sign-in: %d", done.status)
	}
	return br.cookieHeaderOf()
}

// cookieHeaderOf is the Cookie header the browser sends to the site.
func (br *browser) cookieHeaderOf() string {
	var pairs []string
	for name, value := range br.cookies() {
		pairs = append(pairs, name+"="+value)
	}
	slices.Sort(pairs)
	return strings.Join(pairs, "; ")
}

// BenchmarkV8Request is the time a request spends inside the module in V8 with Envoy's
// flags (TurboFan), every callback and host call included, as runner.js measures it
// around each call into the module: its median and 99th percentile per path. The
// requests go over real HTTPS to the runner, which these figures leave out.
func BenchmarkV8Request(b *testing.B) {
	v := newV8Bench(b)
	cookie := v.signedInCookie(b)
	mint := func() string {
		token, err := v.mock.MintAccessToken(mockentra.AccessToken{User: v.mock.Users()[0], Audience: mockentra.DemoClientID,
			Scopes: []string{"access_as_user"}, IssuerBase: v.mockURL})
		if err != nil {
			b.Fatal(err)
		}
		return token
	}
	reseal := resealer(b, v.secret, cookie)
	hitToken := mint()

	for _, tc := range []struct {
		name string
		// request sends one measured request, after setup work the timings leave out
		// when perRequestSetup is set.
		request         func(b *testing.B, br *browser) *page
		want            int
		perRequestSetup bool
	}{
		{"skip-path", func(_ *testing.B, br *browser) *page { return br.get("/healthz") }, 200, false},
		{"signed-in", func(_ *testing.B, br *browser) *page { return br.get("/page", "Cookie", cookie) }, 200, false},
		{"signed-in-cache-miss", func(_ *testing.B, br *browser) *page { return br.get("/page", "Cookie", reseal()) }, 200, false},
		{"signed-out-redirect", func(_ *testing.B, br *browser) *page { return br.get("/page") }, 302, false},
		{"bearer-hit", func(_ *testing.B, br *browser) *page {
			return br.get("/api/items", "Accept", "application/json", "Authorization", "Bearer "+hitToken)
		}, 200, false},
		{"bearer-miss", func(_ *testing.B, br *browser) *page {
			return br.get("/api/items", "Accept", "application/json", "Authorization", "Bearer "+mint())
		}, 200, false},
		{"callback", func(b *testing.B, br *browser) *page {
			start := br.get("/page")
			authorize := start.location
			q := authorize.Query()
			q.Set("mock_user", "ada@contoso.example")
			authorize.RawQuery = q.Encode()
			back := br.get(authorize.String())
			v.timings(b) // the start of the sign-in is not what is measured
			return br.get(back.location.String())
		}, 302, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			br := v.browser() // one connection; no cookies but those each request names
			v.timings(b)
			var all v8Timings
			for b.Loop() {
				if tc.perRequestSetup {
					br.jar, _ = cookiejar.New(nil)
					br.client.Jar = br.jar
				}
				if p := tc.request(b, br); p.status != tc.want {
					b.Fatalf("%d, want %d: %.300s", p.status, tc.want, p.body)
				}
				if tc.perRequestSetup {
					all.add(v.timings(b))
				}
			}
			if !tc.perRequestSetup {
				all.add(v.timings(b))
			}
			all.report(b)
			if testing.Verbose() {
				for name, im := range all.Imports {
					b.Logf("%s: %.2f calls and %.2f µs in the host per stream", name,
						float64(im.Calls)/float64(len(all.NS)), float64(im.NS)/1e3/float64(len(all.NS)))
				}
			}
		})
	}
}

// BenchmarkV8LinearMemory is a VM's linear memory in V8 after 1,000 and after 100,000
// signed-in requests (eight clients at once, one worker), each with a forged identity
// header the filter removes. It does its 100,000 requests once, whatever b.N.
func BenchmarkV8LinearMemory(b *testing.B) {
	v := newV8Bench(b)
	cookie := v.signedInCookie(b)
	serve := func(n int) {
		const clients = 8
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				client := v.browser().client
				for i := c; i < n; i += clients {
					req, _ := http.NewRequest("GET", v.base+"/page", nil)
					req.Header.Set("Accept", "text/html")
					req.Header.Set("Cookie", cookie)
					req.Header.Set("X-Auth-Request-User", "forged")
					resp, err := client.Do(req)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode != 200 {
							err = fmt.Errorf("request %d: %s", i, resp.Status)
						}
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	var after1k, after100k int
	for b.Loop() {
		if after100k == 0 {
			serve(1000)
			after1k = v.timings(b).MemoryBytes
			serve(99_000)
			after100k = v.timings(b).MemoryBytes
		}
	}
	b.ReportMetric(float64(after1k)/1024, "KiB-after-1k")
	b.ReportMetric(float64(after100k)/1024, "KiB-after-100k")
	b.ReportMetric((float64(after100k)-float64(after1k))/1024, "KiB-growth")
}

// BenchmarkV8Floor is e2e/testdata/floor in V8 with Envoy's flags: the SDK, sdkbinding
// and Go's runtime with nothing of the filter, reading the request headers and letting
// the request go. Its time per request is the floor under every path of
// BenchmarkV8Request, which the same browser request (a skip_paths one) compares to.
func BenchmarkV8Floor(b *testing.B) {
	nodePath(b)
	dir := b.TempDir()
	module := filepath.Join(dir, "floor.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", module, "./testdata/floor")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build the floor module: %v\n%s", err, out)
	}
	if err := stubModule(module, ""); err != nil {
		b.Fatal(err)
	}
	s := newStack(b, stackOptions{engine: "v8", concurrency: 1, logLevel: "warn", runnerArgs: []string{"-timings", "-wasm", module}})
	v := &v8Bench{stack: s}
	br := v.browser()
	v.timings(b)
	for b.Loop() {
		if p := br.get("/healthz"); p.status != 200 {
			b.Fatalf("%d: %.300s", p.status, p.body)
		}
	}
	all := v.timings(b)
	all.report(b)
}
