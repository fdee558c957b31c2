// Package sharedstate is what the VMs of one Envoy process (one per worker) share through
// proxy-wasm shared data: the provider's metadata and its fetch lease, the time of the
// last key refetch for an unknown kid, the session refresh slots, and the used sign-in
// states. Every value is one record encoding (Record), and every guarded write goes
// through Update, a compare-and-swap whose failures are errors the caller must decide on:
// ErrNotFound, ErrConflict, ErrUnavailable, ErrMalformed.
//
// The package does not import the proxy-wasm SDK: the filter hands it a Store backed by
// the host, and tests one that answers as Envoy does (Memory).
package sharedstate

import (
	"errors"
	"fmt"
)

// Store is a VM's view of shared data, as proxy-wasm gives it: Get returns a value and
// its compare-and-swap token; Set writes a value when cas is 0 or still the key's token.
// Implementations return ErrNotFound from Get for a key that does not exist,
// ErrConflict from Set when cas is stale, and wrap anything else in ErrUnavailable.
type Store interface {
	Get(key string) (value []byte, cas uint32, err error)
	Set(key string, value []byte, cas uint32) error
}

// The ways a read or write of shared data fails. Envoy's shared data
// (proxy-wasm-cpp-host src/shared_data.cc, SharedData::get and SharedData::set) answers
// only NotFound and CasMismatch, and has no size limit; ErrUnavailable is any other
// answer of a host, such as a refused argument.
var (
	// ErrNotFound is a key that does not exist. Update never creates one: shared data's
	// compare-and-swap guards only keys that exist, so keys are made at plugin start
	// (Create, CreateSlots) and a missing one afterwards is a fault.
	ErrNotFound = errors.New("shared data: the key does not exist")
	// ErrConflict is a compare-and-swap lost to another VM's write, after the tries
	// Update was given.
	ErrConflict = errors.New("shared data: another worker changed the value first")
	// ErrUnavailable is the host refusing a read or write for another reason.
	ErrUnavailable = errors.New("shared data: the host refused the operation")
	// ErrMalformed is a value that is not a record this package wrote.
	ErrMalformed = errors.New("shared data: the value is not a record entra-auth wrote")
	// ErrTaken is a lease, claim or stamp that another VM holds, or that is not due yet.
	ErrTaken = errors.New("shared data: held by another worker")
)

// prefix starts every key. Shared data outlives a configuration push and a module
// upgrade under the same vm_id, so the record version is part of every key: a module
// with another encoding reads keys of its own.
const prefix = "entra-auth/v2/"

// Create makes each key exist with an empty value unless it exists already. The writes
// are blind (shared data cannot create a key atomically), so Create belongs at plugin
// start, before any Update of the key: VMs that start together may both write the empty
// value, which is harmless.
func Create(s Store, keys ...string) error {
	for _, key := range keys {
		_, _, err := s.Get(key)
		switch {
		case err == nil:
		case errors.Is(err, ErrNotFound):
			if err := s.Set(key, nil, 0); err != nil {
				return fmt.Errorf("creating %s: %w", key, err)
			}
		default:
			return fmt.Errorf("reading %s: %w", key, err)
		}
	}
	return nil
}

// Update reads key, asks change for its next value, and writes that with a
// compare-and-swap on what it read; when another VM wrote in between it reads again, up
// to tries times in all. An error from change is returned as it is, and nothing is
// written. Update fails with ErrNotFound for a key that does not exist (it never writes
// blind), ErrConflict when every try lost, ErrUnavailable when the host refused.
func Update(s Store, key string, tries int, change func(current []byte) ([]byte, error)) error {
	for range tries {
		current, cas, err := s.Get(key)
		if err != nil {
			return fmt.Errorf("reading %s: %w", key, err)
		}
		next, err := change(current)
		if err != nil {
			return err
		}
		err = s.Set(key, next, cas)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return fmt.Errorf("writing %s: %w", key, err)
		}
	}
	return fmt.Errorf("writing %s (%d tries): %w", key, tries, ErrConflict)
}
