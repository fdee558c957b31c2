// Command entra-auth is the Proxy-Wasm module that Envoy and Istio load: Microsoft Entra ID
// sign-in as an HTTP filter. Build it with `make build`, which runs
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o dist/entra-auth.wasm .
//
// The module is a WASI reactor: the host runs _initialize (and so init below), never main.
package main

import (
	"os"
	"runtime/debug"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/entra-auth/entra-auth/filter"
	_ "github.com/entra-auth/entra-auth/sdkbinding" // exports the ABI and installs the host under wasip1
)

func init() {
	// Envoy runs one VM per worker, and a VM's memory never shrinks: a heap goal of 50%
	// over live data (instead of Go's 100%) keeps each VM near 7 MiB where it would grow
	// to 10, at no measurable cost per request. GOGC in the VM's environment overrides it.
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(50)
	}
	proxywasm.SetVMContext(filter.NewVMContext())
}

func main() {}
