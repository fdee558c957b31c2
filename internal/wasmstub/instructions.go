package wasmstub

import "fmt"

// rewriteInstructions copies instructions from r to out up to and including the end that
// closes the body (or constant expression), re-encoding the function index of call,
// return_call and ref.func. Everything else is copied byte for byte.
func rewriteInstructions(r *reader, out []byte, rm *remap, constExpr bool) ([]byte, error) {
	depth := 0
	for r.err == nil {
		start := r.pos
		op := r.byte()
		switch {
		case op == 0x10 || op == 0x12 || op == 0xd2: // call, return_call, ref.func
			idx := r.u32()
			out = appendU32(append(out, op), rm.newOf(idx))
			continue
		case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
			depth++
			r.blockType()
		case op == 0x0b: // end
			if depth == 0 {
				return append(out, op), nil
			}
			depth--
		case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0f || op == 0x1a || op == 0x1b || op == 0xd1:
			// unreachable, nop, else, return, drop, select, ref.is_null
		case op == 0x0c || op == 0x0d: // br, br_if
			r.u32()
		case op == 0x0e: // br_table
			for n := r.u32(); n > 0 && r.err == nil; n-- {
				r.u32()
			}
			r.u32()
		case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
			r.u32()
			r.u32()
		case op == 0x1c: // select with types
			r.bytes(int(r.u32()))
		case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
			r.u32()
		case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
			r.u32()
			r.u32()
		case op == 0x3f || op == 0x40: // memory.size, memory.grow
			r.byte()
		case op == 0x41: // i32.const
			r.leb(5)
		case op == 0x42: // i64.const
			r.leb(10)
		case op == 0x43: // f32.const
			r.bytes(4)
		case op == 0x44: // f64.const
			r.bytes(8)
		case op >= 0x45 && op <= 0xc4: // numeric, conversions, sign extension
		case op == 0xd0: // ref.null
			r.byte()
		case op == 0xfc:
			if err := r.prefixed(); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("%w: opcode %#x at %d (SIMD, threads and other proposals are not supported)", ErrUnsupported, op, start)
		}
		if constExpr && depth > 0 {
			return nil, fmt.Errorf("%w: block in a constant expression", ErrUnsupported)
		}
		out = append(out, r.b[start:r.pos]...)
	}
	return nil, r.err
}

// blockType skips a block type: empty (0x40), a value type, or a type index (s33).
func (r *reader) blockType() {
	if r.err != nil || r.pos >= len(r.b) {
		r.fail("unexpected end at %d", r.pos)
		return
	}
	switch r.b[r.pos] {
	case 0x40, 0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f:
		r.pos++
	default:
		r.leb(5)
	}
}

// prefixed skips the immediates of a 0xfc instruction: saturating conversions (0-7),
// bulk memory and table operations (8-17).
func (r *reader) prefixed() error {
	sub := r.u32()
	switch {
	case sub <= 7:
	case sub == 8: // memory.init: data index, memory
		r.u32()
		r.byte()
	case sub == 9, sub == 13, sub == 15, sub == 16, sub == 17: // data.drop, elem.drop, table.grow/size/fill
		r.u32()
	case sub == 10: // memory.copy
		r.byte()
		r.byte()
	case sub == 11: // memory.fill
		r.byte()
	case sub == 12, sub == 14: // table.init, table.copy
		r.u32()
		r.u32()
	default:
		return fmt.Errorf("%w: instruction 0xfc %d", ErrUnsupported, sub)
	}
	return nil
}
