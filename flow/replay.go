package flow

import (
	"crypto/sha256"
	"encoding/binary"
	"time"
)

// Used states are remembered until their sign-in would have expired anyway, so that a
// callback cannot be replayed even by someone holding the sign-in cookie. The record is a
// list of (hash prefix, expiry) entries that the filter keeps in shared data, bounded to
// maxUsedStates: when full, the entries closest to expiry give way.
const (
	usedStateHash = 16
	usedStateSize = usedStateHash + 8
	maxUsedStates = 1024
)

// MarkStateUsed records state in record, the shared list of used states, dropping
// expired entries. It reports whether the state was already there.
func MarkStateUsed(record []byte, state string, expires, now time.Time) (updated []byte, alreadyUsed bool) {
	sum := sha256.Sum256([]byte(state))
	updated = make([]byte, 0, len(record)+usedStateSize)
	for i := 0; i+usedStateSize <= len(record); i += usedStateSize {
		entry := record[i : i+usedStateSize]
		if int64(binary.LittleEndian.Uint64(entry[usedStateHash:])) <= now.Unix() {
			continue
		}
		if [usedStateHash]byte(entry[:usedStateHash]) == [usedStateHash]byte(sum[:usedStateHash]) {
			alreadyUsed = true
		}
		updated = append(updated, entry...)
	}
	if alreadyUsed {
		return updated, true
	}
	if len(updated) >= maxUsedStates*usedStateSize {
		updated = updated[usedStateSize:] // the oldest entry: appended first
	}
	updated = append(updated, sum[:usedStateHash]...)
	updated = binary.LittleEndian.AppendUint64(updated, uint64(expires.Unix()))
	return updated, false
}
