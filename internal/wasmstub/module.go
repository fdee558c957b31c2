package wasmstub

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Section ids of the WebAssembly binary format.
const (
	secCustom   = 0
	secType     = 1
	secImport   = 2
	secFunction = 3
	secGlobal   = 6
	secExport   = 7
	secStart    = 8
	secElement  = 9
	secCode     = 10
)

const valI32 = 0x7f

var magic = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

type section struct {
	id   byte
	data []byte
}

type module struct{ sections []section }

func parse(b []byte) (*module, error) {
	if !bytes.HasPrefix(b, magic) {
		return nil, fmt.Errorf("%w: not a WebAssembly 1.0 binary", ErrUnsupported)
	}
	r := &reader{b: b[len(magic):]}
	m := &module{}
	for !r.done() {
		id := r.byte()
		size := r.u32()
		data := r.bytes(int(size))
		if r.err != nil {
			return nil, r.err
		}
		m.sections = append(m.sections, section{id, data})
	}
	return m, nil
}

func (m *module) section(id byte) []byte {
	for _, s := range m.sections {
		if s.id == id {
			return s.data
		}
	}
	return nil
}

type funcType struct{ params, results []byte }

type funcImport struct {
	name string
	typ  uint32
}

func (m *module) types() ([]funcType, error) {
	var out []funcType
	if m.section(secType) == nil {
		return nil, nil
	}
	r := &reader{b: m.section(secType)}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		if form := r.byte(); form != 0x60 {
			return nil, fmt.Errorf("%w: type form %#x", ErrUnsupported, form)
		}
		params := r.bytes(int(r.u32()))
		results := r.bytes(int(r.u32()))
		out = append(out, funcType{params, results})
	}
	return out, r.err
}

func (m *module) functionImports() ([]funcImport, []funcType, error) {
	types, err := m.types()
	if err != nil {
		return nil, nil, err
	}
	var out []funcImport
	err = m.eachImport(func(mod, name string, kind byte, desc []byte) {
		if kind == 0 {
			typ := (&reader{b: desc}).u32()
			out = append(out, funcImport{name: mod + "." + name, typ: typ})
		}
	})
	for _, im := range out {
		if int(im.typ) >= len(types) {
			return nil, nil, fmt.Errorf("%w: import %s has type %d of %d", ErrUnsupported, im.name, im.typ, len(types))
		}
	}
	return out, types, err
}

// eachImport walks the import section; desc is the raw import description.
func (m *module) eachImport(fn func(mod, name string, kind byte, desc []byte)) error {
	if m.section(secImport) == nil {
		return nil
	}
	r := &reader{b: m.section(secImport)}
	for n := r.u32(); n > 0 && r.err == nil; n-- {
		mod, name := r.name(), r.name()
		kind := r.byte()
		start := r.pos
		switch kind {
		case 0x00: // function: type index
			r.u32()
		case 0x01: // table: reftype, limits
			r.byte()
			r.limits()
		case 0x02: // memory: limits
			r.limits()
		case 0x03: // global: valtype, mutability
			r.byte()
			r.byte()
		default:
			return fmt.Errorf("%w: import kind %#x", ErrUnsupported, kind)
		}
		if r.err == nil {
			fn(mod, name, kind, r.b[start:r.pos])
		}
	}
	return r.err
}

func (m *module) definedFunctions() (uint32, error) {
	if m.section(secFunction) == nil {
		return 0, nil
	}
	r := &reader{b: m.section(secFunction)}
	n := r.u32()
	return n, r.err
}

// rewrite produces the module with the imports in rm.removed moved into the module.
func (m *module) rewrite(rm *remap) ([]byte, error) {
	gone := map[uint32]bool{}
	for _, s := range rm.removed {
		gone[s.index] = true
	}
	out := append([]byte(nil), magic...)
	for _, s := range m.sections {
		data := s.data
		var err error
		switch s.id {
		case secImport:
			data, err = m.rewriteImports(gone)
		case secFunction:
			data, err = rewriteFunctions(s.data, rm)
		case secGlobal:
			data, err = rewriteGlobals(s.data, rm)
		case secExport:
			data, err = rewriteExports(s.data, rm)
		case secStart:
			r := &reader{b: s.data}
			data, err = appendU32(nil, rm.newOf(r.u32())), r.err
		case secElement:
			data, err = rewriteElements(s.data, rm)
		case secCode:
			data, err = rewriteCode(s.data, rm)
		case secCustom:
			data, err = rewriteCustom(s.data, rm)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, s.id)
		out = appendU32(out, uint32(len(data)))
		out = append(out, data...)
	}
	return out, nil
}

func (m *module) rewriteImports(gone map[uint32]bool) ([]byte, error) {
	var entries [][]byte
	fn := uint32(0)
	err := m.eachImport(func(mod, name string, kind byte, desc []byte) {
		if kind == 0 {
			defer func() { fn++ }()
			if gone[fn] {
				return
			}
		}
		e := appendName(appendName(nil, mod), name)
		e = append(e, kind)
		entries = append(entries, append(e, desc...))
	})
	out := appendU32(nil, uint32(len(entries)))
	for _, e := range entries {
		out = append(out, e...)
	}
	return out, err
}

func rewriteFunctions(data []byte, rm *remap) ([]byte, error) {
	r := &reader{b: data}
	n := r.u32()
	typesStart := r.pos
	out := appendU32(nil, n+uint32(len(rm.removed)))
	out = append(out, data[typesStart:]...)
	for _, s := range rm.removed {
		out = appendU32(out, s.typ)
	}
	return out, r.err
}

func rewriteGlobals(data []byte, rm *remap) ([]byte, error) {
	r := &reader{b: data}
	n := r.u32()
	out := appendU32(nil, n)
	for ; n > 0 && r.err == nil; n-- {
		out = append(out, r.byte(), r.byte()) // valtype, mutability
		var err error
		if out, err = rewriteExpr(r, out, rm); err != nil {
			return nil, err
		}
	}
	return out, r.err
}

func rewriteExports(data []byte, rm *remap) ([]byte, error) {
	r := &reader{b: data}
	n := r.u32()
	out := appendU32(nil, n)
	for ; n > 0 && r.err == nil; n-- {
		out = appendName(out, r.name())
		kind := r.byte()
		idx := r.u32()
		if kind == 0 {
			idx = rm.newOf(idx)
		}
		out = appendU32(append(out, kind), idx)
	}
	return out, r.err
}

func rewriteElements(data []byte, rm *remap) ([]byte, error) {
	r := &reader{b: data}
	n := r.u32()
	out := appendU32(nil, n)
	funcs := func() {
		count := r.u32()
		out = appendU32(out, count)
		for ; count > 0 && r.err == nil; count-- {
			out = appendU32(out, rm.newOf(r.u32()))
		}
	}
	exprs := func() error {
		count := r.u32()
		out = appendU32(out, count)
		for ; count > 0 && r.err == nil; count-- {
			var err error
			if out, err = rewriteExpr(r, out, rm); err != nil {
				return err
			}
		}
		return nil
	}
	for ; n > 0 && r.err == nil; n-- {
		flags := r.u32()
		out = appendU32(out, flags)
		var err error
		switch flags {
		case 0:
			if out, err = rewriteExpr(r, out, rm); err == nil {
				funcs()
			}
		case 1, 3:
			out = append(out, r.byte()) // elemkind
			funcs()
		case 2:
			out = appendU32(out, r.u32()) // table
			if out, err = rewriteExpr(r, out, rm); err == nil {
				out = append(out, r.byte())
				funcs()
			}
		case 4:
			if out, err = rewriteExpr(r, out, rm); err == nil {
				err = exprs()
			}
		case 5, 7:
			out = append(out, r.byte()) // reftype
			err = exprs()
		case 6:
			out = appendU32(out, r.u32())
			if out, err = rewriteExpr(r, out, rm); err == nil {
				out = append(out, r.byte())
				err = exprs()
			}
		default:
			return nil, fmt.Errorf("%w: element segment flags %d", ErrUnsupported, flags)
		}
		if err != nil {
			return nil, err
		}
	}
	return out, r.err
}

// rewriteCode rewrites every function body and appends one stub per removed import.
func rewriteCode(data []byte, rm *remap) ([]byte, error) {
	r := &reader{b: data}
	n := r.u32()
	out := appendU32(nil, n+uint32(len(rm.removed)))
	for ; n > 0 && r.err == nil; n-- {
		size := r.u32()
		body := &reader{b: r.bytes(int(size))}
		var nb []byte
		locals := body.u32()
		nb = appendU32(nb, locals)
		for ; locals > 0 && body.err == nil; locals-- {
			nb = appendU32(nb, body.u32())
			nb = append(nb, body.byte())
		}
		var err error
		if nb, err = rewriteInstructions(body, nb, rm, false); err != nil {
			return nil, err
		}
		if body.err != nil {
			return nil, fmt.Errorf("%w: function body: %v", ErrUnsupported, body.err)
		}
		out = appendU32(out, uint32(len(nb)))
		out = append(out, nb...)
	}
	for _, s := range rm.removed {
		stub := s.code()
		out = appendU32(out, uint32(len(stub)))
		out = append(out, stub...)
	}
	return out, r.err
}

// code is the stub's function body.
func (s stubbed) code() []byte {
	const (
		opLocalGet = 0x20
		opI32Store = 0x36
		opI32Const = 0x41
		opEnd      = 0x0b
	)
	switch s.body {
	case PollNoEvents:
		// no locals; (i32.store (local.get 3) (i32.const 0)); (i32.const 0)
		return []byte{0x00, opLocalGet, 3, opI32Const, 0, opI32Store, 2, 0, opI32Const, 0, opEnd}
	default:
		// no locals; (i32.const errno)
		return append(appendS32([]byte{0x00, opI32Const}, int32(s.errno)), opEnd)
	}
}

// rewriteExpr rewrites a constant expression (up to and including its end).
func rewriteExpr(r *reader, out []byte, rm *remap) ([]byte, error) {
	return rewriteInstructions(r, out, rm, true)
}

// rewriteCustom rewrites the function indices of the "name" section and leaves other
// custom sections alone.
func rewriteCustom(data []byte, rm *remap) ([]byte, error) {
	r := &reader{b: data}
	if r.name() != "name" || r.err != nil {
		return data, nil
	}
	out := appendName(nil, "name")
	for !r.done() && r.err == nil {
		id := r.byte()
		sub := &reader{b: r.bytes(int(r.u32()))}
		var content []byte
		switch id {
		case 1: // function names: a name map, in increasing index order
			type entry struct {
				idx  uint32
				name string
			}
			var entries []entry
			for count := sub.u32(); count > 0 && sub.err == nil; count-- {
				entries = append(entries, entry{rm.newOf(sub.u32()), sub.name()})
			}
			for _, s := range rm.removed {
				if !hasIndex(entries, rm.newOf(s.index), func(e entry) uint32 { return e.idx }) {
					entries = append(entries, entry{rm.newOf(s.index), "wasmstub." + s.name})
				}
			}
			sortBy(entries, func(e entry) uint32 { return e.idx })
			content = appendU32(nil, uint32(len(entries)))
			for _, e := range entries {
				content = appendName(appendU32(content, e.idx), e.name)
			}
		case 2: // local names: function index, then a name map of its locals
			type entry struct {
				idx  uint32
				rest []byte
			}
			var entries []entry
			for count := sub.u32(); count > 0 && sub.err == nil; count-- {
				idx := rm.newOf(sub.u32())
				start := sub.pos
				for locals := sub.u32(); locals > 0 && sub.err == nil; locals-- {
					sub.u32()
					sub.name()
				}
				entries = append(entries, entry{idx, sub.b[start:sub.pos]})
			}
			sortBy(entries, func(e entry) uint32 { return e.idx })
			content = appendU32(nil, uint32(len(entries)))
			for _, e := range entries {
				content = append(appendU32(content, e.idx), e.rest...)
			}
		default:
			content = sub.b
		}
		if sub.err != nil {
			return nil, fmt.Errorf("%w: name section: %v", ErrUnsupported, sub.err)
		}
		out = append(out, id)
		out = appendU32(out, uint32(len(content)))
		out = append(out, content...)
	}
	return out, r.err
}

func hasIndex[T any](items []T, idx uint32, key func(T) uint32) bool {
	for _, it := range items {
		if key(it) == idx {
			return true
		}
	}
	return false
}

func sortBy[T any](items []T, key func(T) uint32) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && key(items[j]) < key(items[j-1]); j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}

// reader decodes the binary format; the first error sticks and later reads return zero.
type reader struct {
	b   []byte
	pos int
	err error
}

func (r *reader) done() bool { return r.pos >= len(r.b) }

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
	}
}

func (r *reader) byte() byte {
	if r.err != nil || r.pos >= len(r.b) {
		r.fail("unexpected end at %d", r.pos)
		return 0
	}
	c := r.b[r.pos]
	r.pos++
	return c
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b)-r.pos {
		r.fail("%d bytes past the end at %d", n, r.pos)
		return nil
	}
	s := r.b[r.pos : r.pos+n]
	r.pos += n
	return s
}

func (r *reader) u32() uint32 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.pos:])
	if n <= 0 || n > 5 || v > 0xffffffff {
		r.fail("bad u32 at %d", r.pos)
		return 0
	}
	r.pos += n
	return uint32(v)
}

// leb skips a signed LEB128 of at most max bytes.
func (r *reader) leb(max int) {
	for i := 0; i < max; i++ {
		if r.byte()&0x80 == 0 {
			return
		}
	}
	r.fail("LEB128 longer than %d bytes at %d", max, r.pos)
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *reader) limits() {
	if flags := r.byte(); flags&1 != 0 {
		r.u32()
		r.u32()
	} else {
		r.u32()
	}
}

func appendU32(b []byte, v uint32) []byte { return binary.AppendUvarint(b, uint64(v)) }

func appendName(b []byte, s string) []byte { return append(appendU32(b, uint32(len(s))), s...) }

// appendS32 appends a signed LEB128.
func appendS32(b []byte, v int32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
