// Command entra-auth is the Proxy-Wasm module that Envoy and Istio load: Microsoft Entra ID
// sign-in as an HTTP filter. Build it with `make build`, which runs
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o dist/entra-auth.wasm .
//
// The module is a WASI reactor: the host runs _initialize (and so init below), never main.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"

	"github.com/entra-auth/entra-auth/filter"
	_ "github.com/entra-auth/entra-auth/sdkbinding" // exports the ABI and installs the host under wasip1
)

func init() {
	proxywasm.SetVMContext(filter.NewVMContext())
}

func main() {}
