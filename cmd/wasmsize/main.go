// Command wasmsize prints where a module's code goes, by Go package, from the module's
// name section: what V8's optimizing compiler, which Envoy runs on every function at
// start-up and at each module update, has to compile. `make size` runs it on the built
// module:
//
//	go run ./cmd/wasmsize [-top N] dist/entra-auth.wasm
//
// -top also lists the N largest functions.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"

	"github.com/entra-auth/entra-auth/internal/wasmsize"
)

func main() {
	top := flag.Int("top", 0, "also list the `N` largest functions")
	packages := flag.Int("packages", 40, "list at most `N` packages (the rest are summed on one line)")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: wasmsize [-top N] [-packages N] MODULE.wasm")
		os.Exit(2)
	}
	module, err := os.ReadFile(flag.Arg(0))
	if err == nil {
		err = report(os.Stdout, flag.Arg(0), module, *packages, *top)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wasmsize:", err)
		os.Exit(1)
	}
}

func report(w io.Writer, path string, module []byte, maxPackages, top int) error {
	funcs, err := wasmsize.Functions(module)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	total := 0
	for _, f := range funcs {
		total += f.Size
	}
	if total == 0 {
		return fmt.Errorf("%s: the module defines no code", path)
	}
	fmt.Fprintf(w, "%s: %d bytes, %d functions, %d bytes of code (%.1f %%)\n\n",
		path, len(module), len(funcs), total, percent(total, len(module)))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "code bytes\t%\tfunctions\t package\t")
	pkgs := wasmsize.ByPackage(funcs)
	for i, p := range pkgs {
		if i == maxPackages {
			rest := wasmsize.Package{Path: fmt.Sprintf("(%d more packages)", len(pkgs)-i)}
			for _, q := range pkgs[i:] {
				rest.Funcs += q.Funcs
				rest.Size += q.Size
			}
			p = rest
		}
		fmt.Fprintf(tw, "%d\t%.1f\t%d\t %s\t\n", p.Size, percent(p.Size, total), p.Funcs, p.Path)
		if i == maxPackages {
			break
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if top <= 0 {
		return nil
	}
	sort.SliceStable(funcs, func(i, j int) bool { return funcs[i].Size > funcs[j].Size })
	fmt.Fprintf(w, "\nthe %d largest functions\n", min(top, len(funcs)))
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	for _, f := range funcs[:min(top, len(funcs))] {
		fmt.Fprintf(tw, "%d\t%.2f\t %s\t\n", f.Size, percent(f.Size, total), f.Name)
	}
	return tw.Flush()
}

func percent(part, whole int) float64 { return 100 * float64(part) / float64(whole) }
