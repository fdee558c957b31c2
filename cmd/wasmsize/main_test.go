package main

import (
	"bytes"
	"regexp"
	"testing"

	"github.com/entra-auth/entra-auth/internal/wasmtest"
)

func TestReportSumsByPackageAndFoldsTheRest(t *testing.T) {
	nop := []byte{wasmtest.OpI32Const, 1, wasmtest.OpDrop}
	module := wasmtest.Module{Funcs: []wasmtest.Func{
		{Name: "runtime.a", Code: append(append(nop, nop...), nop...)}, // 11 bytes
		{Name: "runtime.b", Code: nop},                                 // 5
		{Name: "fmt.Println", Code: nop},                               // 5
		{Name: "strings.Cut"},                                          // 2
	}}.Build()
	var out bytes.Buffer
	if err := report(&out, "m.wasm", module, 2, 1); err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		`4 functions, 23 bytes of code`,
		`\n +16 +69\.6 +2 +runtime\n`,
		`\n +5 +21\.7 +1 +fmt\n`,
		`\n +2 +8\.7 +1 +\(1 more packages\)\n`,
		`largest functions\n +11 +47\.83 +runtime\.a\n$`,
	} {
		if !regexp.MustCompile(row).Match(out.Bytes()) {
			t.Errorf("no %q in\n%s", row, out.String())
		}
	}
}

func TestReportRefusesAModuleWithoutCode(t *testing.T) {
	if err := report(new(bytes.Buffer), "m.wasm", wasmtest.Module{}.Build(), 10, 0); err == nil {
		t.Error("a module without code was reported")
	}
	if err := report(new(bytes.Buffer), "m.wasm", []byte("not wasm"), 10, 0); err == nil {
		t.Error("a file that is no module was reported")
	}
}
