package sdkbinding

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// sdkModule is the SDK whose internal.ProxyWasmHost this package implements.
const sdkModule = "github.com/tetratelabs/proxy-wasm-go-sdk"

// mirrorTypes are this package's copies of the SDK's enum types (host_wasip1.go).
var mirrorTypes = map[string]string{
	"logLevel": "LogLevel", "status": "Status", "mapType": "MapType",
	"bufferType": "BufferType", "streamType": "StreamType", "metricType": "MetricType",
}

// The host is handed to the SDK by linkname (sdk_wasip1.go), as a value of this package's
// hostABI where the SDK declares its internal.ProxyWasmHost: Go checks nothing across that
// line, and the SDK calls the methods by their index in the sorted method list. So the
// two interfaces must have the same methods with the same parameter and result types
// (this package's enum copies standing for the SDK's, with the same underlying types), or
// the first host call in the VM calls the wrong function. This test reads both from
// source, so that an SDK upgrade that changes the list fails here, natively, and not in
// Envoy.
func TestHostABIMatchesTheSDKsProxyWasmHost(t *testing.T) {
	ours, ourTypes := interfaceFromFiles(t, []string{"host_wasip1.go"}, "hostABI")
	dir := sdkInternalDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("the SDK's internal package at %s: %v", dir, err)
	}
	files = slices.DeleteFunc(files, func(f string) bool { return strings.HasSuffix(f, "_test.go") })
	theirs, theirTypes := interfaceFromFiles(t, files, "ProxyWasmHost")

	if len(theirs) == 0 || len(ours) == 0 {
		t.Fatalf("found %d methods here and %d in the SDK", len(ours), len(theirs))
	}
	for name, sig := range theirs {
		mine, ok := ours[name]
		switch {
		case !ok:
			t.Errorf("the SDK's ProxyWasmHost has %s%s, which hostABI lacks", name, sig)
		case mine != sig:
			t.Errorf("%s: hostABI has %s, the SDK %s", name, mine, sig)
		}
	}
	for name := range ours {
		if _, ok := theirs[name]; !ok {
			t.Errorf("hostABI has %s, which the SDK's ProxyWasmHost lacks: the method indexes would shift", name)
		}
	}
	for mine, sdk := range mirrorTypes {
		if ourTypes[mine] == "" || ourTypes[mine] != theirTypes[sdk] {
			t.Errorf("type %s is %q here, but the SDK's %s is %q", mine, ourTypes[mine], sdk, theirTypes[sdk])
		}
	}
}

// sdkInternalDir is the SDK's proxywasm/internal directory in the module cache.
func sdkInternalDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", sdkModule).Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		t.Fatalf("go list -m %s: %v (run go mod download)", sdkModule, err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "proxywasm", "internal")
}

// interfaceFromFiles finds the interface called name in files and returns its methods'
// signatures by name (parameter names left out, this package's enum copies written with
// the SDK's names) and the underlying type of every named type declared as a basic type.
func interfaceFromFiles(t *testing.T, files []string, name string) (methods map[string]string, basic map[string]string) {
	t.Helper()
	methods, basic = map[string]string{}, map[string]string{}
	fset := token.NewFileSet()
	for _, file := range files {
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			spec, ok := n.(*ast.TypeSpec)
			if !ok {
				return true
			}
			if id, ok := spec.Type.(*ast.Ident); ok {
				basic[spec.Name.Name] = id.Name
			}
			iface, ok := spec.Type.(*ast.InterfaceType)
			if !ok || spec.Name.Name != name {
				return true
			}
			for _, m := range iface.Methods.List {
				fn, ok := m.Type.(*ast.FuncType)
				if !ok || len(m.Names) != 1 {
					t.Fatalf("%s: an embedded interface or unnamed method in %s", file, name)
				}
				methods[m.Names[0].Name] = "(" + fieldTypes(fn.Params) + ") (" + fieldTypes(fn.Results) + ")"
			}
			return false
		})
	}
	return methods, basic
}

// fieldTypes lists a field list's types, one per parameter, with the SDK's names for
// this package's enum copies.
func fieldTypes(fields *ast.FieldList) string {
	if fields == nil {
		return ""
	}
	var out []string
	for _, f := range fields.List {
		typ := typeString(f.Type)
		for range max(1, len(f.Names)) {
			out = append(out, typ)
		}
	}
	return strings.Join(out, ", ")
}

func typeString(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		if sdk, ok := mirrorTypes[e.Name]; ok {
			return sdk
		}
		return e.Name
	case *ast.StarExpr:
		return "*" + typeString(e.X)
	case *ast.SelectorExpr:
		return typeString(e.X) + "." + e.Sel.Name
	case *ast.ArrayType:
		return "[]" + typeString(e.Elt)
	}
	return "?"
}
