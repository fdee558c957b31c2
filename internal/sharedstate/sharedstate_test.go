package sharedstate

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func TestRecordRoundTrip(t *testing.T) {
	for _, fields := range [][][]byte{
		nil,
		{{}},
		{[]byte("a"), nil, bytes.Repeat([]byte{0xff}, 300)},
		{[]byte("with\x00nul"), []byte("|and|bars|")},
	} {
		r, err := decode(encode('X', fields...))
		if err != nil || r.kind != 'X' || len(r.fields) != len(fields) {
			t.Fatalf("decode(encode(%q)) = %+v, %v", fields, r, err)
		}
		for i := range fields {
			if !bytes.Equal(r.fields[i], fields[i]) {
				t.Errorf("field %d = %q, want %q", i, r.fields[i], fields[i])
			}
		}
	}
}

func TestDecodeRefusesWhatItDidNotWrite(t *testing.T) {
	for _, value := range [][]byte{
		{'X', 5, 'a'}, // a field longer than the rest
		{'X', 0x80},   // a length cut short
		{'X', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, // a length overflowing
		[]byte("P" + "sess|vm|123"), // the old "holder|expiry" spelling
	} {
		if _, err := decode(value); !errors.Is(err, ErrMalformed) {
			t.Errorf("decode(%q) = %v, want ErrMalformed", value, err)
		}
	}
	if r, err := decode(nil); err != nil || r.kind != 0 || r.fields != nil {
		t.Errorf("decode(empty) = %+v, %v; want no record", r, err)
	}
}

func TestUpdate(t *testing.T) {
	errOwn := errors.New("the caller's own reason")
	set := func(b []byte) func([]byte) ([]byte, error) {
		return func([]byte) ([]byte, error) { return b, nil }
	}
	tests := []struct {
		name    string
		prepare func(m *memory)
		tries   int
		change  func([]byte) ([]byte, error)
		want    error  // nil: written
		stored  string // what the key holds afterwards ("-": missing)
	}{
		{"writes over what it read", func(m *memory) { m.put("k", []byte("old")) }, 1, set([]byte("new")), nil, "new"},
		{"never creates a key", func(m *memory) {}, 3, set([]byte("new")), ErrNotFound, "-"},
		{"the caller's error writes nothing", func(m *memory) { m.put("k", []byte("old")) }, 1,
			func([]byte) ([]byte, error) { return nil, errOwn }, errOwn, "old"},
		{"a read refused", func(m *memory) { m.put("k", []byte("old")); m.getErr["k"] = errHost }, 1, set([]byte("new")), ErrUnavailable, "old"},
		{"a write refused", func(m *memory) { m.put("k", []byte("old")); m.setErr["k"] = errHost }, 3, set([]byte("new")), ErrUnavailable, "old"},
		{"a write lost once, then won", func(m *memory) {
			m.put("k", []byte("old"))
			lost := false
			m.beforeSet = func(key string) {
				if !lost {
					lost = true
					m.put(key, []byte("theirs"))
				}
			}
		}, 2, func(cur []byte) ([]byte, error) { return append(cur, '+'), nil }, nil, "theirs+"},
		{"every write lost", func(m *memory) {
			m.put("k", []byte("old"))
			m.beforeSet = func(key string) { m.put(key, []byte("theirs")) }
		}, 3, set([]byte("new")), ErrConflict, "theirs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemory()
			tt.prepare(m)
			err := Update(m, "k", tt.tries, tt.change)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Update = %v, want %v", err, tt.want)
			}
			m.beforeSet, m.getErr = nil, map[string]error{}
			got, _, gerr := m.Get("k")
			if (tt.stored == "-") != errors.Is(gerr, ErrNotFound) || (tt.stored != "-" && string(got) != tt.stored) {
				t.Errorf("stored %q (%v), want %q", got, gerr, tt.stored)
			}
		})
	}
}

func TestCreate(t *testing.T) {
	m := newMemory()
	m.put("held", []byte("a claim"))
	if err := Create(m, "new", "held"); err != nil {
		t.Fatal(err)
	}
	if v, _, err := m.Get("new"); err != nil || len(v) != 0 {
		t.Errorf("new key = %q, %v; want empty", v, err)
	}
	if v, _, _ := m.Get("held"); string(v) != "a claim" {
		t.Errorf("an existing key was overwritten: %q", v)
	}
	m.getErr["bad"] = errHost
	if err := Create(m, "bad"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Create over a refused read = %v", err)
	}
	m.setErr["refused"] = errHost
	if err := Create(m, "refused"); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Create with a refused write = %v", err)
	}
}

func TestMetadata(t *testing.T) {
	m := newMemory()
	keys := KeysFor("https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration")
	if other := KeysFor("https://login.microsoftonline.com/u/v2.0/.well-known/openid-configuration"); other == keys {
		t.Fatal("two providers share keys")
	}
	if _, err := GetMetadata(m, keys.Metadata); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetMetadata before any = %v", err)
	}
	md := Metadata{FetchedAt: t0, Discovery: []byte(`{"issuer":"x"}`), JWKS: []byte(`{"keys":[]}`)}
	if err := PutMetadata(m, keys.Metadata, md); err != nil {
		t.Fatal(err)
	}
	got, err := GetMetadata(m, keys.Metadata)
	if err != nil || !got.FetchedAt.Equal(t0) || string(got.Discovery) != string(md.Discovery) || string(got.JWKS) != string(md.JWKS) {
		t.Errorf("GetMetadata = %+v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, encode(kindLease, []byte("a"), timeField(t0)), encode(kindMetadata, []byte{1}, nil, nil)} {
		m.put(keys.Metadata, bad)
		if _, err := GetMetadata(m, keys.Metadata); !errors.Is(err, ErrMalformed) {
			t.Errorf("GetMetadata(%q) = %v, want ErrMalformed", bad, err)
		}
	}
	m.setErr[keys.Metadata] = errHost
	if err := PutMetadata(m, keys.Metadata, md); !errors.Is(err, ErrUnavailable) {
		t.Errorf("PutMetadata refused = %v", err)
	}
}

func TestLease(t *testing.T) {
	key := KeysFor("d").Lease
	m := newMemory()
	if err := TakeLease(m, key, "vm1", t0, t0.Add(time.Minute)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a lease on a key never created = %v, want ErrNotFound", err)
	}
	must(t, Create(m, key))
	steps := []struct {
		name   string
		op     func() error
		want   error
		holder string
	}{
		{"vm1 takes it", func() error { return TakeLease(m, key, "vm1", t0, t0.Add(time.Minute)) }, nil, "vm1"},
		{"vm2 waits while it runs", func() error { return TakeLease(m, key, "vm2", t0.Add(59*time.Second), t0.Add(2*time.Minute)) }, ErrTaken, "vm1"},
		{"vm1 takes it again", func() error { return TakeLease(m, key, "vm1", t0.Add(time.Second), t0.Add(time.Minute)) }, nil, "vm1"},
		{"vm2 cannot give back vm1's", func() error { return ReleaseLease(m, key, "vm2") }, ErrTaken, "vm1"},
		{"vm2 takes it once it ran out", func() error { return TakeLease(m, key, "vm2", t0.Add(time.Minute), t0.Add(2*time.Minute)) }, nil, "vm2"},
		{"vm2 gives it back", func() error { return ReleaseLease(m, key, "vm2") }, nil, ""},
		{"vm1 takes it at once", func() error { return TakeLease(m, key, "vm1", t0.Add(61*time.Second), t0.Add(3*time.Minute)) }, nil, "vm1"},
	}
	for _, s := range steps {
		if err := s.op(); !errors.Is(err, s.want) || (s.want == nil) != (err == nil) {
			t.Fatalf("%s: %v, want %v", s.name, err, s.want)
		}
		v, _, _ := m.Get(key)
		if l, _ := parseLease(v); l.holder != s.holder {
			t.Fatalf("%s: holder %q, want %q", s.name, l.holder, s.holder)
		}
	}
	m.put(key, []byte("vm9|99999999999999999999")) // not a record: taken over
	if err := TakeLease(m, key, "vm1", t0, t0.Add(time.Minute)); err != nil {
		t.Errorf("taking over a malformed lease = %v", err)
	}
}

func TestClaimStamp(t *testing.T) {
	m := newMemory()
	var lastSeen time.Time
	every := func(now time.Time) func(time.Time) bool {
		return func(last time.Time) bool { lastSeen = last; return now.Sub(last) >= 5*time.Minute }
	}
	if err := ClaimStamp(m, UnknownKidKey, t0, every(t0)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("on a key never created = %v", err)
	}
	must(t, Create(m, UnknownKidKey))
	must(t, ClaimStamp(m, UnknownKidKey, t0, every(t0)))
	if !lastSeen.IsZero() {
		t.Errorf("first claim saw %v, want the zero time", lastSeen)
	}
	if err := ClaimStamp(m, UnknownKidKey, t0.Add(time.Minute), every(t0.Add(time.Minute))); !errors.Is(err, ErrTaken) {
		t.Errorf("a second claim within the period = %v, want ErrTaken", err)
	}
	if !lastSeen.Equal(t0) {
		t.Errorf("the second claim saw %v, want %v", lastSeen, t0)
	}
	must(t, ClaimStamp(m, UnknownKidKey, t0.Add(5*time.Minute), every(t0.Add(5*time.Minute))))
	m.put(UnknownKidKey, []byte{1, 2, 3}) // the old 8-byte form, cut: counts as none
	must(t, ClaimStamp(m, UnknownKidKey, t0, every(t0)))
}

func TestRefreshSlots(t *testing.T) {
	const sess = "session-1"
	have := t0.Add(time.Minute) // the session's access token expires then
	claim := func(m *memory, holder string, now time.Time) error {
		return Claim(m, sess, holder, have, now, now.Add(10*time.Second))
	}
	tests := []struct {
		name  string
		steps func(m *memory) error
		want  error
		slot  Slot // afterwards, as vm2 reads it
	}{
		{"a free slot is claimed", func(m *memory) error { return claim(m, "vm1", t0) }, nil,
			Slot{State: SlotClaimed, Holder: "vm1", Deadline: t0.Add(10 * time.Second)}},
		{"a running claim is another's", func(m *memory) error {
			must(t, claim(m, "vm1", t0))
			return claim(m, "vm2", t0.Add(9*time.Second))
		}, ErrTaken, Slot{State: SlotClaimed, Holder: "vm1", Deadline: t0.Add(10 * time.Second)}},
		{"a claim that ran out is taken over", func(m *memory) error {
			must(t, claim(m, "vm1", t0))
			return claim(m, "vm2", t0.Add(10*time.Second))
		}, nil, Slot{State: SlotClaimed, Holder: "vm2", Deadline: t0.Add(20 * time.Second)}},
		{"a published renewal is read", func(m *memory) error {
			must(t, claim(m, "vm1", t0))
			return Publish(m, sess, "vm1", []byte("renewed"), t0.Add(time.Hour))
		}, nil, Slot{State: SlotRenewed, Expires: t0.Add(time.Hour), Renewed: []byte("renewed")}},
		{"a newer renewal is taken, not refreshed again", func(m *memory) error {
			must(t, claim(m, "vm1", t0))
			must(t, Publish(m, sess, "vm1", []byte("renewed"), t0.Add(time.Hour)))
			return claim(m, "vm2", t0)
		}, ErrTaken, Slot{State: SlotRenewed, Expires: t0.Add(time.Hour), Renewed: []byte("renewed")}},
		{"an older renewal is refreshed over", func(m *memory) error {
			must(t, claim(m, "vm1", t0))
			must(t, Publish(m, sess, "vm1", []byte("renewed"), have))
			return claim(m, "vm2", t0)
		}, nil, Slot{State: SlotClaimed, Holder: "vm2", Deadline: t0.Add(10 * time.Second)}},
		{"a released claim is free", func(m *memory) error {
			must(t, claim(m, "vm1", t0))
			return Publish(m, sess, "vm1", nil, time.Time{})
		}, nil, Slot{}},
		{"a claim taken over is not published over", func(m *memory) error {
			must(t, claim(m, "vm1", t0))
			must(t, claim(m, "vm2", t0.Add(time.Minute)))
			return Publish(m, sess, "vm1", []byte("late"), t0.Add(time.Hour))
		}, ErrTaken, Slot{State: SlotClaimed, Holder: "vm2", Deadline: t0.Add(time.Minute + 10*time.Second)}},
		{"no claim, nothing to publish", func(m *memory) error {
			return Publish(m, sess, "vm1", []byte("renewed"), t0.Add(time.Hour))
		}, ErrTaken, Slot{}},
		{"another session's claim leaves the slot free for this one's read", func(m *memory) error {
			return Claim(m, otherSessionInSlot(t, sess), "vm1", have, t0, t0.Add(10*time.Second))
		}, nil, Slot{}},
		{"a malformed slot is claimed over", func(m *memory) error {
			m.put(SlotKey(sess), encode(kindClaimed, []byte(sess)))
			return claim(m, "vm1", t0)
		}, nil, Slot{State: SlotClaimed, Holder: "vm1", Deadline: t0.Add(10 * time.Second)}},
		{"a slot missing is a fault", func(m *memory) error {
			m.values = map[string][]byte{}
			return claim(m, "vm1", t0)
		}, ErrNotFound, Slot{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMemory()
			must(t, CreateSlots(m))
			err := tt.steps(m)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			got, err := ReadSlot(m, sess)
			if tt.want == ErrNotFound {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("ReadSlot = %v", err)
				}
				return
			}
			if err != nil || got.State != tt.slot.State || got.Holder != tt.slot.Holder ||
				!got.Deadline.Equal(tt.slot.Deadline) || !got.Expires.Equal(tt.slot.Expires) || string(got.Renewed) != string(tt.slot.Renewed) {
				t.Errorf("slot = %+v, %v; want %+v", got, err, tt.slot)
			}
		})
	}
}

// otherSessionInSlot finds another session id that hashes to id's slot.
func otherSessionInSlot(t *testing.T, id string) string {
	for i := range 1 << 20 {
		if other := fmt.Sprint("other-", i); SlotKey(other) == SlotKey(id) {
			return other
		}
	}
	t.Fatal("no session shares the slot")
	return ""
}

func TestCreateSlotsOncePerProcess(t *testing.T) {
	m := newMemory()
	must(t, CreateSlots(m))
	if m.sets != refreshSlots+1 {
		t.Errorf("the first VM wrote %d keys, want %d", m.sets, refreshSlots+1)
	}
	must(t, Claim(m, "s", "vm1", t0, t0, t0.Add(time.Minute)))
	gets, sets := m.gets, m.sets
	must(t, CreateSlots(m)) // a later VM
	if m.gets-gets != 1 || m.sets != sets {
		t.Errorf("a later VM read %d keys and wrote %d, want 1 and 0", m.gets-gets, m.sets-sets)
	}
	if slot, _ := ReadSlot(m, "s"); slot.State != SlotClaimed {
		t.Errorf("a later VM's start lost a claim: %+v", slot)
	}

	m = newMemory()
	m.setErr[slotKey(7)] = errHost
	if err := CreateSlots(m); !errors.Is(err, ErrUnavailable) {
		t.Errorf("CreateSlots with a refused write = %v", err)
	}
	if _, _, err := m.Get(slotsMadeKey); !errors.Is(err, ErrNotFound) {
		t.Error("the slots were said made when one was not")
	}
}

// Many VMs claiming one session's refresh at once: exactly one wins, and each of the
// others learns that it lost (ErrTaken or ErrConflict), never a fault.
func TestOneClaimWinsUnderContention(t *testing.T) {
	m := newMemory()
	must(t, CreateSlots(m))
	var wg sync.WaitGroup
	results := make([]error, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = Claim(m, "s", fmt.Sprint("vm", i), t0, t0, t0.Add(time.Minute))
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range results {
		switch {
		case err == nil:
			won++
		case IsCoordinationFault(err):
			t.Errorf("a lost claim came back as a fault: %v", err)
		}
	}
	if won != 1 {
		t.Errorf("%d claims won, want 1", won)
	}
}

func TestMarkUsed(t *testing.T) {
	m := newMemory()
	if err := MarkUsed(m, "a", t0.Add(time.Minute), t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("on a key never created = %v", err)
	}
	must(t, Create(m, UsedStatesKey))
	must(t, MarkUsed(m, "a", t0.Add(time.Minute), t0))
	if err := MarkUsed(m, "a", t0.Add(time.Minute), t0.Add(time.Second)); !errors.Is(err, ErrReplayed) {
		t.Errorf("a replay = %v, want ErrReplayed", err)
	}
	must(t, MarkUsed(m, "b", t0.Add(time.Hour), t0))
	// Once a's sign-in expired, its entry is dropped: it could not be completed anyway.
	later := t0.Add(2 * time.Minute)
	must(t, MarkUsed(m, "c", later.Add(time.Minute), later))
	if n := usedCount(t, m); n != 2 {
		t.Errorf("%d entries after a's expiry, want 2 (b, c)", n)
	}
	if used, err := WasUsed(m, "c", later); err != nil || !used {
		t.Errorf("WasUsed of a used state = %v, %v", used, err)
	}
	if used, err := WasUsed(m, "never", later); err != nil || used {
		t.Errorf("WasUsed of a state never used = %v, %v", used, err)
	}
	if used, _ := WasUsed(m, "c", later.Add(2*time.Minute)); used {
		t.Error("WasUsed of a state whose sign-in expired: still used")
	}

	// Full, the oldest give way.
	for i := range maxUsedStates + 10 {
		must(t, MarkUsed(m, fmt.Sprint("s", i), later.Add(time.Hour), later))
	}
	if n := usedCount(t, m); n != maxUsedStates {
		t.Errorf("%d entries, want the bound %d", n, maxUsedStates)
	}
	if err := MarkUsed(m, fmt.Sprint("s", maxUsedStates+9), later.Add(time.Hour), later); !errors.Is(err, ErrReplayed) {
		t.Errorf("the newest entry was lost: %v", err)
	}
	if err := MarkUsed(m, "b", later.Add(time.Hour), later); err != nil {
		t.Errorf("b, the oldest, should have given way: %v", err)
	}

	for _, bad := range [][]byte{encode(kindLease, []byte("x")), encode(kindUsedStates, []byte("short")), {kindUsedStates, 9}} {
		m.put(UsedStatesKey, bad)
		if err := MarkUsed(m, "z", later.Add(time.Hour), later); !errors.Is(err, ErrMalformed) {
			t.Errorf("over %q = %v, want ErrMalformed", bad, err)
		}
		if _, err := WasUsed(m, "z", later); !errors.Is(err, ErrMalformed) {
			t.Errorf("WasUsed over %q = %v, want ErrMalformed", bad, err)
		}
	}
}

func TestMarkUsedUnderContention(t *testing.T) {
	m := newMemory()
	must(t, Create(m, UsedStatesKey))
	other := 0
	m.beforeSet = func(key string) { // another VM marks a state before each write
		other++
		m.mu.Lock()
		v, _ := markUsed(m.values[key], fmt.Sprint("other", other), t0.Add(time.Hour), t0)
		m.set(key, v, 0)
		m.mu.Unlock()
	}
	if err := MarkUsed(m, "mine", t0.Add(time.Hour), t0); !errors.Is(err, ErrConflict) {
		t.Fatalf("losing every round = %v, want ErrConflict", err)
	}
	if other != usedStateTries {
		t.Errorf("%d rounds, want %d", other, usedStateTries)
	}
	m.beforeSet = nil
	if n := usedCount(t, m); n != usedStateTries {
		t.Errorf("the other VM's %d states were not all kept: %d", usedStateTries, n)
	}
	must(t, MarkUsed(m, "mine", t0.Add(time.Hour), t0))
}

func usedCount(t *testing.T, m *memory) int {
	t.Helper()
	v, _, err := m.Get(UsedStatesKey)
	if err != nil {
		t.Fatal(err)
	}
	r, err := decode(v)
	if err != nil {
		t.Fatal(err)
	}
	return len(r.fields)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(kindMetadata, timeField(t0), []byte("{}"), []byte("{}")))
	f.Add(encode(kindClaimed, []byte("s"), []byte("vm"), timeField(t0)))
	f.Add([]byte{kindUsedStates, 0x80})
	f.Fuzz(func(t *testing.T, value []byte) {
		r, err := decode(value)
		if err != nil {
			return
		}
		if len(value) > 0 && !bytes.Equal(encode(r.kind, r.fields...), value) {
			t.Errorf("decode(%q) does not encode back", value)
		}
		parseSlot(value, "s")
		parseLease(value)
		markUsed(value, "s", t0, t0)
	})
}
