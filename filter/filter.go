package filter

import (
	"strings"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

// IdentityHeaderPrefix starts every header the filter sets to tell the upstream who the
// user is. Copies sent by a client are removed from every request.
const IdentityHeaderPrefix = "x-auth-request-"

// NewVMContext returns the root of the filter's context tree, for proxywasm.SetVMContext.
func NewVMContext() types.VMContext { return &vmContext{} }

type vmContext struct {
	types.DefaultVMContext
}

func (*vmContext) NewPluginContext(uint32) types.PluginContext { return &pluginContext{} }

type pluginContext struct {
	types.DefaultPluginContext
	config Config
}

func (p *pluginContext) OnPluginStart(configurationSize int) types.OnPluginStartStatus {
	var data []byte
	if configurationSize > 0 {
		var err error
		data, err = proxywasm.GetPluginConfiguration()
		if err != nil {
			proxywasm.LogCriticalf("entra-auth: cannot read the plugin configuration: %v", err)
			return types.OnPluginStartStatusFailed
		}
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		proxywasm.LogCriticalf("entra-auth: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.config = cfg
	proxywasm.LogInfof("entra-auth: started; configuration keys: [%s]", strings.Join(cfg.Keys, ", "))
	return types.OnPluginStartStatusOK
}

func (p *pluginContext) NewHttpContext(uint32) types.HttpContext { return &httpContext{} }

type httpContext struct {
	types.DefaultHttpContext
}

func (h *httpContext) OnHttpRequestHeaders(int, bool) types.Action {
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		// Without the headers the filter cannot guarantee that no forged identity
		// reaches the upstream: fail closed.
		proxywasm.LogErrorf("entra-auth: cannot read request headers: %v", err)
		_ = proxywasm.SendHttpResponse(500, nil, []byte("entra-auth: cannot read request headers\n"), -1)
		return types.ActionPause
	}
	for _, h := range headers {
		if isIdentityHeader(h[0]) {
			if err := proxywasm.RemoveHttpRequestHeader(h[0]); err != nil {
				proxywasm.LogErrorf("entra-auth: cannot remove client-sent header %s: %v", h[0], err)
				_ = proxywasm.SendHttpResponse(500, nil, []byte("entra-auth: cannot remove a client-sent identity header\n"), -1)
				return types.ActionPause
			}
		}
	}
	return types.ActionContinue
}

// isIdentityHeader reports whether name (as the host gives it, lower-case) is one of the
// headers only this filter may set.
func isIdentityHeader(name string) bool {
	return len(name) >= len(IdentityHeaderPrefix) && strings.EqualFold(name[:len(IdentityHeaderPrefix)], IdentityHeaderPrefix)
}
