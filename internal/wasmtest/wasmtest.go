// Package wasmtest assembles small WebAssembly modules byte by byte, for tests that need
// a module of an exact shape (an import a host lacks, a call made at the wrong time)
// without a compiler.
package wasmtest

// Value types and the opcodes tests use.
const (
	I32         = 0x7f
	I64         = 0x7e
	OpCall      = 0x10
	OpCallIndir = 0x11
	OpDrop      = 0x1a
	OpLocalGet  = 0x20
	OpI32Const  = 0x41
	OpI32Add    = 0x6a
)

// Import is a function import.
type Import struct {
	Module, Name    string
	Params, Results []byte
}

// Func is a defined function; Export names it, if set, and Name, if set, is its name
// in the module's name section (where compilers put symbol names).
type Func struct {
	Export, Name    string
	Params, Results []byte
	Code            []byte // instructions, without the final end
}

// Module is a module with one exported memory ("memory", one page) and, when Table is
// set, a table holding those function indices from slot 0.
type Module struct {
	Imports []Import
	Funcs   []Func
	Table   []uint32
}

// Build assembles the module. Function indices count imports first.
func (m Module) Build() []byte {
	var types, imports, funcs, exports, code []byte
	nTypes := 0
	addType := func(params, results []byte) int {
		types = append(types, 0x60)
		types = append(types, vec(params)...)
		types = append(types, vec(results)...)
		nTypes++
		return nTypes - 1
	}
	for _, im := range m.Imports {
		t := addType(im.Params, im.Results)
		imports = append(imports, name(im.Module)...)
		imports = append(imports, name(im.Name)...)
		imports = append(imports, 0x00)
		imports = append(imports, ULEB(uint32(t))...)
	}
	nExports := 1
	exports = append(name("memory"), 0x02, 0x00)
	for i, f := range m.Funcs {
		t := addType(f.Params, f.Results)
		funcs = append(funcs, ULEB(uint32(t))...)
		body := append([]byte{0x00}, f.Code...) // no locals
		body = append(body, 0x0b)
		code = append(code, ULEB(uint32(len(body)))...)
		code = append(code, body...)
		if f.Export != "" {
			exports = append(exports, name(f.Export)...)
			exports = append(exports, 0x00)
			exports = append(exports, ULEB(uint32(len(m.Imports)+i))...)
			nExports++
		}
	}
	out := []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}
	out = append(out, section(1, nTypes, types)...)
	out = append(out, section(2, len(m.Imports), imports)...)
	out = append(out, section(3, len(m.Funcs), funcs)...)
	if len(m.Table) > 0 {
		out = append(out, section(4, 1, append([]byte{0x70, 0x00}, ULEB(uint32(len(m.Table)))...))...) // funcref, min
	}
	out = append(out, section(5, 1, []byte{0x00, 0x01})...)
	out = append(out, section(7, nExports, exports)...)
	if len(m.Table) > 0 {
		var elem []byte
		elem = append(elem, 0x00, OpI32Const, 0x00, 0x0b) // active, offset 0
		elem = append(elem, ULEB(uint32(len(m.Table)))...)
		for _, idx := range m.Table {
			elem = append(elem, ULEB(idx)...)
		}
		out = append(out, section(9, 1, elem)...)
	}
	out = append(out, section(10, len(m.Funcs), code)...)
	var names []byte
	nNames := 0
	for i, f := range m.Funcs {
		if f.Name != "" {
			names = append(names, ULEB(uint32(len(m.Imports)+i))...)
			names = append(names, name(f.Name)...)
			nNames++
		}
	}
	if nNames > 0 {
		sub := section(1, nNames, names) // subsection 1: function names
		out = append(out, 0x00)
		out = append(out, ULEB(uint32(len(name("name"))+len(sub)))...)
		out = append(out, name("name")...)
		out = append(out, sub...)
	}
	return out
}

// ULEB encodes an unsigned LEB128.
func ULEB(n uint32) []byte {
	var out []byte
	for {
		b := byte(n & 0x7f)
		n >>= 7
		if n != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

func vec(items []byte) []byte { return append(ULEB(uint32(len(items))), items...) }

func name(s string) []byte { return append(ULEB(uint32(len(s))), s...) }

func section(id byte, count int, content []byte) []byte {
	body := append(ULEB(uint32(count)), content...)
	return append(append([]byte{id}, ULEB(uint32(len(body)))...), body...)
}
