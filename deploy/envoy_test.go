package deploy

import (
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	wasmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/wasm/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/wrapperspb"
	"sigs.k8s.io/yaml"

	"github.com/entra-auth/entra-auth/config"

	// The typed configurations envoy.yaml names, so that every Any resolves.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
)

// envoyBootstrap reads a YAML bootstrap as Envoy does: strictly (an unknown field is an
// error), with every typed config resolved, then Envoy's validation rules, all through.
func envoyBootstrap(yamlText []byte) (*bootstrapv3.Bootstrap, error) {
	js, err := yaml.YAMLToJSON(yamlText)
	if err != nil {
		return nil, fmt.Errorf("YAML: %w", err)
	}
	var b bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, &b); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := checkMessage(b.ProtoReflect(), "bootstrap"); err != nil {
		return nil, err
	}
	return &b, nil
}

// wasmPlugin is what the bootstrap gives the filter: its configuration and the VM's
// environment variables (by name; host_env_keys have no value here).
type wasmPlugin struct {
	config        string
	failurePolicy wasmv3.FailurePolicy
	runtime       string
	code          string
	hostEnv       []string
	inlineEnv     map[string]string
}

// envoyWasmPlugin finds the entra-auth filter in the bootstrap's listeners, and the
// clusters its routes send to; it checks the filter runs before the router.
func envoyWasmPlugin(b *bootstrapv3.Bootstrap) (*wasmPlugin, []string, error) {
	var found *wasmPlugin
	var routeClusters []string
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().UnmarshalTo(&hcm) != nil {
					continue
				}
				for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						if c := r.GetRoute().GetCluster(); c != "" {
							routeClusters = append(routeClusters, c)
						}
					}
				}
				filters := hcm.GetHttpFilters()
				if n := len(filters); n == 0 || filters[n-1].GetName() != "envoy.filters.http.router" {
					return nil, nil, fmt.Errorf("listener %s: the last HTTP filter must be envoy.filters.http.router", l.GetName())
				}
				for i, hf := range filters {
					if hf.GetName() == "envoy.filters.http.router" && i != len(filters)-1 {
						return nil, nil, fmt.Errorf("listener %s: envoy.filters.http.router is terminal and must be the last filter, after the wasm filter", l.GetName())
					}
					var w wasmfilterv3.Wasm
					if hf.GetTypedConfig().UnmarshalTo(&w) != nil {
						continue
					}
					var config wrapperspb.StringValue
					if err := w.GetConfig().GetConfiguration().UnmarshalTo(&config); err != nil {
						return nil, nil, fmt.Errorf("listener %s: the plugin configuration must be a google.protobuf.StringValue holding JSON: %w", l.GetName(), err)
					}
					if err := checkEdgeListener(&hcm); err != nil {
						return nil, nil, fmt.Errorf("listener %s: %w", l.GetName(), err)
					}
					vm := w.GetConfig().GetVmConfig()
					found = &wasmPlugin{
						config: config.GetValue(), failurePolicy: w.GetConfig().GetFailurePolicy(), runtime: vm.GetRuntime(), code: vm.GetCode().GetLocal().GetFilename(),
						hostEnv: vm.GetEnvironmentVariables().GetHostEnvKeys(), inlineEnv: vm.GetEnvironmentVariables().GetKeyValues(),
					}
				}
			}
		}
	}
	if found == nil {
		return nil, nil, errors.New("no envoy.filters.http.wasm filter in any listener")
	}
	return found, routeClusters, nil
}

// checkEdgeListener checks the connection manager settings that back the filter up at
// the edge: use_remote_address, so that a client cannot choose the :scheme the callback
// URL is built from; underscores in header names refused, so that no X_Auth_Request_*
// spelling reaches an application; paths normalized and encoded slashes refused (the
// filter does both itself too).
func checkEdgeListener(hcm *hcmv3.HttpConnectionManager) error {
	if !hcm.GetUseRemoteAddress().GetValue() {
		return errors.New("use_remote_address must be true: the listener is the edge, and Envoy must not take :scheme from a client's X-Forwarded-Proto")
	}
	if a := hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); a != corev3.HttpProtocolOptions_REJECT_REQUEST {
		return fmt.Errorf("common_http_protocol_options.headers_with_underscores_action is %v; want REJECT_REQUEST, so that X_Auth_Request_* spellings never reach an application", a)
	}
	if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() {
		return errors.New("normalize_path and merge_slashes must be true: paths are judged as the upstream reads them")
	}
	if a := hcm.GetPathWithEscapedSlashesAction(); a != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		return fmt.Errorf("path_with_escaped_slashes_action is %v; want REJECT_REQUEST: servers disagree on what an encoded slash means", a)
	}
	return nil
}

// vmEnv is the VM's environment as the filter would see it: host keys get a value that
// passes for any secret (a 32-byte base64 key), inline ones their own.
func (p *wasmPlugin) vmEnv(name string) (string, bool) {
	if v, ok := p.inlineEnv[name]; ok {
		return v, true
	}
	if slices.Contains(p.hostEnv, name) {
		return base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef")), true
	}
	return "", false
}

// checkEnvoyFile runs every check on a production bootstrap: Envoy's API, the filter's
// own configuration parser, the clusters both name, and TLS to Entra ID and Graph.
func checkEnvoyFile(yamlText []byte) error {
	b, _, cfg, err := checkBootstrap(yamlText)
	if err != nil {
		return err
	}
	if err := checkTLSCluster(b, cfg.IDPCluster, "login.microsoftonline.com"); err != nil {
		return err
	}
	if cfg.GraphCluster != "" {
		return checkTLSCluster(b, cfg.GraphCluster, "graph.microsoft.com")
	}
	return nil
}

// checkBootstrap runs the checks every bootstrap of ours must pass, and returns what it
// read: the bootstrap, the filter's entry and its parsed configuration.
func checkBootstrap(yamlText []byte) (*bootstrapv3.Bootstrap, *wasmPlugin, *config.Config, error) {
	b, err := envoyBootstrap(yamlText)
	if err != nil {
		return nil, nil, nil, err
	}
	plugin, routeClusters, err := envoyWasmPlugin(b)
	if err != nil {
		return nil, nil, nil, err
	}
	if plugin.runtime != "envoy.wasm.runtime.v8" {
		return nil, nil, nil, fmt.Errorf("vm_config.runtime is %q; Envoy's release builds run Wasm with envoy.wasm.runtime.v8", plugin.runtime)
	}
	if plugin.failurePolicy != wasmv3.FailurePolicy_FAIL_RELOAD {
		return nil, nil, nil, fmt.Errorf("failure_policy is %v; want FAIL_RELOAD (Envoy 1.33 and later): closed while a VM is down, and a new VM after a panic the filter could not recover", plugin.failurePolicy)
	}
	if !strings.HasSuffix(plugin.code, "entra-auth.wasm") {
		return nil, nil, nil, fmt.Errorf("vm_config.code loads %q, not entra-auth.wasm", plugin.code)
	}
	cfg, err := config.Parse([]byte(plugin.config), plugin.vmEnv)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the plugin configuration: %w", err)
	}
	clusters := map[string]bool{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = true
	}
	for key, name := range namedClusters(cfg, routeClusters) {
		if !clusters[name] {
			return nil, nil, nil, fmt.Errorf("%s names cluster %q, which the bootstrap does not define", key, name)
		}
	}
	return b, plugin, cfg, nil
}

// namedClusters maps what names a cluster (a configuration key, "a route") to the name.
func namedClusters(cfg *config.Config, routeClusters []string) map[string]string {
	named := map[string]string{"idp_cluster": cfg.IDPCluster}
	if cfg.GraphCluster != "" {
		named["graph_cluster"] = cfg.GraphCluster
	}
	if cfg.UserSync != nil {
		named["user_sync.cluster"] = cfg.UserSync.Cluster
	}
	for i, c := range routeClusters {
		named[fmt.Sprintf("route %d", i+1)] = c
	}
	return named
}

// checkTLSCluster checks that cluster reaches host over TLS with SNI and a verified
// certificate for that name.
func checkTLSCluster(b *bootstrapv3.Bootstrap, cluster, host string) error {
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != cluster {
			continue
		}
		var tls tlsv3.UpstreamTlsContext
		if err := c.GetTransportSocket().GetTypedConfig().UnmarshalTo(&tls); err != nil {
			return fmt.Errorf("cluster %s: no TLS transport socket: %w", cluster, err)
		}
		vc := tls.GetCommonTlsContext().GetValidationContext()
		if tls.GetSni() != host || vc.GetTrustedCa() == nil || len(vc.GetMatchTypedSubjectAltNames()) == 0 {
			return fmt.Errorf("cluster %s: want SNI %s, a trusted CA and a subject alt name to match; have %v", cluster, host, &tls)
		}
		return nil
	}
	return fmt.Errorf("no cluster %s", cluster)
}

func TestEnvoyBootstrap(t *testing.T) {
	text, err := os.ReadFile("envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkEnvoyFile(text); err != nil {
		t.Fatalf("deploy/envoy/envoy.yaml: %v", err)
	}
}

// The checks above must be able to fail: each change here breaks the bootstrap in a way
// Envoy or the filter would refuse.
func TestEnvoyBootstrapCheckerRefuses(t *testing.T) {
	text, err := os.ReadFile("envoy/envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown field", "stat_prefix: https", "stat_prefix: https\n          no_such_field: 1", "no_such_field"},
		{"unknown typed config", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", "type.googleapis.com/envoy.extensions.filters.http.router.v3.Routerr", "Routerr"},
		{"validation rule", "connect_timeout: 5s", "connect_timeout: -5s", "ConnectTimeout"},
		{"rule inside a typed config", "stat_prefix: https", `stat_prefix: ""`, "StatPrefix"},
		{"deprecated field", "failure_policy: FAIL_RELOAD", "fail_open: true", "deprecated"},
		{"fail open", "failure_policy: FAIL_RELOAD", "failure_policy: FAIL_OPEN", "failure_policy"},
		{"no reload", "failure_policy: FAIL_RELOAD", "failure_policy: FAIL_CLOSED", "FAIL_RELOAD"},
		{"secret not given to the VM", "host_env_keys: [ENTRA_CLIENT_SECRET, ENTRA_COOKIE_SECRET, USER_SYNC_SECRET]", "host_env_keys: [ENTRA_CLIENT_SECRET, USER_SYNC_SECRET]", "ENTRA_COOKIE_SECRET is not set"},
		{"bad plugin configuration", `"skip_paths": ["/healthz"],`, `"skip_path": ["/healthz"],`, "skip_path"},
		{"missing cluster", `"cluster": "user_sync",`, `"cluster": "users",`, `cluster "users"`},
		{"router first", "          - name: envoy.filters.http.wasm", "          - name: envoy.filters.http.router\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n          - name: envoy.filters.http.wasm", "must be the last filter"},
		{"no SNI", "sni: login.microsoftonline.com", "sni: example.com", "SNI"},
		{"not the edge", "use_remote_address: true", "use_remote_address: false", "use_remote_address"},
		{"underscores allowed", "headers_with_underscores_action: REJECT_REQUEST", "headers_with_underscores_action: ALLOW", "headers_with_underscores_action"},
		{"paths not normalized", "normalize_path: true", "normalize_path: false", "normalize_path"},
		{"slashes not merged", "merge_slashes: true", "merge_slashes: false", "merge_slashes"},
		{"escaped slashes kept", "path_with_escaped_slashes_action: REJECT_REQUEST", "path_with_escaped_slashes_action: KEEP_UNCHANGED", "path_with_escaped_slashes_action"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(text), tc.old) {
				t.Fatalf("envoy.yaml no longer contains %q: update the test", tc.old)
			}
			broken := strings.Replace(string(text), tc.old, tc.new, 1)
			err := checkEnvoyFile([]byte(broken))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}
