package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/entra-auth/entra-auth/internal/wasmstub"
)

// envoyImports reads testdata/envoy-host-abi.txt: what Envoy 1.33+ gives a module.
func envoyImports(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "envoy-host-abi.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set, err := wasmstub.ReadImportList(f)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// buildModule builds the filter as `make build` does: go build, then the stub step. It
// fails if the stub step replaces anything but the one import known to be dead code and
// poll_oneoff, which the module answers itself (see internal/wasmstub).
func buildModule(t *testing.T) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "entra-auth.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	stubbed, names, err := wasmstub.Stub(b, envoyImports(t))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "wasi_snapshot_preview1.path_filestat_get,wasi_snapshot_preview1.poll_oneoff" {
		t.Errorf("the stub step replaced %v; review any new import before accepting it", names)
	}
	return stubbed
}

const i32 = api.ValueTypeI32

// envoyCalls are the exports Envoy calls on an HTTP filter, with the ABI 0.2.1 signature
// each must have (proxy-wasm-cpp-host checks them when it loads the module).
var envoyCalls = map[string]struct{ params, results int }{
	"_initialize":                 {0, 0},
	"proxy_abi_version_0_2_1":     {0, 0},
	"proxy_on_memory_allocate":    {1, 1},
	"proxy_on_context_create":     {2, 0},
	"proxy_on_vm_start":           {2, 1},
	"proxy_on_configure":          {2, 1},
	"proxy_on_request_headers":    {3, 1},
	"proxy_on_request_body":       {3, 1},
	"proxy_on_request_trailers":   {2, 1},
	"proxy_on_response_headers":   {3, 1},
	"proxy_on_http_call_response": {5, 0},
	"proxy_on_tick":               {1, 0},
	"proxy_on_queue_ready":        {2, 0},
	"proxy_on_done":               {1, 1},
	"proxy_on_delete":             {1, 0},
}

// skippedCalls are the callbacks the filter handles no differently from Continue, which
// the module must not export: Envoy then skips them (proxy-wasm-cpp-host src/context.cc,
// ContextBase::onResponseBody, onResponseTrailers and onLog return early when the export
// is absent), where each export would cost a call into the module on every stream.
var skippedCalls = []string{"proxy_on_response_body", "proxy_on_response_trailers", "proxy_on_log", "proxy_on_new_connection"}

// The module must load in Envoy 1.33+: it may import only what Envoy provides, and it
// must export every callback the filter needs, with the ABI's signature, and no other.
func TestModuleFitsEnvoysABI(t *testing.T) {
	module := buildModule(t)
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	compiled, err := r.CompileModule(ctx, module)
	if err != nil {
		t.Fatal(err)
	}
	allowed := envoyImports(t)
	for _, f := range compiled.ImportedFunctions() {
		module, name, _ := f.Import()
		if !allowed[module+"."+name] {
			t.Errorf("the module imports %s.%s, which Envoy does not provide: it would fail to load", module, name)
		}
	}
	exports := compiled.ExportedFunctions()
	for name, want := range envoyCalls {
		f, ok := exports[name]
		if !ok {
			t.Errorf("the module does not export %s", name)
			continue
		}
		if !allI32(f.ParamTypes(), want.params) || !allI32(f.ResultTypes(), want.results) {
			t.Errorf("%s has signature %v -> %v, want %d i32 -> %d i32", name, f.ParamTypes(), f.ResultTypes(), want.params, want.results)
		}
	}
	for _, name := range skippedCalls {
		if _, ok := exports[name]; ok {
			t.Errorf("the module exports %s, which the filter does not handle: Envoy would call it on every stream for nothing (see sdkbinding/optional)", name)
		}
	}
	if _, ok := compiled.ExportedMemories()["memory"]; !ok {
		t.Error("the module does not export its memory")
	}
	// The fault-injection build is for tests only (filter/fault_inject.go).
	if bytes.Contains(module, []byte("faultinject build")) {
		t.Error("the release module contains the fault-injection code")
	}
	// Envoy 1.33 to 1.38 answer poll_oneoff ENOSYS and forbid it inside the allocator;
	// Go's runtime calls it at every collection's start. The module must not import it.
	for _, f := range compiled.ImportedFunctions() {
		if module, name, _ := f.Import(); module+"."+name == "wasi_snapshot_preview1.poll_oneoff" {
			t.Error("the module imports poll_oneoff: it dies on Envoy 1.33 at a garbage collection")
		}
	}
}

func allI32(types []api.ValueType, n int) bool {
	return len(types) == n && !slices.ContainsFunc(types, func(v api.ValueType) bool { return v != i32 })
}
