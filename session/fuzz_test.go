package session

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
	"time"
)

// FuzzOpen: whatever a client sends as a cookie, Open answers a value or ErrInvalid,
// never a panic; nothing but a value this codec sealed opens.
func FuzzOpen(f *testing.F) {
	key := bytes.Repeat([]byte{7}, KeySize)
	c, _ := NewCodec([][]byte{key}, rand.Reader)
	sealed, _ := c.Seal("s", (&Session{Subject: "x", Expires: time.Unix(1, 0)}).Marshal())
	f.Add(sealed)
	f.Add("")
	f.Add("AQ")
	f.Add(sealed[:len(sealed)/2])
	f.Fuzz(func(t *testing.T, text string) {
		plain, err := c.Open("s", text)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if _, err := UnmarshalSession(plain); err != nil && !errors.Is(err, ErrInvalid) {
			t.Fatalf("payload error %v", err)
		}
	})
}

// FuzzUnmarshalSession: a decoded payload re-encodes to something that decodes the same.
func FuzzUnmarshalSession(f *testing.F) {
	f.Add((&Session{Subject: "s", Groups: []string{"a", "b"}, Expires: time.Unix(5, 0)}).Marshal())
	f.Add([]byte{payloadV1})
	f.Add([]byte{payloadV1, tagExpires, 0x02, tagSubject, 1, 'x'})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnmarshalSession(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		again, err := UnmarshalSession(s.Marshal())
		if err != nil || !bytes.Equal(again.Marshal(), s.Marshal()) {
			t.Fatalf("re-encoding changed the session: %v", err)
		}
	})
}

// FuzzJoin: the chunk parser never panics and never reads more than it is allowed.
func FuzzJoin(f *testing.F) {
	f.Add("3.abc", "def", "ghi")
	f.Add("plain", "", "")
	f.Add("99.x", "y", "z")
	f.Fuzz(func(t *testing.T, first, second, third string) {
		jar := jarOf(map[string]string{"s": first, "s.1": second, "s.2": third})
		v, found, err := Join(jar, "s", 3)
		if !found {
			t.Fatal("present cookie reported absent")
		}
		if err == nil && len(v) > len(first)+len(second)+len(third) {
			t.Fatalf("joined %d bytes from less", len(v))
		}
	})
}
