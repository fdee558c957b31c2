package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
)

// checkLocalEnvoyFile runs the checks on the top-level envoy.yaml, the bootstrap for
// trying a real Envoy against what `make run` starts: every check a bootstrap of ours must
// pass; the plugin configuration `make run` uses (examples/local/plugin.json, as JSON);
// every cluster at the address `make run` serves it on (the Makefile's defaults); and,
// since it speaks plain HTTP, listeners on loopback only.
func checkLocalEnvoyFile(yamlText, pluginJSON, makefile []byte) error {
	b, plugin, cfg, err := checkBootstrap(yamlText)
	if err != nil {
		return err
	}
	if !sameJSON([]byte(plugin.config), pluginJSON) {
		return fmt.Errorf("the plugin configuration differs from examples/local/plugin.json, which `make run` uses:\n%s", plugin.config)
	}
	for _, l := range b.GetStaticResources().GetListeners() {
		addr := l.GetAddress().GetSocketAddress().GetAddress()
		if ip := net.ParseIP(addr); ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("listener %s is on %q: a plain-HTTP listener must be on loopback only", l.GetName(), addr)
		}
	}
	if cfg.UserSync == nil {
		return fmt.Errorf("the plugin configuration has no user_sync, which `make run` serves")
	}
	defaults := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(APP|IDP|USERS)\s*\?=\s*(\S+)$`).FindAllSubmatch(makefile, -1) {
		defaults[string(m[1])] = string(m[2])
	}
	want := map[string]string{cfg.IDPCluster: defaults["IDP"], cfg.UserSync.Cluster: defaults["USERS"], "app": defaults["APP"]}
	if cfg.GraphCluster != "" {
		want[cfg.GraphCluster] = defaults["IDP"] // the mock answers Graph's calls too
	}
	for cluster, addr := range want {
		if addr == "" {
			return fmt.Errorf("the Makefile gives no default address for cluster %s", cluster)
		}
		got, err := clusterAddress(b, cluster)
		if err != nil {
			return err
		}
		if got != addr {
			return fmt.Errorf("cluster %s reaches %s; `make run` serves it on %s", cluster, got, addr)
		}
	}
	return nil
}

// clusterAddress is the one endpoint of a static cluster, as host:port.
func clusterAddress(b *bootstrapv3.Bootstrap, name string) (string, error) {
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != name {
			continue
		}
		var addrs []string
		for _, e := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range e.GetLbEndpoints() {
				sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
				addrs = append(addrs, net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(sa.GetPortValue()))))
			}
		}
		if len(addrs) != 1 {
			return "", fmt.Errorf("cluster %s has endpoints %v; want one", name, addrs)
		}
		return addrs[0], nil
	}
	return "", fmt.Errorf("no cluster %s", name)
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

func readLocalFiles(t *testing.T) (yamlText, pluginJSON, makefile []byte) {
	t.Helper()
	var err error
	for path, into := range map[string]*[]byte{"../envoy.yaml": &yamlText, "../examples/local/plugin.json": &pluginJSON, "../Makefile": &makefile} {
		if *into, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	}
	return yamlText, pluginJSON, makefile
}

func TestLocalEnvoyBootstrap(t *testing.T) {
	yamlText, pluginJSON, makefile := readLocalFiles(t)
	if err := checkLocalEnvoyFile(yamlText, pluginJSON, makefile); err != nil {
		t.Fatalf("envoy.yaml: %v", err)
	}
}

func TestLocalEnvoyBootstrapCheckerRefuses(t *testing.T) {
	yamlText, pluginJSON, makefile := readLocalFiles(t)
	for _, tc := range []struct{ name, old, new, want string }{
		{"listens beyond loopback", "address: 127.0.0.1, port_value: 10000", "address: 0.0.0.0, port_value: 10000", "loopback"},
		{"configuration drifted", `"skip_paths": ["/healthz"],`, `"skip_paths": ["/healthz", "/public/*"],`, "examples/local/plugin.json"},
		{"wrong port", "port_value: 9002", "port_value: 9003", "cluster users reaches 127.0.0.1:9003"},
		{"fail open", "failure_policy: FAIL_RELOAD", "failure_policy: FAIL_OPEN", "failure_policy"},
		{"underscores allowed", "headers_with_underscores_action: REJECT_REQUEST", "headers_with_underscores_action: ALLOW", "headers_with_underscores_action"},
		{"missing cluster", `"cluster": "users",`, `"cluster": "user_sync",`, `cluster "user_sync"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(yamlText), tc.old) {
				t.Fatalf("envoy.yaml no longer contains %q: update the test", tc.old)
			}
			broken := strings.Replace(string(yamlText), tc.old, tc.new, 1)
			err := checkLocalEnvoyFile([]byte(broken), pluginJSON, makefile)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}
