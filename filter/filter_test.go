package filter

import (
	"strings"
	"testing"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
)

func newEmulator(t *testing.T, config string) proxytest.HostEmulator {
	t.Helper()
	opt := proxytest.NewEmulatorOption().WithVMContext(NewVMContext()).WithPluginConfiguration([]byte(config))
	host, reset := proxytest.NewHostEmulator(opt)
	t.Cleanup(reset)
	return host
}

func TestPluginStart(t *testing.T) {
	cases := []struct {
		name, config string
		want         types.OnPluginStartStatus
		wantLog      string
	}{
		{"valid", `{"tenant_id": "contoso"}`, types.OnPluginStartStatusOK, "configuration keys: [tenant_id]"},
		{"none", ``, types.OnPluginStartStatusOK, "configuration keys: []"},
		{"invalid", `{"tenant_id": `, types.OnPluginStartStatusFailed, "not valid JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			host := newEmulator(t, tc.config)
			if got := host.StartPlugin(); got != tc.want {
				t.Fatalf("StartPlugin = %v, want %v", got, tc.want)
			}
			logs := strings.Join(append(host.GetInfoLogs(), host.GetCriticalLogs()...), "\n")
			if !strings.Contains(logs, tc.wantLog) {
				t.Errorf("logs %q lack %q", logs, tc.wantLog)
			}
		})
	}
}

// Security rule: client-sent x-auth-request-* headers are removed on every request, so
// that only the filter can tell the upstream who the user is.
func TestClientSentIdentityHeadersAreRemoved(t *testing.T) {
	host := newEmulator(t, `{}`)
	if host.StartPlugin() != types.OnPluginStartStatusOK {
		t.Fatal("plugin did not start")
	}
	id := host.InitializeHttpContext()
	action := host.CallOnRequestHeaders(id, [][2]string{
		{":path", "/"}, {":method", "GET"}, {":authority", "app.example"},
		{"x-auth-request-user", "admin@contoso.com"},
		{"X-Auth-Request-Email", "admin@contoso.com"},
		{"x-auth-request-groups", "admins"},
		{"x-auth-request-user", "second copy"},
		{"x-auth-requested", "not ours"},
		{"accept", "text/html"},
	}, true)
	if action != types.ActionContinue {
		t.Fatalf("action %v, want Continue", action)
	}
	for _, h := range host.GetCurrentRequestHeaders(id) {
		if strings.HasPrefix(strings.ToLower(h[0]), IdentityHeaderPrefix) {
			t.Errorf("client-sent %s: %s reached the upstream", h[0], h[1])
		}
	}
	kept := map[string]bool{}
	for _, h := range host.GetCurrentRequestHeaders(id) {
		kept[h[0]] = true
	}
	for _, name := range []string{":path", "accept", "x-auth-requested"} {
		if !kept[name] {
			t.Errorf("%s was removed too", name)
		}
	}
}

func TestIsIdentityHeader(t *testing.T) {
	for name, want := range map[string]bool{
		"x-auth-request-user": true, "X-AUTH-REQUEST-EMAIL": true, "x-auth-request-": true,
		"x-auth-requested": false, "x-auth-request": false, "authorization": false, "": false,
	} {
		if got := isIdentityHeader(name); got != want {
			t.Errorf("isIdentityHeader(%q) = %v, want %v", name, got, want)
		}
	}
}
