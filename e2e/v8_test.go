package e2e

import (
	"encoding/json"
	"flag"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/internal/testskip"
)

// envoyV8Flags make Node's V8 compile as Envoy's does: proxy-wasm-cpp-host's
// src/v8/v8.cc (engine()) turns Liftoff off, so TurboFan compiles every function before
// the module runs, and caps linear memory at 1 GiB (16384 pages).
var envoyV8Flags = []string{"--no-liftoff", "--no-wasm-lazy-compilation", "--wasm-max-mem-pages=16384"}

// v8Compile is what e2e/v8/compile.js reports.
type v8Compile struct {
	Node          string  `json:"node"`
	V8            string  `json:"v8"`
	ModuleBytes   int     `json:"module_bytes"`
	CompileWallMs float64 `json:"compile_wall_ms"`
	CompileCPUMs  float64 `json:"compile_cpu_ms"`
}

// nodePath finds Node (Debian's nodejs), or skips saying how to get it.
func nodePath(tb testing.TB) string {
	tb.Helper()
	for _, name := range []string{"node", "nodejs"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	testskip.Missing(tb, "no Node.js, so nothing runs in V8 (apt-get install nodejs; .ci/run does)")
	return ""
}

// compileInV8 compiles module in a fresh Node process with Envoy's V8 flags, checking its
// imports against Envoy 1.33's.
func compileInV8(tb testing.TB, node, module string) v8Compile {
	tb.Helper()
	var c v8Compile
	runV8Script(tb, exec.Command(node, append(append([]string(nil), envoyV8Flags...),
		"v8/compile.js", module, "../testdata/envoy-host-abi.txt")...), &c)
	return c
}

// runV8Script runs one of e2e/v8's scripts, which answer one line of JSON, into out.
func runV8Script(tb testing.TB, cmd *exec.Cmd, out any) {
	tb.Helper()
	stdout, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			tb.Fatalf("%v: %v\n%s", cmd.Args[1:], err, ee.Stderr)
		}
		tb.Fatal(err)
	}
	if err := json.Unmarshal(stdout, out); err != nil {
		tb.Fatalf("%v said %q: %v", cmd.Args[1:], stdout, err)
	}
}

// The module Envoy loads must validate and compile in V8 as Envoy compiles it, importing
// nothing Envoy 1.33 lacks: wazero accepting it says nothing of V8.
func TestModuleCompilesInV8AsEnvoyDoes(t *testing.T) {
	onceAcrossPasses(t)
	c := compileInV8(t, nodePath(t), moduleFile)
	t.Logf("Node %s (V8 %s), TurboFan only: %d bytes compiled in %.0f ms wall, %.0f ms CPU",
		c.Node, c.V8, c.ModuleBytes, c.CompileWallMs, c.CompileCPUMs)
}

// The import check must be able to fail: with proxy_http_call left out of the host's
// list, the module is refused, naming it. (V8's default lazy compilation here: the check
// needs the module's imports, not its code.)
func TestV8CompileRefusesAnImportEnvoyLacks(t *testing.T) {
	onceAcrossPasses(t)
	node := nodePath(t)
	abi, err := os.ReadFile("../testdata/envoy-host-abi.txt")
	if err != nil {
		t.Fatal(err)
	}
	without := strings.Replace(string(abi), "env\tproxy_http_call\n", "", 1)
	if without == string(abi) {
		t.Fatal("the host ABI list no longer has env<TAB>proxy_http_call: update the test")
	}
	list := filepath.Join(t.TempDir(), "abi.txt")
	if err := os.WriteFile(list, []byte(without), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, "v8/compile.js", moduleFile, list).CombinedOutput()
	if err == nil || !strings.HasSuffix(strings.TrimSpace(string(out)), "does not give: env.proxy_http_call") {
		t.Fatalf("got %v, %s; want a refusal naming env.proxy_http_call alone", err, out)
	}
}

// startV8Runner starts e2e/v8/runner.js in Node with Envoy's flags, as startRunner starts
// wasmhost, and waits for its "listening on" line.
func startV8Runner(t testing.TB, engine string, nodeFlags []string, args ...string) *runner {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("-engine=%s needs Node.js (Debian's nodejs): %v", engine, err)
	}
	node := nodePath(t)
	all := append(append(append([]string(nil), v8Flags(engine)...), nodeFlags...), "v8/runner.js", "-wasm", moduleFile, "-listen", "127.0.0.1:0")
	return startProcess(t, node, nil, append(all, args...)...)
}

// engine is the one switch for the end-to-end tests built on newStack: "wazero" runs the
// module in e2e/cmd/wasmhost; "v8" in e2e/v8/runner.js, Node's V8 with Envoy's flags
// (TurboFan compiles the whole module first, about 2 s); "v8-tiered" the same with V8's
// default tiering (Liftoff first, TurboFan for hot functions: the same code and host,
// started in milliseconds). make test runs each: go test ./e2e -args -engine=v8.
var engine = flag.String("engine", "wazero", "where the end-to-end tests run the module: wazero, v8 (Envoy's flags) or v8-tiered")

// merged is a copy of base with extra's entries added over it.
func merged(base, extra map[string]string) map[string]string {
	out := maps.Clone(base)
	maps.Copy(out, extra)
	return out
}

// onceAcrossPasses skips a test that does not depend on -engine in the V8 passes: the
// wazero pass has run it.
func onceAcrossPasses(tb testing.TB) {
	tb.Helper()
	if *engine != "wazero" {
		tb.Skip("SKIPPED in the V8 pass: it does not depend on -engine, and the wazero pass runs it")
	}
}

// v8Flags are the Node flags for an engine.
func v8Flags(engine string) []string {
	if engine == "v8-tiered" {
		return envoyV8Flags[2:] // the memory cap only
	}
	return envoyV8Flags
}

// v8Start is what e2e/v8/start.js reports.
type v8Start struct {
	CompileMs     float64  `json:"compile_ms"`
	InstantiateMs float64  `json:"instantiate_ms"`
	StartMs       float64  `json:"start_ms"`
	Started       bool     `json:"started"`
	FailedStep    string   `json:"failed_step"`
	Trap          string   `json:"trap"`
	MemoryBytes   int      `json:"memory_bytes"`
	Log           []string `json:"log"`
}

// startInV8 runs Envoy's start sequence for module in a fresh Node with Envoy's flags,
// with the plugin configuration at config and the VM environment env.
func startInV8(tb testing.TB, node, module, config string, env map[string]string) v8Start {
	tb.Helper()
	args := append(append([]string(nil), envoyV8Flags...), "v8/start.js", module, config)
	cmd := exec.Command(node)
	cmd.Env = os.Environ()
	for k, v := range env {
		args = append(args, k)
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Args = append(cmd.Args, args...)
	var s v8Start
	runV8Script(tb, cmd, &s)
	return s
}

// The plugin starts in V8 as Envoy starts it, with Envoy 1.33's answers: _initialize
// with its restricted imports, then the root context's VM start and configure, the
// allocator restricted throughout. GOGC=1 makes the collector run often, in the allocator too;
// the module without its own poll_oneoff must die there, as it dies in our wazero host,
// or this host is kinder than Envoy.
func TestModuleStartsInV8AsEnvoyDoes(t *testing.T) {
	onceAcrossPasses(t)
	node := nodePath(t)
	secrets := map[string]string{"ENTRA_CLIENT_SECRET": "s", "ENTRA_COOKIE_SECRET": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "USER_SYNC_SECRET": "u"}
	with := func(extra map[string]string) map[string]string { return merged(secrets, extra) }
	good := "../examples/local/plugin.json"
	text, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(t.TempDir(), "typo.json")
	if err := os.WriteFile(bad, []byte(strings.Replace(string(text), `"skip_paths"`, `"skip_path"`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, module, config string
		env                  map[string]string
		started              bool
		want                 string // in the log or the trap
	}{
		{"example configuration", moduleFile, good, with(nil), true, "started for tenant 72f988bf-86f1-41af-91ab-2d7cd011db47"},
		{"collector inside the allocator", moduleFile, good, with(map[string]string{"GOGC": "1"}), true, "started for tenant"},
		{"typo in the configuration", moduleFile, bad, with(nil), false, `"skip_path": unknown key`},
		{"no cookie secret", moduleFile, good, map[string]string{"ENTRA_CLIENT_SECRET": "s", "USER_SYNC_SECRET": "u"}, false, "ENTRA_COOKIE_SECRET"},
		{"module without its own poll_oneoff", unfixedModuleFile, good, with(map[string]string{"GOGC": "1"}), false, "fatal error: poll_oneoff failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startInV8(t, node, tc.module, tc.config, tc.env)
			said := s.Trap + "\n" + strings.Join(s.Log, "\n")
			if s.Started != tc.started || !strings.Contains(said, tc.want) {
				t.Fatalf("started %v (failed at %q), want %v and %q in:\n%s", s.Started, s.FailedStep, tc.started, tc.want, said)
			}
			t.Logf("started %v in %.1f ms after %.1f ms to instantiate (%s)", s.Started, s.StartMs, s.InstantiateMs, strings.TrimSpace(s.FailedStep+" "+s.Trap))
		})
	}
}

// BenchmarkV8Compile is Envoy's start-up cost per module load: TurboFan compiling the
// whole module in Node's V8 with Envoy's flags, a fresh process each time.
func BenchmarkV8Compile(b *testing.B) {
	node := nodePath(b)
	var wall, cpu float64
	n := 0
	for b.Loop() {
		c := compileInV8(b, node, v8ModuleFile())
		wall += c.CompileWallMs
		cpu += c.CompileCPUMs
		n++
	}
	b.ReportMetric(wall/float64(n), "compile-wall-ms")
	b.ReportMetric(cpu/float64(n), "compile-cpu-ms")
}

// BenchmarkV8Start is what each of Envoy's VMs pays after the compile: instantiating the
// module and running the start sequence with the example configuration.
func BenchmarkV8Start(b *testing.B) {
	node := nodePath(b)
	env := map[string]string{"ENTRA_CLIENT_SECRET": "s", "ENTRA_COOKIE_SECRET": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "USER_SYNC_SECRET": "u"}
	var inst, start float64
	n := 0
	for b.Loop() {
		s := startInV8(b, node, v8ModuleFile(), "../examples/local/plugin.json", env)
		if !s.Started {
			b.Fatalf("did not start: %s %v", s.Trap, s.Log)
		}
		inst += s.InstantiateMs
		start += s.StartMs
		n++
	}
	b.ReportMetric(inst/float64(n), "instantiate-ms")
	b.ReportMetric(start/float64(n), "start-ms")
}

// runner.js keeps the module's metrics as Envoy's stats do: one counter per name for the
// whole process, whichever worker's VM counts. Two browsers on two connections sign in
// (a worker each); each counter says two.
func TestV8RunnerCountsMetricsAcrossWorkers(t *testing.T) {
	if *engine == "wazero" {
		t.Skip("SKIPPED in the wazero pass: it tests e2e/v8/runner.js (the wazero host's metrics have tests in e2e/envoyhost)")
	}
	s := newStack(t, stackOptions{concurrency: 2, runnerArgs: []string{"-timings"}})
	v := &v8Bench{stack: s}
	for _, user := range []string{"ada@contoso.example", "grace@contoso.example"} {
		if done := s.browser().signIn("/app", user); done.status != 302 {
			t.Fatalf("%s: sign-in ended with %d", user, done.status)
		}
	}
	got := v.timings(t).Metrics
	for _, name := range []string{"entra_auth_sign_ins_started", "entra_auth_sign_ins_completed"} {
		if got[name] != 2 {
			t.Errorf("%s = %d, want 2 (all metrics: %v)", name, got[name], got)
		}
	}
}
