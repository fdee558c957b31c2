package sharedstate

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"
)

// Session refreshes are coordinated through slots: a VM claims the session's slot before
// refreshing, the others wait and take the renewed session it publishes there. Shared
// data cannot delete keys, so sessions share a fixed number of slots; a slot another
// session took over costs only a wait until that claim runs out, then a refresh of one's own.
const refreshSlots = 512

// slotsMadeKey is written once every slot exists.
const slotsMadeKey = prefix + "refresh/made"

func slotKey(i int) string { return prefix + "refresh/" + strconv.Itoa(i) }

// SlotKey is the key of the slot sessionID's refresh uses.
func SlotKey(sessionID string) string {
	h := fnv.New32a()
	h.Write([]byte(sessionID))
	return slotKey(int(h.Sum32() % refreshSlots))
}

// CreateSlots makes every refresh slot exist (Create) once per process: the first VM to
// start (Envoy's canary) makes them and then says so under one key, so that the VMs that
// follow read one key instead of 512 and never write a slot blind while a VM that
// started before them may hold a claim in it.
func CreateSlots(s Store) error {
	if _, _, err := s.Get(slotsMadeKey); err == nil {
		return nil
	}
	keys := make([]string, refreshSlots)
	for i := range keys {
		keys[i] = slotKey(i)
	}
	if err := Create(s, keys...); err != nil {
		return err
	}
	if err := s.Set(slotsMadeKey, []byte{1}, 0); err != nil {
		return fmt.Errorf("writing %s: %w", slotsMadeKey, err)
	}
	return nil
}

// SlotState is what a slot says of one session.
type SlotState int

const (
	// SlotFree: nobody is refreshing the session (or the slot holds another session).
	SlotFree SlotState = iota
	// SlotClaimed: a VM is refreshing the session until Slot.Deadline.
	SlotClaimed
	// SlotRenewed: a VM renewed the session; Slot.Renewed holds it.
	SlotRenewed
)

// Slot is a session's refresh slot as read.
type Slot struct {
	State SlotState
	// Holder and Deadline are the claim's (SlotClaimed).
	Holder   string
	Deadline time.Time
	// Expires is when the renewed session's access token expires, and Renewed the
	// session as the renewing VM marshalled it (SlotRenewed).
	Expires time.Time
	Renewed []byte
}

// ReadSlot reads what sessionID's slot says of it. A slot holding another session's
// refresh, or none, is SlotFree.
func ReadSlot(s Store, sessionID string) (Slot, error) {
	key := SlotKey(sessionID)
	value, _, err := s.Get(key)
	if err != nil {
		return Slot{}, fmt.Errorf("reading %s: %w", key, err)
	}
	return parseSlot(value, sessionID)
}

func parseSlot(value []byte, sessionID string) (Slot, error) {
	r, err := decode(value)
	if err != nil || len(r.fields) == 0 || string(r.fields[0]) != sessionID {
		return Slot{}, err
	}
	switch r.kind {
	case kindClaimed:
		if err := r.want(kindClaimed, 3); err != nil {
			return Slot{}, err
		}
		deadline, err := parseTime(r.fields[2])
		return Slot{State: SlotClaimed, Holder: string(r.fields[1]), Deadline: deadline}, err
	case kindRenewed:
		if err := r.want(kindRenewed, 3); err != nil {
			return Slot{}, err
		}
		expires, err := parseTime(r.fields[1])
		return Slot{State: SlotRenewed, Expires: expires, Renewed: r.fields[2]}, err
	case kindReleased:
		return Slot{}, r.want(kindReleased, 1)
	}
	return Slot{}, fmt.Errorf("%w: a refresh slot of kind %q", ErrMalformed, r.kind)
}

// Claim takes sessionID's slot for holder until deadline. It fails with ErrTaken while
// another holder's claim runs at now, or when the slot holds a renewal whose access token
// outlives have (the session's own): that one is to be taken, not refreshed again. A
// malformed slot is claimed over.
func Claim(s Store, sessionID, holder string, have, now, deadline time.Time) error {
	return Update(s, SlotKey(sessionID), 1, func(current []byte) ([]byte, error) {
		slot, _ := parseSlot(current, sessionID)
		switch {
		case slot.State == SlotClaimed && slot.Holder != holder && now.Before(slot.Deadline),
			slot.State == SlotRenewed && slot.Expires.After(have):
			return nil, ErrTaken
		}
		return encode(kindClaimed, []byte(sessionID), []byte(holder), timeField(deadline)), nil
	})
}

// Publish ends holder's claim on sessionID's slot: with the renewed session (marshalled,
// its access token expiring at expires), or, when renewed is nil, by releasing it. It
// fails with ErrTaken when the claim is no longer holder's (it ran out and another VM
// took it over: that one publishes instead).
func Publish(s Store, sessionID, holder string, renewed []byte, expires time.Time) error {
	return Update(s, SlotKey(sessionID), 1, func(current []byte) ([]byte, error) {
		slot, err := parseSlot(current, sessionID)
		if err != nil || slot.State != SlotClaimed || slot.Holder != holder {
			return nil, ErrTaken
		}
		if renewed == nil {
			return encode(kindReleased, []byte(sessionID)), nil
		}
		return encode(kindRenewed, []byte(sessionID), timeField(expires), renewed), nil
	})
}

// IsCoordinationFault reports whether err is the shared data failing (a missing key,
// the host refusing, a value not ours), rather than another VM holding or winning.
func IsCoordinationFault(err error) bool {
	return err != nil && !errors.Is(err, ErrTaken) && !errors.Is(err, ErrConflict)
}
