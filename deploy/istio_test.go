package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	extensionsv1alpha1 "istio.io/api/extensions/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	"sigs.k8s.io/yaml"

	"github.com/entra-auth/entra-auth/config"
)

// istioSpecs are the Istio kinds the manifests use, with the proto message of their spec
// (istio.io/api's v1 and v1beta1 kinds share the v1alpha3 and v1beta1 messages).
var istioSpecs = map[string]func() proto.Message{
	"WasmPlugin":          func() proto.Message { return &extensionsv1alpha1.WasmPlugin{} },
	"ServiceEntry":        func() proto.Message { return &networkingv1alpha3.ServiceEntry{} },
	"DestinationRule":     func() proto.Message { return &networkingv1alpha3.DestinationRule{} },
	"AuthorizationPolicy": func() proto.Message { return &securityv1beta1.AuthorizationPolicy{} },
}

// object is one Kubernetes manifest.
type object struct {
	file       string
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       map[string]any `json:"spec"`
	raw        map[string]any
	spec       proto.Message // for Istio kinds
}

func (o *object) name() string { s, _ := o.Metadata["name"].(string); return s }

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)

// readManifests reads every YAML document of the files and checks each Istio object as
// the API server would: a served apiVersion of the kind, a name, the CRD's schema (but for
// CEL rules); and its spec strictly into istio.io/api's proto, as istiod reads it.
func readManifests(files map[string][]byte) ([]*object, error) {
	crds, err := istioCRDs()
	if err != nil {
		return nil, err
	}
	var objects []*object
	var problems []string
	for file, text := range files {
		for _, doc := range splitYAML(text) {
			js, err := yaml.YAMLToJSON(doc)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			o := &object{file: file}
			if err := json.Unmarshal(js, o); err != nil {
				return nil, fmt.Errorf("%s: %w", file, err)
			}
			_ = json.Unmarshal(js, &o.raw)
			where := fmt.Sprintf("%s: %s %s", file, o.Kind, o.name())
			if !dnsLabel.MatchString(o.name()) {
				problems = append(problems, where+": metadata.name must be a DNS label")
			}
			newSpec, isIstio := istioSpecs[o.Kind]
			if !isIstio {
				objects = append(objects, o)
				continue
			}
			def, served := crds[o.APIVersion+" "+o.Kind]
			if !served {
				problems = append(problems, fmt.Sprintf("%s: Istio serves no %s in %s", where, o.Kind, o.APIVersion))
				continue
			}
			body := map[string]any{} // the schema leaves apiVersion, kind and metadata to Kubernetes
			for k, v := range o.raw {
				if k != "apiVersion" && k != "kind" && k != "metadata" {
					body[k] = v
				}
			}
			for _, p := range def.schema.validate(body, "") {
				problems = append(problems, where+": "+p)
			}
			specJSON, _ := json.Marshal(o.Spec)
			o.spec = newSpec()
			if err := (protojson.UnmarshalOptions{}).Unmarshal(specJSON, o.spec); err != nil {
				problems = append(problems, fmt.Sprintf("%s: spec: %v", where, err))
			}
			objects = append(objects, o)
		}
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, errors.New(strings.Join(problems, "\n"))
	}
	return objects, nil
}

// checkIstio checks the manifests together: the WasmPlugin's configuration passes the
// filter's parser with the VM environment it declares; every variable it takes from the
// proxy (valueFrom: HOST) is set on the istio-proxy container of the selected workload;
// each outbound|PORT||HOST cluster it names is a port of a ServiceEntry (or a Kubernetes
// service), and the external ones get TLS from a DestinationRule.
func checkIstio(files map[string][]byte) error {
	objects, err := readManifests(files)
	if err != nil {
		return err
	}
	var plugin *extensionsv1alpha1.WasmPlugin
	for _, o := range objects {
		if p, ok := o.spec.(*extensionsv1alpha1.WasmPlugin); ok {
			plugin = p
		}
	}
	if plugin == nil {
		return errors.New("no WasmPlugin")
	}
	if plugin.GetPhase() != extensionsv1alpha1.PluginPhase_AUTHN {
		return fmt.Errorf("WasmPlugin phase is %v; sign-in must run in AUTHN, before authorization", plugin.GetPhase())
	}
	switch plugin.GetFailStrategy() {
	case extensionsv1alpha1.FailStrategy_FAIL_RELOAD:
	case extensionsv1alpha1.FailStrategy_FAIL_OPEN:
		return errors.New("WasmPlugin failStrategy FAIL_OPEN lets requests through unauthenticated when the module fails")
	default:
		return fmt.Errorf("WasmPlugin failStrategy is %v; want FAIL_RELOAD: closed while a VM is down, and a new VM after a panic the filter could not recover", plugin.GetFailStrategy())
	}
	fromProxy := map[string]bool{}
	inline := map[string]string{}
	for _, e := range plugin.GetVmConfig().GetEnv() {
		if e.GetValueFrom() == extensionsv1alpha1.EnvValueSource_HOST {
			fromProxy[e.GetName()] = true
		} else {
			inline[e.GetName()] = e.GetValue()
		}
	}
	configJSON, err := protojson.Marshal(plugin.GetPluginConfig())
	if err != nil {
		return err
	}
	cfg, err := config.Parse(configJSON, func(name string) (string, bool) {
		if v, ok := inline[name]; ok {
			return v, true
		}
		if fromProxy[name] {
			return "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", true // 32 bytes, base64
		}
		return "", false
	})
	if err != nil {
		return fmt.Errorf("WasmPlugin pluginConfig: %w", err)
	}

	// The selected workload's istio-proxy container must have every HOST variable.
	labels := plugin.GetSelector().GetMatchLabels()
	for _, o := range objects {
		if o.Kind != "Deployment" || !selects(labels, o.raw) {
			continue
		}
		have := proxyEnv(o.raw)
		for name := range fromProxy {
			if !have[name] {
				return fmt.Errorf("%s: Deployment %s: its istio-proxy container does not set %s, which the WasmPlugin takes from the proxy", o.file, o.name(), name)
			}
		}
	}

	if err := checkIstioAnalyzerRules(objects); err != nil {
		return err
	}

	// Clusters.
	clusters := map[string]string{"idp_cluster": cfg.IDPCluster}
	if cfg.GraphCluster != "" {
		clusters["graph_cluster"] = cfg.GraphCluster
	}
	if cfg.UserSync != nil {
		clusters["user_sync.cluster"] = cfg.UserSync.Cluster
	}
	for key, cluster := range clusters {
		if err := checkMeshCluster(objects, key, cluster); err != nil {
			return err
		}
	}
	return nil
}

// httpOnlyOperation are the fields of an AuthorizationPolicy operation that only HTTP
// traffic has.
var httpOnlyOperation = []string{"hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"}

// checkIstioAnalyzerRules holds the manifests to two rules of Istio's own analyzers
// (istioctl validate / analyze), which accept the files but warn:
//   - a DENY rule whose operation has only HTTP fields denies all traffic to the TCP
//     ports under its scope (Istio cannot match an HTTP field on TCP, and a DENY fails
//     closed); naming the ports in the operation confines it to them;
//   - a Deployment's pod template without the app and version labels, which Istio's
//     telemetry keys on.
func checkIstioAnalyzerRules(objects []*object) error {
	for _, o := range objects {
		switch o.Kind {
		case "AuthorizationPolicy":
			if o.Spec["action"] != "DENY" {
				continue
			}
			rules, _ := o.Spec["rules"].([]any)
			for i, r := range rules {
				to, _ := dig(r, "to").([]any)
				for _, op := range to {
					op, _ := dig(op, "operation").(map[string]any)
					http := slices.ContainsFunc(httpOnlyOperation, func(k string) bool { return op[k] != nil })
					if http && op["ports"] == nil {
						return fmt.Errorf("%s: AuthorizationPolicy %s: rules[%d] is a DENY on HTTP fields only, which denies all traffic to TCP ports under its scope; name the HTTP port in to.operation.ports", o.file, o.name(), i)
					}
				}
			}
		case "Deployment":
			labels, _ := dig(o.raw, "spec", "template", "metadata", "labels").(map[string]any)
			for _, l := range []string{"app", "version"} {
				if labels[l] == nil {
					return fmt.Errorf("%s: Deployment %s: its pod template lacks the %q label, which Istio's telemetry expects (app and version)", o.file, o.name(), l)
				}
			}
		}
	}
	return nil
}

// selects reports whether a Deployment's pod labels carry every selector label.
func selects(selector map[string]string, deployment map[string]any) bool {
	labels, _ := dig(deployment, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// proxyEnv lists the variables the pod template sets on its istio-proxy container.
func proxyEnv(deployment map[string]any) map[string]bool {
	env := map[string]bool{}
	containers, _ := dig(deployment, "spec", "template", "spec", "containers").([]any)
	for _, c := range containers {
		c, _ := c.(map[string]any)
		if c["name"] != "istio-proxy" {
			continue
		}
		vars, _ := c["env"].([]any)
		for _, v := range vars {
			if v, ok := v.(map[string]any); ok {
				env[fmt.Sprint(v["name"])] = true
			}
		}
	}
	return env
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

var meshCluster = regexp.MustCompile(`^outbound\|(\d+)\|[^|]*\|(.+)$`)

// checkMeshCluster checks that cluster is one Istio creates: a Kubernetes service's, or a
// ServiceEntry's port, in which case a DestinationRule must originate TLS to it.
func checkMeshCluster(objects []*object, key, cluster string) error {
	m := meshCluster.FindStringSubmatch(cluster)
	if m == nil {
		return fmt.Errorf("%s is %q; inside the mesh a cluster is named outbound|PORT||HOST", key, cluster)
	}
	port, host := m[1], m[2]
	if strings.HasSuffix(host, ".svc.cluster.local") {
		return nil // a Kubernetes service: Istio makes its clusters
	}
	for _, o := range objects {
		se, ok := o.spec.(*networkingv1alpha3.ServiceEntry)
		if !ok || !slices.Contains(se.GetHosts(), host) {
			continue
		}
		for _, p := range se.GetPorts() {
			if fmt.Sprint(p.GetNumber()) != port {
				continue
			}
			if p.GetProtocol() != "HTTP" {
				return fmt.Errorf("%s: ServiceEntry %s port %s is %s; the filter's calls are plain HTTP, so declare it HTTP and originate TLS with a DestinationRule", key, o.name(), port, p.GetProtocol())
			}
			return checkTLSOrigination(objects, key, host)
		}
	}
	return fmt.Errorf("%s is %q, but no ServiceEntry has host %s with port %s", key, cluster, host, port)
}

func checkTLSOrigination(objects []*object, key, host string) error {
	for _, o := range objects {
		dr, ok := o.spec.(*networkingv1alpha3.DestinationRule)
		if !ok || dr.GetHost() != host {
			continue
		}
		tls := dr.GetTrafficPolicy().GetTls()
		if tls.GetMode() != networkingv1alpha3.ClientTLSSettings_SIMPLE || tls.GetSni() != host || !slices.Contains(tls.GetSubjectAltNames(), host) {
			return fmt.Errorf("%s: DestinationRule %s must originate TLS (mode SIMPLE) with sni and subjectAltNames %s", key, o.name(), host)
		}
		return nil
	}
	return fmt.Errorf("%s: no DestinationRule originates TLS to %s", key, host)
}

func readIstioFiles(t *testing.T) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob("istio/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests in deploy/istio: %v", err)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		if files[p], err = os.ReadFile(p); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

func TestIstioManifests(t *testing.T) {
	if err := checkIstio(readIstioFiles(t)); err != nil {
		t.Fatalf("deploy/istio:\n%v", err)
	}
}

// The checks above must be able to fail: each change breaks the manifests in a way the
// API server, istiod or the filter would refuse.
func TestIstioCheckerRefuses(t *testing.T) {
	files := readIstioFiles(t)
	for _, tc := range []struct{ name, file, old, new, want string }{
		{"unknown field", "istio/wasmplugin.yaml", "  imagePullPolicy: IfNotPresent", "  imagePullPolicy: IfNotPresent\n  pullPolicy: Always", `unknown field "pullPolicy"`},
		{"bad enum", "istio/wasmplugin.yaml", "phase: AUTHN", "phase: AUTHENTICATE", "AUTHENTICATE"},
		{"wrong phase", "istio/wasmplugin.yaml", "phase: AUTHN", "phase: STATS", "AUTHN"},
		{"fail open", "istio/wasmplugin.yaml", "failStrategy: FAIL_RELOAD", "failStrategy: FAIL_OPEN", "FAIL_OPEN"},
		{"no reload", "istio/wasmplugin.yaml", "failStrategy: FAIL_RELOAD", "failStrategy: FAIL_CLOSE", "want FAIL_RELOAD"},
		{"unserved version", "istio/serviceentry.yaml", "networking.istio.io/v1", "networking.istio.io/v2", "serves no ServiceEntry"},
		{"schema pattern", "istio/wasmplugin.yaml", "imagePullPolicy: IfNotPresent", "imagePullPolicy: IfNotPresent\n  sha256: xyz", "sha256"},
		{"bad plugin configuration", "istio/wasmplugin.yaml", "client_id: 6731de76", "clientid: 6731de76", "clientid"},
		{"variable not on the proxy", "istio/secrets.yaml", "        - name: ENTRA_COOKIE_SECRET", "        - name: ENTRA_COOKIE_SECRET_X", "does not set ENTRA_COOKIE_SECRET"},
		{"cluster not in the mesh", "istio/wasmplugin.yaml", "idp_cluster: outbound|443||login.microsoftonline.com", "idp_cluster: entra", "outbound|PORT||HOST"},
		{"port not declared", "istio/serviceentry.yaml", "number: 443", "number: 8443", "no ServiceEntry"},
		{"DENY on HTTP fields for every port", "istio/usersync.yaml", "        ports: [\"8000\"]\n", "", "name the HTTP port"},
		{"pods without a version label", "istio/secrets.yaml", "        version: v1\n", "", `lacks the "version" label`},
		{"no TLS origination", "istio/destinationrule.yaml", "mode: SIMPLE\n      sni: login.microsoftonline.com", "mode: DISABLE\n      sni: login.microsoftonline.com", "originate TLS"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := map[string][]byte{}
			for k, v := range files {
				broken[k] = v
			}
			text := string(files[tc.file])
			if !strings.Contains(text, tc.old) {
				t.Fatalf("%s no longer contains %q: update the test", tc.file, tc.old)
			}
			broken[tc.file] = []byte(strings.Replace(text, tc.old, tc.new, 1))
			err := checkIstio(broken)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}
