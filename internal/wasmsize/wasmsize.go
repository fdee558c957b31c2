// Package wasmsize tells where a WebAssembly module's code goes: the size of every
// function body, named from the module's name section, and those sizes summed by Go
// package. V8's optimizing compiler, which Envoy uses for every function, takes time in
// proportion to code, so this is the map for making the module start faster.
package wasmsize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// ErrMalformed is returned for a module that cannot be read as WebAssembly 1.0.
var ErrMalformed = errors.New("wasmsize: malformed module")

// Func is one function defined in the module.
type Func struct {
	Index uint32 // function index: imports count first
	Name  string // from the name section; "func[N]" when it has none
	Size  int    // bytes of its body in the code section (locals and instructions)
}

// Package is the code of one Go package (or one group of names that are not Go symbols).
type Package struct {
	Path  string
	Funcs int
	Size  int
}

// Functions lists every function the module defines, in index order.
func Functions(module []byte) ([]Func, error) {
	magic := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	if !bytes.HasPrefix(module, magic) {
		return nil, fmt.Errorf("%w: no WebAssembly 1.0 header", ErrMalformed)
	}
	r := reader{b: module[len(magic):]}
	var imported uint32
	var funcs []Func
	names := map[uint32]string{}
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		body := reader{b: r.bytes(int(r.u32()))}
		if r.err != nil {
			break
		}
		switch id {
		case 2: // import section
			imported, r.err = countFunctionImports(body)
		case 10: // code section
			for n := body.u32(); n > 0 && body.err == nil; n-- {
				size := int(body.u32())
				body.bytes(size)
				funcs = append(funcs, Func{Size: size})
			}
			r.err = body.err
		case 0: // custom section: only "name" matters
			if body.name() == "name" && body.err == nil {
				readFunctionNames(body, names)
			}
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	for i := range funcs {
		funcs[i].Index = imported + uint32(i)
		funcs[i].Name = names[funcs[i].Index]
		if funcs[i].Name == "" {
			funcs[i].Name = fmt.Sprintf("func[%d]", funcs[i].Index)
		}
	}
	return funcs, nil
}

// ByPackage sums functions by Go package, largest first.
func ByPackage(funcs []Func) []Package {
	byPath := map[string]*Package{}
	for _, f := range funcs {
		path := PackageOf(f.Name)
		p := byPath[path]
		if p == nil {
			p = &Package{Path: path}
			byPath[path] = p
		}
		p.Funcs++
		p.Size += f.Size
	}
	out := make([]Package, 0, len(byPath))
	for _, p := range byPath {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Size != out[j].Size {
			return out[i].Size > out[j].Size
		}
		return out[i].Path < out[j].Path
	})
	return out
}

// PackageOf returns the Go package a function belongs to, from its name as Go's linker
// writes it into the name section: every character other than a letter, digit, '_' or
// '.' replaced by '_' (cmd/link/internal/wasm/asm.go, nameRegexp), so
// "crypto/internal/fips140/nistec.(*P256Point).Add" reads
// "crypto_internal_fips140_nistec.__P256Point_.Add" and its package is
// "crypto_internal_fips140_nistec". The package ends at the first '.' after a leading
// domain ("github.com_tidwall_gjson.Get" is in "github.com_tidwall_gjson").
// Compiler-made type functions ("type:.eq.…") are "(types)"; a name that is no Go
// symbol is "(other)".
func PackageOf(symbol string) string {
	if strings.HasPrefix(symbol, "type_.") {
		return "(types)"
	}
	from := 0
	if m := leadingDomain.FindStringIndex(symbol); m != nil {
		from = m[1]
	}
	dot := strings.IndexByte(symbol[from:], '.')
	if from+dot <= 0 {
		return "(other)"
	}
	return symbol[:from+dot]
}

// leadingDomain matches the host name that starts a module path, such as "github.com_"
// or "vendor_golang.org_" (one of the domains Go modules come from).
var leadingDomain = regexp.MustCompile(`^(vendor_)?[a-z0-9]+(\.[a-z0-9]+)*\.(com|org|net|io|dev|in|co)_`)

func countFunctionImports(r reader) (uint32, error) {
	var funcs uint32
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		r.name()
		r.name()
		switch kind := r.byte(); kind {
		case 0x00: // function: a type index
			r.u32()
			funcs++
		case 0x01: // table: a reference type, then limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
		case 0x03: // global: a value type and mutability
			r.bytes(2)
		default:
			r.fail("import kind %#x", kind)
		}
	}
	return funcs, r.err
}

// readFunctionNames reads subsection 1 (function names) of a name section. The name
// section is advisory: a broken one leaves names out, it does not fail the module.
func readFunctionNames(r reader, names map[uint32]string) {
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		sub := reader{b: r.bytes(int(r.u32()))}
		if id != 1 {
			continue
		}
		for n := sub.u32(); n > 0 && sub.err == nil; n-- {
			idx := sub.u32()
			name := sub.name()
			if sub.err == nil {
				names[idx] = name
			}
		}
	}
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail("unexpected end")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.fail("a length of %d runs past the end", n)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u32() uint32 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 || n > 5 || v > 1<<32-1 {
		r.fail("bad LEB128 integer")
		return 0
	}
	r.b = r.b[n:]
	return uint32(v)
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *reader) limits() {
	if flags := r.byte(); flags&1 != 0 {
		r.u32()
	}
	r.u32()
}
