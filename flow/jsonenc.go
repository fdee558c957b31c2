package flow

import (
	"slices"
	"strconv"
	"unicode/utf8"
)

// jsonObject builds a JSON object by appending, keys in the order written. The filter
// writes four small objects (the user-sync body, /.auth/me, JSON errors, the client
// assertion's header and claims) without reflection. For the assertion it matters to
// start-up: signing through golang-jwt's Token called Sign through an interface, which
// linked every signing method golang-jwt registers (ECDSA with P-224 to P-521, Ed25519:
// 588 KB of the module's code, all compiled by Envoy's V8 at every start); the method
// value RS256 links RSA alone. encoding/json itself stays linked (gjson's @pretty
// modifier uses it). Strings are written as encoding/json writes them, byte for byte
// (see appendJSONString), so no body, fingerprint or token changed.
type jsonObject struct{ b []byte }

func (o *jsonObject) key(k string) {
	if len(o.b) == 0 {
		o.b = append(o.b, '{')
	} else {
		o.b = append(o.b, ',')
	}
	o.b = appendJSONString(o.b, k)
	o.b = append(o.b, ':')
}

func (o *jsonObject) str(k, v string) *jsonObject {
	o.key(k)
	o.b = appendJSONString(o.b, v)
	return o
}

func (o *jsonObject) int(k string, v int64) *jsonObject {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
	return o
}

func (o *jsonObject) bool(k string, v bool) *jsonObject {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
	return o
}

// strs writes a list of strings; nil is null, as encoding/json writes a nil slice.
func (o *jsonObject) strs(k string, v []string) *jsonObject {
	o.key(k)
	if v == nil {
		o.b = append(o.b, "null"...)
		return o
	}
	o.b = append(o.b, '[')
	for i, s := range v {
		if i > 0 {
			o.b = append(o.b, ',')
		}
		o.b = appendJSONString(o.b, s)
	}
	o.b = append(o.b, ']')
	return o
}

// bools writes a map of booleans as an object, its keys sorted (as encoding/json sorts
// map keys); nil is null.
func (o *jsonObject) bools(k string, v map[string]bool) *jsonObject {
	o.key(k)
	if v == nil {
		o.b = append(o.b, "null"...)
		return o
	}
	inner := jsonObject{}
	names := make([]string, 0, len(v))
	for name := range v {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		inner.bool(name, v[name])
	}
	o.b = append(o.b, inner.bytes()...)
	return o
}

// raw writes v, which must already be JSON.
func (o *jsonObject) raw(k string, v []byte) *jsonObject {
	o.key(k)
	o.b = append(o.b, v...)
	return o
}

// bytes closes the object and returns it.
func (o *jsonObject) bytes() []byte {
	if len(o.b) == 0 {
		return []byte("{}")
	}
	return append(o.b, '}')
}

// appendJSONString appends s as a JSON string exactly as encoding/json.Marshal does:
// '"' and '\\' escaped; \b \f \n \r \t by their short forms; other controls, and '<',
// '>' and '&' (so that text lands safely in HTML) as \u00XX; invalid UTF-8 as \ufffd;
// U+2028 and U+2029 (line breaks to JavaScript) as \u2028 and \u2029.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
