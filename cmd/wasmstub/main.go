// Command wasmstub rewrites a module built by the standard Go compiler so that it runs in
// every Envoy from 1.33 on: poll_oneoff, which older Envoy answers ENOSYS (and Go's runtime
// then dies), and imports of WASI file functions that Envoy 1.33 lacks (and that nothing
// calls) become functions inside the module answering as later Envoy releases do.
// `make build` runs it after go build:
//
//	go run ./cmd/wasmstub -imports testdata/envoy-host-abi.txt dist/entra-auth.wasm
//
// It rewrites the file in place, says which imports it replaced, and fails on any missing
// import it cannot safely replace. See package internal/wasmstub.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/entra-auth/entra-auth/internal/wasmstub"
)

func main() {
	list := flag.String("imports", "testdata/envoy-host-abi.txt", "the host's imports, one module<TAB>name per line")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: wasmstub [-imports FILE] MODULE.wasm")
		os.Exit(2)
	}
	if err := run(*list, flag.Arg(0)); err != nil {
		fmt.Fprintln(os.Stderr, "wasmstub:", err)
		os.Exit(1)
	}
}

func run(listPath, modulePath string) error {
	f, err := os.Open(listPath)
	if err != nil {
		return err
	}
	provided, err := wasmstub.ReadImportList(f)
	f.Close()
	if err != nil {
		return err
	}
	module, err := os.ReadFile(modulePath)
	if err != nil {
		return err
	}
	out, names, err := wasmstub.Stub(module, provided)
	if err != nil {
		return fmt.Errorf("%s: %w", modulePath, err)
	}
	for _, n := range names {
		why := "absent from Envoy 1.33, never called"
		if _, owned := wasmstub.Owned[n]; owned {
			why = "answered by the module itself, as Envoy's newest host does: older ones answer ENOSYS"
		}
		fmt.Printf("wasmstub: %s: replaced the import %s (%s)\n", modulePath, n, why)
	}
	if len(names) == 0 {
		return nil
	}
	return os.WriteFile(modulePath, out, 0o644)
}
