package wasmstub

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/entra-auth/entra-auth/internal/wasmtest"
)

const i32 = wasmtest.I32

var fiveI32 = []byte{i32, i32, i32, i32, i32}

// testModule imports env.a, the stubbable path_filestat_get, and env.b, so that the
// removed import sits between two kept ones. Its functions call each import directly,
// one calls through a table, and one calls another defined function.
func testModule(extra ...wasmtest.Import) []byte {
	args := []byte{wasmtest.OpI32Const, 1, wasmtest.OpI32Const, 2, wasmtest.OpI32Const, 3, wasmtest.OpI32Const, 4, wasmtest.OpI32Const, 5}
	m := wasmtest.Module{
		Imports: append([]wasmtest.Import{
			{Module: "env", Name: "a", Results: []byte{i32}},
			{Module: "wasi_snapshot_preview1", Name: "path_filestat_get", Params: fiveI32, Results: []byte{i32}},
			{Module: "env", Name: "b", Results: []byte{i32}},
		}, extra...),
		Funcs: []wasmtest.Func{
			{Export: "call_a", Results: []byte{i32}, Code: []byte{wasmtest.OpCall, 0}},
			{Export: "call_stub", Results: []byte{i32}, Code: append(args, wasmtest.OpCall, 1)},
			{Export: "call_b", Results: []byte{i32}, Code: []byte{wasmtest.OpCall, 2}},
			// call_both: call_a() + call_b() through defined functions (indices 3+extra and 5+extra)
			{Export: "via_table", Results: []byte{i32}, Code: []byte{wasmtest.OpI32Const, 1, wasmtest.OpCallIndir, 4, 0}},
		},
	}
	n := uint32(len(m.Imports))
	m.Funcs = append(m.Funcs, wasmtest.Func{Export: "call_defined", Results: []byte{i32},
		Code: []byte{wasmtest.OpCall, byte(n), wasmtest.OpCall, byte(n + 2), wasmtest.OpI32Add}})
	m.Table = []uint32{n + 0, 2} // slot 0: call_a, slot 1: env.b
	return m.Build()
}

// run instantiates a module against env.a = 10, env.b = 20 and a real path_filestat_get
// (which must no longer be called) and calls fn.
func run(t *testing.T, module []byte, fn string) uint64 {
	t.Helper()
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	constant := func(v uint64) api.GoModuleFunc {
		return func(_ context.Context, _ api.Module, s []uint64) { s[0] = v }
	}
	b := r.NewHostModuleBuilder("env")
	b.NewFunctionBuilder().WithGoModuleFunction(constant(10), nil, []api.ValueType{api.ValueTypeI32}).Export("a")
	b.NewFunctionBuilder().WithGoModuleFunction(constant(20), nil, []api.ValueType{api.ValueTypeI32}).Export("b")
	if _, err := b.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	w := r.NewHostModuleBuilder("wasi_snapshot_preview1")
	w.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {
		t.Error("the original path_filestat_get was called")
	}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).Export("path_filestat_get")
	if _, err := w.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, module)
	if err != nil {
		t.Fatal(err)
	}
	out, err := mod.ExportedFunction(fn).Call(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return out[0]
}

var envoyLike = map[string]bool{"env.a": true, "env.b": true}

func TestStubReplacesTheImportAndKeepsEverythingElse(t *testing.T) {
	original := testModule()
	stubbed, names, err := Stub(original, envoyLike)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "wasi_snapshot_preview1.path_filestat_get" {
		t.Fatalf("stubbed %v", names)
	}
	for _, tc := range []struct {
		fn   string
		want uint64
	}{
		{"call_a", 10}, {"call_b", 20}, {"call_stub", 58}, {"via_table", 20}, {"call_defined", 30},
	} {
		if got := run(t, stubbed, tc.fn); got != tc.want {
			t.Errorf("%s = %d, want %d", tc.fn, got, tc.want)
		}
		if tc.fn != "call_stub" && run(t, original, tc.fn) != tc.want {
			t.Errorf("%s differs in the original", tc.fn)
		}
	}
	ctx := context.Background()
	compiled, err := wazero.NewRuntime(ctx).CompileModule(ctx, stubbed)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range compiled.ImportedFunctions() {
		if m, n, _ := f.Import(); !envoyLike[m+"."+n] {
			t.Errorf("still imports %s.%s", m, n)
		}
	}
}

func TestStubRefusesWhatItCannotReplace(t *testing.T) {
	for name, im := range map[string]wasmtest.Import{
		"a proxy function":           {Module: "env", Name: "proxy_get_shared_data_keys", Results: []byte{i32}},
		"a WASI function not listed": {Module: "wasi_snapshot_preview1", Name: "sock_accept", Params: []byte{i32, i32, i32}, Results: []byte{i32}},
	} {
		if _, _, err := Stub(testModule(im), envoyLike); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), im.Name) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestStubLeavesACompliantModuleAlone(t *testing.T) {
	m := testModule()
	provided := map[string]bool{"env.a": true, "env.b": true, "wasi_snapshot_preview1.path_filestat_get": true}
	out, names, err := Stub(m, provided)
	if err != nil || names != nil || !bytes.Equal(out, m) {
		t.Fatalf("changed: %v %v", names, err)
	}
}

func TestReadImportList(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "envoy-host-abi.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set, err := ReadImportList(f)
	if err != nil || !set["env.proxy_http_call"] || !set["wasi_snapshot_preview1.fd_write"] || set["wasi_snapshot_preview1.path_filestat_get"] {
		t.Fatalf("%d entries, %v", len(set), err)
	}
	if _, err := ReadImportList(strings.NewReader("env proxy_log\n")); err == nil {
		t.Error("a line without a tab was accepted")
	}
}

func FuzzStub(f *testing.F) {
	f.Add(testModule())
	f.Add([]byte("\x00asm\x01\x00\x00\x00"))
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x02\x05\x01\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, module []byte) {
		out, names, err := Stub(module, envoyLike)
		if err != nil {
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %v is not ErrUnsupported", err)
			}
			return
		}
		if names == nil && !bytes.Equal(out, module) {
			t.Fatal("changed a module that needed no stub")
		}
	})
}

// The module's own poll_oneoff replaces the host's even where the host provides one: it
// stores 0 events and answers success, as proxy-wasm-cpp-host does from 94091cd on,
// where Envoy 1.33 to 1.38 answer ENOSYS (and Go's runtime throws).
func TestStubOwnsPollOneoffWhateverTheHostProvides(t *testing.T) {
	const (
		opI32Load  = 0x28
		opI32Store = 0x36
	)
	four := []byte{i32, i32, i32, i32}
	module := wasmtest.Module{
		Imports: []wasmtest.Import{
			{Module: "env", Name: "a", Results: []byte{i32}},
			{Module: "wasi_snapshot_preview1", Name: "poll_oneoff", Params: four, Results: []byte{i32}},
		},
		Funcs: []wasmtest.Func{
			// poll: store 7 at address 32, then poll_oneoff(0, 0, 1, 32)
			{Export: "poll", Results: []byte{i32}, Code: []byte{
				wasmtest.OpI32Const, 32, wasmtest.OpI32Const, 7, opI32Store, 2, 0,
				wasmtest.OpI32Const, 0, wasmtest.OpI32Const, 0, wasmtest.OpI32Const, 1, wasmtest.OpI32Const, 32,
				wasmtest.OpCall, 1}},
			{Export: "nevents", Results: []byte{i32}, Code: []byte{wasmtest.OpI32Const, 32, opI32Load, 2, 0}},
			{Export: "call_a", Results: []byte{i32}, Code: []byte{wasmtest.OpCall, 0}},
		},
	}.Build()
	provided := map[string]bool{"env.a": true, "wasi_snapshot_preview1.poll_oneoff": true}
	stubbed, names, err := Stub(module, provided)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != 1 || names[0] != "wasi_snapshot_preview1.poll_oneoff" {
		t.Fatalf("replaced %v, want poll_oneoff alone", names)
	}

	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	b := r.NewHostModuleBuilder("env")
	b.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, s []uint64) { s[0] = 10 }),
		nil, []api.ValueType{api.ValueTypeI32}).Export("a")
	if _, err := b.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	w := r.NewHostModuleBuilder("wasi_snapshot_preview1")
	w.NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, _ api.Module, s []uint64) {
		t.Error("the host's poll_oneoff was called")
		s[0] = 52 // ENOSYS, as Envoy 1.33 answers
	}), []api.ValueType{api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32, api.ValueTypeI32}, []api.ValueType{api.ValueTypeI32}).Export("poll_oneoff")
	if _, err := w.Instantiate(ctx); err != nil {
		t.Fatal(err)
	}
	mod, err := r.Instantiate(ctx, stubbed)
	if err != nil {
		t.Fatal(err)
	}
	call := func(fn string) uint64 {
		out, err := mod.ExportedFunction(fn).Call(ctx)
		if err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
		return out[0]
	}
	if got := call("poll"); got != 0 {
		t.Errorf("poll_oneoff answered errno %d, want 0 (success)", got)
	}
	if got := call("nevents"); got != 0 {
		t.Errorf("poll_oneoff left nevents = %d, want 0", got)
	}
	if got := call("call_a"); got != 10 {
		t.Errorf("call_a = %d after the rewrite, want 10", got)
	}
	compiled, err := r.CompileModule(ctx, stubbed)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range compiled.ImportedFunctions() {
		if m, n, _ := f.Import(); m+"."+n != "env.a" {
			t.Errorf("still imports %s.%s", m, n)
		}
	}
}

func TestStubRefusesAPollOneoffOfAnotherType(t *testing.T) {
	module := wasmtest.Module{Imports: []wasmtest.Import{
		{Module: "wasi_snapshot_preview1", Name: "poll_oneoff", Params: []byte{i32, i32}, Results: []byte{i32}},
	}}.Build()
	if _, _, err := Stub(module, map[string]bool{"wasi_snapshot_preview1.poll_oneoff": true}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("err = %v, want ErrUnsupported", err)
	}
}
