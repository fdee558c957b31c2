package envoyhost

import (
	"encoding/binary"
	"slices"
	"testing"
)

func TestPairsRoundTrip(t *testing.T) {
	for _, h := range []headerMap{
		nil,
		{{":path", "/"}},
		{{":status", "200"}, {"set-cookie", "a=1"}, {"set-cookie", "b=2"}, {"empty", ""}},
		{{"x-bin", "\x00\xff"}},
	} {
		got, err := decodePairs(encodePairs(h))
		if err != nil {
			t.Fatalf("%q: %v", h, err)
		}
		if !slices.Equal(got, h) && !(len(got) == 0 && len(h) == 0) {
			t.Errorf("round trip %q -> %q", h, got)
		}
	}
}

func TestDecodePairsRefusesMalformedInput(t *testing.T) {
	valid := encodePairs(headerMap{{"key", "value"}})
	huge := binary.LittleEndian.AppendUint32(nil, maxPairsCount+1)
	cases := map[string][]byte{
		"short count":         {1, 0},
		"count beyond sizes":  binary.LittleEndian.AppendUint32(nil, 3),
		"too many pairs":      append(huge, make([]byte, 8*(maxPairsCount+1))...),
		"truncated data":      valid[:len(valid)-1],
		"size beyond data":    append(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 1), 1<<31), 1), 'a', 0, 'b', 0),
		"over the byte limit": make([]byte, maxPairsBytes+1),
	}
	for name, b := range cases {
		if _, err := decodePairs(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestHeaderMapOperations(t *testing.T) {
	h := headerMap{{"a", "1"}, {"b", "2"}, {"a", "3"}}
	h.replace("A", "x")
	if !slices.Equal(h, headerMap{{"b", "2"}, {"a", "x"}}) {
		t.Errorf("replace: %q", h)
	}
	h.remove("a")
	h.add("C", "4")
	if !slices.Equal(h, headerMap{{"b", "2"}, {"c", "4"}}) {
		t.Errorf("remove/add: %q", h)
	}
	if v, ok := h.get("C"); !ok || v != "4" || h.byteSize() != 4 {
		t.Errorf("get %q %v, size %d", v, ok, h.byteSize())
	}
}

// FuzzDecodePairs feeds the parser arbitrary module memory: it must never panic, and what
// it accepts must re-encode to the same bytes once keys are lower-cased.
func FuzzDecodePairs(f *testing.F) {
	f.Add(encodePairs(headerMap{{":path", "/"}, {"k", "v"}}))
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 'a', 0, 'b', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodePairs(b)
		if err != nil || len(h) == 0 {
			return
		}
		again, err := decodePairs(encodePairs(h))
		if err != nil || !slices.Equal(again, h) {
			t.Fatalf("re-encoding changed %q to %q (%v)", h, again, err)
		}
	})
}
