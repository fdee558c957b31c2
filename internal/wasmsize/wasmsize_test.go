package wasmsize

import (
	"errors"
	"testing"

	"github.com/entra-auth/entra-auth/internal/wasmtest"
)

func TestFunctionsNamesAndSizesEveryBody(t *testing.T) {
	module := wasmtest.Module{
		Imports: []wasmtest.Import{
			{Module: "env", Name: "proxy_log", Params: []byte{wasmtest.I32, wasmtest.I32, wasmtest.I32}, Results: []byte{wasmtest.I32}},
			{Module: "env", Name: "proxy_done", Results: []byte{wasmtest.I32}},
		},
		Funcs: []wasmtest.Func{
			{Name: "runtime.mallocgc", Code: []byte{wasmtest.OpI32Const, 1, wasmtest.OpDrop}},
			{Name: "github.com/tidwall/gjson.Get", Code: []byte{}},
			{Code: []byte{wasmtest.OpI32Const, 2, wasmtest.OpDrop, wasmtest.OpI32Const, 3, wasmtest.OpDrop}},
		},
	}.Build()
	funcs, err := Functions(module)
	if err != nil {
		t.Fatal(err)
	}
	// A body is its locals vector (one byte here), its instructions and the final end.
	want := []Func{
		{Index: 2, Name: "runtime.mallocgc", Size: 1 + 3 + 1},
		{Index: 3, Name: "github.com/tidwall/gjson.Get", Size: 1 + 0 + 1},
		{Index: 4, Name: "func[4]", Size: 1 + 6 + 1},
	}
	if len(funcs) != len(want) {
		t.Fatalf("got %d functions, want %d: %+v", len(funcs), len(want), funcs)
	}
	for i := range want {
		if funcs[i] != want[i] {
			t.Errorf("function %d: got %+v, want %+v", i, funcs[i], want[i])
		}
	}
}

func TestFunctionsRefusesWhatIsNotAModule(t *testing.T) {
	good := wasmtest.Module{Funcs: []wasmtest.Func{{Name: "main.main"}}}.Build()
	for name, module := range map[string][]byte{
		"empty":         nil,
		"text":          []byte("(module)"),
		"cut in a body": good[:len(good)-20],
		"huge length":   append(append([]byte(nil), good[:8]...), 10, 0xff, 0xff, 0xff, 0xff, 0x0f),
	} {
		if _, err := Functions(module); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: got %v, want ErrMalformed", name, err)
		}
	}
}

func TestPackageOf(t *testing.T) {
	for _, tc := range []struct{ symbol, want string }{
		{"runtime.mallocgc", "runtime"},
		{"crypto_internal_fips140_nistec.__P256Point_.Add", "crypto_internal_fips140_nistec"},
		{"github.com_golang_jwt_jwt_v5.__Parser_.ParseWithClaims", "github.com_golang_jwt_jwt_v5"},
		{"github.com_entra_auth_entra_auth_flow.__Flow_.Route.func1", "github.com_entra_auth_entra_auth_flow"},
		{"google.golang.org_protobuf_proto.Marshal", "google.golang.org_protobuf_proto"},
		{"vendor_golang.org_x_crypto_chacha20.newUnauthenticatedCipher", "vendor_golang.org_x_crypto_chacha20"},
		{"slices.Sort__github.com_tidwall_gjson.Result_", "slices"},
		{"internal_abi.__Type_.Kind", "internal_abi"},
		{"runtime.wasm_export_resume", "runtime"},
		{"type_.eq._2_interface__", "(types)"},
		{"func[12]", "(other)"},
		{"_start", "(other)"},
		{".text", "(other)"},
	} {
		if got := PackageOf(tc.symbol); got != tc.want {
			t.Errorf("PackageOf(%q) = %q, want %q", tc.symbol, got, tc.want)
		}
	}
}

func TestByPackageSumsLargestFirst(t *testing.T) {
	got := ByPackage([]Func{
		{Name: "runtime.a", Size: 10},
		{Name: "fmt.Println", Size: 30},
		{Name: "runtime.b", Size: 25},
		{Name: "func[9]", Size: 1},
	})
	want := []Package{{"runtime", 2, 35}, {"fmt", 1, 30}, {"(other)", 1, 1}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

func FuzzFunctions(f *testing.F) {
	f.Add(wasmtest.Module{Funcs: []wasmtest.Func{{Name: "main.main", Code: []byte{wasmtest.OpI32Const, 1, wasmtest.OpDrop}}}}.Build())
	f.Add([]byte("\x00asm\x01\x00\x00\x00\x00\x05\x04name"))
	f.Fuzz(func(t *testing.T, module []byte) {
		funcs, err := Functions(module)
		if err != nil {
			return
		}
		total := 0
		for _, fn := range funcs {
			if fn.Size < 0 || fn.Name == "" {
				t.Fatalf("function %+v", fn)
			}
			total += fn.Size
		}
		if total > len(module) {
			t.Fatalf("bodies of %d bytes in a module of %d", total, len(module))
		}
	})
}
