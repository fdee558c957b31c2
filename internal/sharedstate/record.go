package sharedstate

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"time"
)

// A record is how every value in shared data is written: one kind byte, then fields, each
// a length (unsigned varint) and that many bytes. An empty value is no record: what
// Create writes.
type record struct {
	kind   byte
	fields [][]byte
}

// Record kinds.
const (
	kindMetadata   = 'M' // fetched at, discovery document, JWKS
	kindLease      = 'L' // holder, until
	kindStamp      = 'T' // time
	kindClaimed    = 'P' // session id, holder, deadline
	kindRenewed    = 'D' // session id, access expiry, the renewed session
	kindReleased   = 'R' // session id
	kindUsedStates = 'U' // entries of usedStateSize bytes
)

func encode(kind byte, fields ...[]byte) []byte {
	size := 1
	for _, f := range fields {
		size += binary.MaxVarintLen32 + len(f)
	}
	b := make([]byte, 1, size)
	b[0] = kind
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// decode reads a record. The fields alias value.
func decode(value []byte) (record, error) {
	if len(value) == 0 {
		return record{}, nil
	}
	r := record{kind: value[0]}
	rest := value[1:]
	for len(rest) > 0 {
		n, size := binary.Uvarint(rest)
		if size <= 0 || n > uint64(len(rest)-size) {
			return record{}, fmt.Errorf("%w: a field runs past the end", ErrMalformed)
		}
		if size != (bits.Len64(n|1)+6)/7 {
			return record{}, fmt.Errorf("%w: a length not written in its shortest form", ErrMalformed)
		}
		r.fields = append(r.fields, rest[size:size+int(n)])
		rest = rest[size+int(n):]
	}
	return r, nil
}

// want checks that r is of kind with n fields.
func (r record) want(kind byte, n int) error {
	if r.kind != kind || len(r.fields) != n {
		return fmt.Errorf("%w: kind %q with %d fields, want %q with %d", ErrMalformed, r.kind, len(r.fields), kind, n)
	}
	return nil
}

// Times are Unix nanoseconds, 8 bytes little-endian.

func timeField(t time.Time) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(t.UnixNano()))
}

func parseTime(f []byte) (time.Time, error) {
	if len(f) != 8 {
		return time.Time{}, fmt.Errorf("%w: a time of %d bytes", ErrMalformed, len(f))
	}
	return time.Unix(0, int64(binary.LittleEndian.Uint64(f))), nil
}
