package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Built once for the package: the filter module and the runner binary.
var (
	moduleFile   string
	runnerFile   string
	compileCache string // wazero's compiled code, shared by in-process hosts
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
	build(nil, "-o", runnerFile, "./e2e/cmd/wasmhost")
	stub := exec.Command("go", "run", "./cmd/wasmstub", "-imports", "testdata/envoy-host-abi.txt", moduleFile)
	stub.Dir = ".."
	if out, err := stub.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "%v\n%s", err, out)
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

func readModule(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(moduleFile)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
