package envoyhost

import (
	"encoding/binary"
	"errors"
	"strings"
)

// Limits Envoy's host puts on serialized pairs coming from a module
// (proxy-wasm-cpp-host include/proxy-wasm/limits.h).
const (
	maxPairsBytes = 1 << 20
	maxPairsCount = 1024
)

// headerMap is an ordered list of header pairs as Envoy keeps them: lower-case keys,
// pseudo-headers (":path", ":status", ...) included, repeated keys allowed.
type headerMap [][2]string

// get returns the first value of key (Envoy returns only the first).
func (h headerMap) get(key string) (string, bool) {
	key = strings.ToLower(key)
	for _, p := range h {
		if p[0] == key {
			return p[1], true
		}
	}
	return "", false
}

func (h *headerMap) add(key, value string) {
	*h = append(*h, [2]string{strings.ToLower(key), value})
}

// replace removes every occurrence of key and adds one with value, as Envoy's
// HeaderMapImpl::setCopy does (source/common/http/header_map_impl.cc; Context::
// replaceHeaderMapValue calls it for proxy_replace_header_map_value). Before Envoy's
// pull request 16209 (April 2021, long before 1.33) it changed the first only.
func (h *headerMap) replace(key, value string) {
	h.remove(key)
	h.add(key, value)
}

func (h *headerMap) remove(key string) {
	key = strings.ToLower(key)
	kept := (*h)[:0]
	for _, p := range *h {
		if p[0] != key {
			kept = append(kept, p)
		}
	}
	*h = kept
}

// byteSize is Envoy's HeaderMap::byteSize: the sum of key and value lengths.
func (h headerMap) byteSize() int {
	n := 0
	for _, p := range h {
		n += len(p[0]) + len(p[1])
	}
	return n
}

func (h headerMap) clone() headerMap { return append(headerMap(nil), h...) }

// encodePairs serializes pairs in the Proxy-Wasm format: a little-endian u32 count, then
// a (key size, value size) u32 pair per entry, then each key and value followed by NUL.
func encodePairs(h headerMap) []byte {
	size := 4
	for _, p := range h {
		size += 8 + len(p[0]) + 1 + len(p[1]) + 1
	}
	out := make([]byte, size)
	binary.LittleEndian.PutUint32(out, uint32(len(h)))
	sizes, data := out[4:], out[4+8*len(h):]
	for _, p := range h {
		binary.LittleEndian.PutUint32(sizes, uint32(len(p[0])))
		binary.LittleEndian.PutUint32(sizes[4:], uint32(len(p[1])))
		sizes = sizes[8:]
		data = data[copy(data, p[0])+1:]
		data = data[copy(data, p[1])+1:]
	}
	return out
}

var errBadPairs = errors.New("malformed serialized pairs")

// decodePairs parses pairs written by a module. Keys are lower-cased, as Envoy does when
// it builds a header map from them. Anything out of bounds is an error, never a panic.
func decodePairs(b []byte) (headerMap, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > maxPairsBytes || len(b) < 4 {
		return nil, errBadPairs
	}
	n := binary.LittleEndian.Uint32(b)
	if n > maxPairsCount || uint64(len(b)) < 4+8*uint64(n) {
		return nil, errBadPairs
	}
	sizes, data := b[4:], b[4+8*n:]
	h := make(headerMap, 0, n)
	for i := uint32(0); i < n; i++ {
		ks, vs := binary.LittleEndian.Uint32(sizes), binary.LittleEndian.Uint32(sizes[4:])
		sizes = sizes[8:]
		if uint64(len(data)) < uint64(ks)+1+uint64(vs)+1 {
			return nil, errBadPairs
		}
		key := string(data[:ks])
		data = data[ks+1:]
		value := string(data[:vs])
		data = data[vs+1:]
		h = append(h, [2]string{strings.ToLower(key), value})
	}
	return h, nil
}
