package sharedstate

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// UsedStatesKey holds the sign-in states whose callback was completed, so that a callback
// cannot be replayed, even by someone holding the sign-in cookie, until its sign-in would
// have expired anyway.
const UsedStatesKey = prefix + "used-states"

// The record of used states is one field per state: a hash prefix and the expiry.
// It holds at most maxUsedStates; when full, the oldest entry gives way.
const (
	usedStateHash = 16
	usedStateSize = usedStateHash + 8
	maxUsedStates = 1024
)

// usedStateTries bounds the compare-and-swap rounds of MarkUsed under contention.
const usedStateTries = 8

// ErrReplayed is a sign-in state already in the record of used states.
var ErrReplayed = errors.New("this sign-in was already completed")

// MarkUsed records state, whose sign-in expires at expires, as used, dropping entries
// that expired by now. It fails with ErrReplayed when the state was already there, and
// with the errors of Update (and ErrMalformed for a record that is not ours) when the
// record cannot be read, written or won: a callback must not go ahead then.
func MarkUsed(s Store, state string, expires, now time.Time) error {
	return Update(s, UsedStatesKey, usedStateTries, func(current []byte) ([]byte, error) {
		return markUsed(current, state, expires, now)
	})
}

func markUsed(current []byte, state string, expires, now time.Time) ([]byte, error) {
	r, err := decode(current)
	if err != nil {
		return nil, err
	}
	if len(current) > 0 && r.kind != kindUsedStates {
		return nil, fmt.Errorf("%w: the used states are a record of kind %q", ErrMalformed, r.kind)
	}
	sum := sha256.Sum256([]byte(state))
	kept := make([][]byte, 0, len(r.fields)+1)
	for _, entry := range r.fields {
		if len(entry) != usedStateSize {
			return nil, fmt.Errorf("%w: a used state of %d bytes", ErrMalformed, len(entry))
		}
		if int64(binary.LittleEndian.Uint64(entry[usedStateHash:])) <= now.Unix() {
			continue
		}
		if [usedStateHash]byte(entry) == [usedStateHash]byte(sum[:]) {
			return nil, ErrReplayed
		}
		kept = append(kept, entry)
	}
	if len(kept) >= maxUsedStates {
		kept = kept[len(kept)-maxUsedStates+1:] // the oldest entries: appended first
	}
	entry := binary.LittleEndian.AppendUint64(sum[:usedStateHash:usedStateHash], uint64(expires.Unix()))
	return encode(kindUsedStates, append(kept, entry)...), nil
}

// WasUsed reports whether state is in the record of used states (and its sign-in has not
// expired by now): a callback for it was completed on some worker of this process.
func WasUsed(s Store, state string, now time.Time) (bool, error) {
	value, _, err := s.Get(UsedStatesKey)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", UsedStatesKey, err)
	}
	_, err = markUsed(value, state, now, now)
	switch {
	case errors.Is(err, ErrReplayed):
		return true, nil
	case err != nil:
		return false, err
	}
	return false, nil
}
