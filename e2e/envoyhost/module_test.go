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
)

// A few hand-made modules test what the host refuses, byte by byte, without a compiler.

type wasmImport struct {
	module, name    string
	params, results []byte
}

type wasmFunc struct {
	export          string
	params, results []byte
	code            []byte // instructions, without the final end
}

const (
	wasmI32 = 0x7f
	opCall  = 0x10
	opDrop  = 0x1a
	opConst = 0x41
)

// buildWasm assembles a module with the given imports and functions and one exported
// memory. Function indices count imports first.
func buildWasm(imports []wasmImport, funcs []wasmFunc) []byte {
	var types, importSec, funcSec, exportSec, codeSec []byte
	nTypes := 0
	addType := func(params, results []byte) int {
		types = append(types, 0x60)
		types = append(types, vec(params)...)
		types = append(types, vec(results)...)
		nTypes++
		return nTypes - 1
	}
	for _, im := range imports {
		t := addType(im.params, im.results)
		importSec = append(importSec, name(im.module)...)
		importSec = append(importSec, name(im.name)...)
		importSec = append(importSec, 0x00, byte(t))
	}
	nExports := 1
	exportSec = append(name("memory"), 0x02, 0x00)
	for i, f := range funcs {
		t := addType(f.params, f.results)
		funcSec = append(funcSec, byte(t))
		body := append([]byte{0x00}, f.code...) // no locals
		body = append(body, 0x0b)
		codeSec = append(codeSec, uleb(len(body))...)
		codeSec = append(codeSec, body...)
		if f.export != "" {
			exportSec = append(exportSec, name(f.export)...)
			exportSec = append(exportSec, 0x00, byte(len(imports)+i))
			nExports++
		}
	}
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	out = append(out, section(1, nTypes, types)...)
	out = append(out, section(2, len(imports), importSec)...)
	out = append(out, section(3, len(funcs), funcSec)...)
	out = append(out, section(5, 1, []byte{0x00, 0x01})...) // one memory, one page
	out = append(out, section(7, nExports, exportSec)...)
	out = append(out, section(10, len(funcs), codeSec)...)
	return out
}

func uleb(n int) []byte {
	var out []byte
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

func vec(items []byte) []byte { return append(uleb(len(items)), items...) }

func name(s string) []byte { return append(uleb(len(s)), s...) }

func section(id byte, count int, content []byte) []byte {
	body := append(uleb(count), content...)
	return append(append([]byte{id}, uleb(len(body))...), body...)
}

// minimalFuncs makes a module Envoy accepts: an ABI version and an allocator.
func minimalFuncs(extra ...wasmFunc) []wasmFunc {
	return append([]wasmFunc{
		{export: "proxy_abi_version_0_2_1"},
		{export: "proxy_on_memory_allocate", params: []byte{wasmI32}, results: []byte{wasmI32}, code: []byte{opConst, 0x80, 0x08}}, // 1024
	}, extra...)
}

func TestNewRefusesWhatEnvoyWouldNotLoad(t *testing.T) {
	tickImport := wasmImport{"env", "proxy_set_tick_period_milliseconds", []byte{wasmI32}, []byte{wasmI32}}
	cases := []struct {
		name    string
		module  []byte
		wantErr []string
	}{
		{
			name: "import Envoy lacks",
			module: buildWasm([]wasmImport{
				{"env", "proxy_get_shared_data_keys", []byte{wasmI32, wasmI32}, []byte{wasmI32}},
				{"wasi_snapshot_preview1", "fd_pread", []byte{wasmI32, wasmI32, wasmI32, 0x7e, wasmI32}, []byte{wasmI32}},
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
			module: buildWasm([]wasmImport{tickImport}, minimalFuncs(wasmFunc{
				export: "_initialize", code: []byte{opConst, 10, opCall, 0, opDrop},
			})),
			wantErr: []string{"env.proxy_set_tick_period_milliseconds", "_initialize"},
		},
		{
			name: "plugin start refused by proxy_on_configure",
			module: buildWasm(nil, minimalFuncs(wasmFunc{
				export: "proxy_on_configure", params: []byte{wasmI32, wasmI32}, results: []byte{wasmI32}, code: []byte{opConst, 0},
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
