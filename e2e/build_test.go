package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/entra-auth/entra-auth/internal/wasmstub"
)

// Built once for the package: the filter module and the runner binary.
var (
	moduleFile   string
	runnerFile   string
	compileCache string // wazero's compiled code, shared by in-process hosts
	// unfixedModuleFile is the module without its own poll_oneoff: what it would be
	// without the fix for Envoy 1.33's ENOSYS, for the test that shows what it costs.
	unfixedModuleFile string
	// faultModuleFile is the module built with the faultinject tag: it panics where a
	// request's x-entra-auth-fault header says (see filter/fault_inject.go).
	faultModuleFile string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "entra-auth-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	moduleFile = filepath.Join(dir, "entra-auth.wasm")
	compileCache = filepath.Join(dir, "wazero-cache")
	runnerFile = filepath.Join(dir, "wasmhost")
	build := func(env []string, args ...string) {
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %v: %v\n%s", args, err, out)
			os.Exit(1)
		}
	}
	build([]string{"GOOS=wasip1", "GOARCH=wasm"}, "-buildmode=c-shared", "-o", moduleFile, ".")
	faultModuleFile = filepath.Join(dir, "entra-auth-faultinject.wasm")
	build([]string{"GOOS=wasip1", "GOARCH=wasm"}, "-buildmode=c-shared", "-tags", "faultinject", "-o", faultModuleFile, ".")
	if raceEnabled {
		build(nil, "-race", "-o", runnerFile, "./e2e/cmd/wasmhost")
	} else {
		build(nil, "-o", runnerFile, "./e2e/cmd/wasmhost")
	}
	// What make build's wasmstub step does, and the same without the module's own
	// poll_oneoff.
	unfixedModuleFile = filepath.Join(dir, "entra-auth-unfixed.wasm")
	if err := stubModule(moduleFile, unfixedModuleFile); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := stubModule(faultModuleFile, ""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := makeTLSFiles(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// stubModule rewrites the module at path as make build does, and writes the module
// without its own poll_oneoff to unfixed, unless that is empty.
func stubModule(path, unfixed string) error {
	list, err := os.Open("../testdata/envoy-host-abi.txt")
	if err != nil {
		return err
	}
	defer list.Close()
	provided, err := wasmstub.ReadImportList(list)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	fixed, _, err := wasmstub.Stub(raw, provided)
	if err != nil {
		return err
	}
	without, _, err := wasmstub.StubOwning(raw, provided, nil)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, fixed, 0o644); err != nil || unfixed == "" {
		return err
	}
	return os.WriteFile(unfixed, without, 0o644)
}

func readModule(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(moduleFile)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
