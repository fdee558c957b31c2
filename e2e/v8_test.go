package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	tb.Skip("SKIPPED: no Node.js, so the module is not compiled in V8 (install Debian's nodejs; .ci/run does)")
	return ""
}

// compileInV8 compiles module in a fresh Node process with Envoy's V8 flags, checking its
// imports against Envoy 1.33's.
func compileInV8(tb testing.TB, node, module string) v8Compile {
	tb.Helper()
	args := append(append([]string(nil), envoyV8Flags...), "v8/compile.js", module, "../testdata/envoy-host-abi.txt")
	out, err := exec.Command(node, args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			tb.Fatalf("V8 with Envoy's flags refused %s: %v\n%s", module, err, ee.Stderr)
		}
		tb.Fatal(err)
	}
	var c v8Compile
	if err := json.Unmarshal(out, &c); err != nil {
		tb.Fatalf("compile.js said %q: %v", out, err)
	}
	return c
}

// The module Envoy loads must validate and compile in V8 as Envoy compiles it, importing
// nothing Envoy 1.33 lacks: wazero accepting it says nothing of V8.
func TestModuleCompilesInV8AsEnvoyDoes(t *testing.T) {
	c := compileInV8(t, nodePath(t), moduleFile)
	t.Logf("Node %s (V8 %s), TurboFan only: %d bytes compiled in %.0f ms wall, %.0f ms CPU",
		c.Node, c.V8, c.ModuleBytes, c.CompileWallMs, c.CompileCPUMs)
}

// The import check must be able to fail: with proxy_http_call left out of the host's
// list, the module is refused, naming it. (V8's default lazy compilation here: the check
// needs the module's imports, not its code.)
func TestV8CompileRefusesAnImportEnvoyLacks(t *testing.T) {
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

// BenchmarkV8Compile is Envoy's start-up cost per module load: TurboFan compiling the
// whole module in Node's V8 with Envoy's flags, a fresh process each time.
func BenchmarkV8Compile(b *testing.B) {
	node := nodePath(b)
	var wall, cpu float64
	n := 0
	for b.Loop() {
		c := compileInV8(b, node, moduleFile)
		wall += c.CompileWallMs
		cpu += c.CompileCPUMs
		n++
	}
	b.ReportMetric(wall/float64(n), "compile-wall-ms")
	b.ReportMetric(cpu/float64(n), "compile-cpu-ms")
}
