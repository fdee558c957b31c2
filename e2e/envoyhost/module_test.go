package envoyhost

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/internal/wasmtest"
)

// A few hand-made modules test what the host refuses, byte by byte, without a compiler.

// minimalFuncs makes a module Envoy accepts: an ABI version and an allocator.
func minimalFuncs(extra ...wasmtest.Func) []wasmtest.Func {
	return append([]wasmtest.Func{
		{Export: "proxy_abi_version_0_2_1"},
		{Export: "proxy_on_memory_allocate", Params: []byte{wasmtest.I32}, Results: []byte{wasmtest.I32}, Code: []byte{wasmtest.OpI32Const, 0x80, 0x08}}, // 1024
	}, extra...)
}

func buildWasm(imports []wasmtest.Import, funcs []wasmtest.Func) []byte {
	return wasmtest.Module{Imports: imports, Funcs: funcs}.Build()
}

func TestNewRefusesWhatEnvoyWouldNotLoad(t *testing.T) {
	tickImport := wasmtest.Import{Module: "env", Name: "proxy_set_tick_period_milliseconds", Params: []byte{wasmtest.I32}, Results: []byte{wasmtest.I32}}
	cases := []struct {
		name    string
		module  []byte
		wantErr []string
	}{
		{
			name: "import Envoy lacks",
			module: buildWasm([]wasmtest.Import{
				{Module: "env", Name: "proxy_get_shared_data_keys", Params: []byte{wasmtest.I32, wasmtest.I32}, Results: []byte{wasmtest.I32}},
				{Module: "wasi_snapshot_preview1", Name: "fd_pread", Params: []byte{wasmtest.I32, wasmtest.I32, wasmtest.I32, wasmtest.I64, wasmtest.I32}, Results: []byte{wasmtest.I32}},
			}, minimalFuncs()),
			wantErr: []string{"env.proxy_get_shared_data_keys", "wasi_snapshot_preview1.fd_pread", "does not provide"},
		},
		{
			name:    "no ABI version",
			module:  buildWasm(nil, minimalFuncs()[1:]),
			wantErr: []string{"proxy_abi_version_0_2_1"},
		},
		{
			name:    "no allocator",
			module:  buildWasm(nil, minimalFuncs()[:1]),
			wantErr: []string{"malloc"},
		},
		{
			name: "host call during _initialize",
			module: buildWasm([]wasmtest.Import{tickImport}, minimalFuncs(wasmtest.Func{
				Export: "_initialize", Code: []byte{wasmtest.OpI32Const, 10, wasmtest.OpCall, 0, wasmtest.OpDrop},
			})),
			wantErr: []string{"env.proxy_set_tick_period_milliseconds", "_initialize"},
		},
		{
			name: "plugin start refused by proxy_on_configure",
			module: buildWasm(nil, minimalFuncs(wasmtest.Func{
				Export: "proxy_on_configure", Params: []byte{wasmtest.I32, wasmtest.I32}, Results: []byte{wasmtest.I32}, Code: []byte{wasmtest.OpI32Const, 0},
			})),
			wantErr: []string{"proxy_on_configure returned false"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(context.Background(), Config{Module: tc.module, Log: func(Log) {}})
			if err == nil {
				h.Close(context.Background())
				t.Fatal("New succeeded; want the module refused")
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// A module that exports no callbacks is a filter that lets everything through, as in
// Envoy (a missing callback means Continue).
func TestModuleWithoutCallbacksPassesRequestsThrough(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream saw "+r.URL.Path)
	}))
	defer upstream.Close()
	h, err := New(context.Background(), Config{Module: buildWasm(nil, minimalFuncs()), Upstream: upstream.URL, Log: func(Log) {}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/through")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "upstream saw /through" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

// The host must offer exactly Envoy 1.33's imports: one more and a module tested here
// could fail to load in Envoy; one fewer and a module Envoy loads could fail here.
func TestProvidedImportsAreEnvoys(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "testdata", "envoy-host-abi.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := sc.Text(); line != "" && !strings.HasPrefix(line, "#") {
			want = append(want, line)
		}
	}
	var got []string
	for _, f := range hostFuncs() {
		got = append(got, f.module+"\t"+f.name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("provided imports differ from testdata/envoy-host-abi.txt\n got: %q\nwant: %q", got, want)
	}
}

// While the host runs the module's allocator, Envoy 1.33 lets it call only proxy_log,
// fd_write and clock_time_get (WasmBase::allocMemory); the newest Envoy adds
// poll_oneoff. Anything else traps the VM, and the error names the import.
func TestAllocatorMayCallOnlyWhatEnvoyAllows(t *testing.T) {
	wasi := func(name string, params int) wasmtest.Import {
		return wasmtest.Import{Module: "wasi_snapshot_preview1", Name: name, Params: i32Params(params), Results: []byte{wasmtest.I32}}
	}
	getBuffer := wasmtest.Import{Module: "env", Name: "proxy_get_buffer_bytes", Params: i32Params(5), Results: []byte{wasmtest.I32}}
	for _, tc := range []struct {
		name    string
		callee  wasmtest.Import
		args    []byte // instructions pushing the callee's arguments
		release Release
		trap    bool
	}{
		{"clock_time_get", wasmtest.Import{Module: "wasi_snapshot_preview1", Name: "clock_time_get",
			Params: []byte{wasmtest.I32, 0x7e, wasmtest.I32}, Results: []byte{wasmtest.I32}},
			[]byte{wasmtest.OpI32Const, 1, 0x42, 0, wasmtest.OpI32Const, 16}, Envoy133, false},
		{"random_get", wasi("random_get", 2), []byte{wasmtest.OpI32Const, 16, wasmtest.OpI32Const, 4}, Envoy133, true},
		{"poll_oneoff on 1.33", wasi("poll_oneoff", 4), fourArgs, Envoy133, true},
		{"poll_oneoff on the newest", wasi("poll_oneoff", 4), fourArgs, EnvoyNewest, false},
		{"proxy_get_shared_data", wasmtest.Import{Module: "env", Name: "proxy_get_shared_data", Params: i32Params(5), Results: []byte{wasmtest.I32}},
			append(fourArgs, wasmtest.OpI32Const, 0), EnvoyNewest, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// proxy_on_vm_start reads the VM configuration, so the host allocates; the
			// allocator calls the import under test, then answers address 1024.
			allocator := append(append([]byte{}, tc.args...), wasmtest.OpCall, 1, wasmtest.OpDrop, wasmtest.OpI32Const, 0x80, 0x08)
			module := buildWasm([]wasmtest.Import{getBuffer, tc.callee}, []wasmtest.Func{
				{Export: "proxy_abi_version_0_2_1"},
				{Export: "proxy_on_memory_allocate", Params: []byte{wasmtest.I32}, Results: []byte{wasmtest.I32}, Code: allocator},
				{Export: "proxy_on_vm_start", Params: []byte{wasmtest.I32, wasmtest.I32}, Results: []byte{wasmtest.I32}, Code: []byte{
					wasmtest.OpI32Const, bufferVMConfiguration, wasmtest.OpI32Const, 0, wasmtest.OpI32Const, 3,
					wasmtest.OpI32Const, 0, wasmtest.OpI32Const, 4, wasmtest.OpCall, 0, wasmtest.OpDrop, wasmtest.OpI32Const, 1}},
			})
			h, err := New(context.Background(), Config{Module: module, Envoy: tc.release, VMConfiguration: []byte("abc"), Log: func(Log) {}})
			if h != nil {
				h.Close(context.Background())
			}
			switch {
			case tc.trap && err == nil:
				t.Fatalf("%s inside the allocator was allowed on Envoy %s", tc.callee.Name, tc.release)
			case tc.trap && !strings.Contains(err.Error(), tc.callee.Name+" called inside proxy_on_memory_allocate"):
				t.Fatalf("error %q does not name the import", err)
			case !tc.trap && err != nil:
				t.Fatalf("%s inside the allocator was refused on Envoy %s: %v", tc.callee.Name, tc.release, err)
			}
		})
	}
}

var fourArgs = []byte{wasmtest.OpI32Const, 16, wasmtest.OpI32Const, 32, wasmtest.OpI32Const, 1, wasmtest.OpI32Const, 48}

func i32Params(n int) []byte { return slices.Repeat([]byte{wasmtest.I32}, n) }
