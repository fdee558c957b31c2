// Command floor is the least a Proxy-Wasm filter built like entra-auth can do per
// request: the proxy-wasm Go SDK bound by sdkbinding, the request headers read, the
// request let through. BenchmarkV8Floor measures it in V8 beside the filter: what a
// request costs before the filter does any work of its own.
package main

import (
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	_ "github.com/entra-auth/entra-auth/sdkbinding"
)

func init() { proxywasm.SetVMContext(&vm{}) }

type vm struct{ types.DefaultVMContext }

func (*vm) NewPluginContext(uint32) types.PluginContext { return &plugin{} }

type plugin struct{ types.DefaultPluginContext }

func (*plugin) NewHttpContext(uint32) types.HttpContext { return &stream{} }

type stream struct{ types.DefaultHttpContext }

// OnHttpRequestHeaders reads the headers, as any auth filter must, and lets the request go.
func (*stream) OnHttpRequestHeaders(int, bool) types.Action {
	if _, err := proxywasm.GetHttpRequestHeaders(); err != nil {
		return types.ActionPause
	}
	return types.ActionContinue
}

func main() {}
