package expcache

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1764400000, 0)

// clock is a settable time that counts its reads (each is a host call in a VM).
type clock struct {
	now   time.Time
	reads int
}

func (c *clock) read() time.Time { c.reads++; return c.now }

func TestGetAndExpiry(t *testing.T) {
	clk := &clock{now: t0}
	c := New[string, int](4)
	c.Put("a", 1, t0.Add(time.Minute), clk.read)
	for _, tc := range []struct {
		name   string
		at     time.Time
		key    string
		want   int
		wantOK bool
	}{
		{"live", t0, "a", 1, true},
		{"a moment before expiry", t0.Add(time.Minute - time.Nanosecond), "a", 1, true},
		{"unknown key", t0, "b", 0, false},
		{"at expiry", t0.Add(time.Minute), "a", 0, false},
		{"removed once expired", t0, "a", 0, false},
	} {
		clk.now = tc.at
		got, ok := c.Get(tc.key, clk.read)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: Get(%q) = %d, %v; want %d, %v", tc.name, tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
	if c.Len() != 0 {
		t.Errorf("%d entries left, want the expired one gone", c.Len())
	}
}

// The clock is read only when an answer depends on it: a Get that finds nothing and a
// Put with room read nothing.
func TestTheClockIsReadOnlyWhenNeeded(t *testing.T) {
	clk := &clock{now: t0}
	c := New[string, int](2)
	c.Get("none", clk.read)
	c.Put("a", 1, t0.Add(time.Hour), clk.read)
	c.Put("b", 2, t0.Add(time.Hour), clk.read)
	if clk.reads != 0 {
		t.Fatalf("%d clock reads for a miss and two puts with room, want 0", clk.reads)
	}
	c.Get("a", clk.read)
	c.Put("c", 3, t0.Add(time.Hour), clk.read) // full: one read to drop expired entries
	if clk.reads != 2 {
		t.Fatalf("%d clock reads, want 2 (a hit, a put into a full cache)", clk.reads)
	}
}

// A full cache drops expired entries first and keeps live ones while it can; with only
// live ones it drops as few as make room, never growing past its bound.
func TestBoundsEntries(t *testing.T) {
	clk := &clock{now: t0}
	c := New[int, string](10)
	for i := range 10 {
		ttl := time.Hour
		if i%2 == 0 {
			ttl = time.Second
		}
		c.Put(i, fmt.Sprint(i), t0.Add(ttl), clk.read)
	}
	clk.now = t0.Add(time.Minute) // the even ones expired
	c.Put(100, "new", t0.Add(time.Hour), clk.read)
	if c.Len() != 6 {
		t.Fatalf("%d entries, want the 5 live ones and the new one", c.Len())
	}
	for i := 1; i < 10; i += 2 {
		if _, ok := c.Get(i, clk.read); !ok {
			t.Errorf("live entry %d was dropped while expired ones could go", i)
		}
	}
	for i := range 1000 {
		c.Put(1000+i, "x", t0.Add(time.Hour), clk.read)
		if c.Len() > 10 {
			t.Fatalf("%d entries after %d puts, want at most 10", c.Len(), i+1)
		}
	}
	if _, ok := c.Get(1999, clk.read); !ok {
		t.Error("the last entry put is not there")
	}
}

func TestBoundsBytes(t *testing.T) {
	clk := &clock{now: t0}
	c := NewSized[string, string](100, 10, func(v string) int { return len(v) })
	c.Put("a", "1234", t0.Add(time.Hour), clk.read)
	c.Put("b", "5678", t0.Add(time.Hour), clk.read)
	c.Put("c", "90ab", t0.Add(time.Hour), clk.read) // 12 bytes would not fit: one goes
	if c.Bytes() > 10 || c.Len() != 2 {
		t.Fatalf("%d bytes in %d entries, want at most 10 in 2", c.Bytes(), c.Len())
	}
	if _, ok := c.Get("c", clk.read); !ok {
		t.Fatal("the new entry is not there")
	}
	c.Put("c", "12", t0.Add(time.Hour), clk.read) // replacing frees the old value's bytes
	if c.Bytes() != 6 {
		t.Fatalf("%d bytes after replacing, want 6", c.Bytes())
	}
	c.Put("big", strings.Repeat("x", 11), t0.Add(time.Hour), clk.read)
	if _, ok := c.Get("big", clk.read); ok || c.Bytes() != 6 {
		t.Fatalf("a value over the byte bound was kept (%d bytes)", c.Bytes())
	}
	c.Delete("c")
	c.Delete("c")
	if c.Bytes() != 4 || c.Len() != 1 {
		t.Fatalf("%d bytes in %d entries after deleting, want 4 in 1", c.Bytes(), c.Len())
	}
}

// When room must be made, an entry that is expired already is not kept.
func TestExpiredPutIntoAFullCacheIsNotKept(t *testing.T) {
	clk := &clock{now: t0}
	c := New[string, int](1)
	c.Put("a", 1, t0.Add(time.Hour), clk.read)
	c.Put("b", 2, t0.Add(-time.Second), clk.read)
	if _, ok := c.Get("a", clk.read); !ok || c.Len() != 1 {
		t.Fatal("an expired entry pushed out a live one")
	}
}

func BenchmarkGetHit(b *testing.B) {
	c := New[[32]byte, int](10000)
	now := func() time.Time { return t0 }
	var key [32]byte
	for i := range 10000 {
		key[0], key[1] = byte(i), byte(i>>8)
		c.Put(key, i, t0.Add(time.Hour), now)
	}
	for b.Loop() {
		if _, ok := c.Get(key, now); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkPutFull is the worst case: every put into a full cache of live entries scans
// for expired ones, then drops one.
func BenchmarkPutFull(b *testing.B) {
	c := New[int, int](10000)
	now := func() time.Time { return t0 }
	for i := range 10000 {
		c.Put(i, i, t0.Add(time.Hour), now)
	}
	i := 10000
	for b.Loop() {
		c.Put(i, i, t0.Add(time.Hour), now)
		i++
	}
}

// A full cache of live entries makes room for a tenth of its bound at once, so the next
// puts neither scan nor read the clock.
func TestMakesRoomInBulk(t *testing.T) {
	clk := &clock{now: t0}
	c := New[int, int](100)
	for i := range 100 {
		c.Put(i, i, t0.Add(time.Hour), clk.read)
	}
	c.Put(100, 100, t0.Add(time.Hour), clk.read)
	if c.Len() != 91 {
		t.Fatalf("%d entries after a put into a full cache of 100, want 91", c.Len())
	}
	reads := clk.reads
	for i := range 9 {
		c.Put(101+i, i, t0.Add(time.Hour), clk.read)
	}
	if clk.reads != reads || c.Len() != 100 {
		t.Fatalf("the next 9 puts read the clock %d times and left %d entries, want 0 and 100", clk.reads-reads, c.Len())
	}
}
