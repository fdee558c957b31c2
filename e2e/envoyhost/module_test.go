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
