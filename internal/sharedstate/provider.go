package sharedstate

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"
)

// ProviderKeys are the keys of one identity provider's metadata and of its fetch lease.
// They are kept per discovery URL: a configuration push that changes authority or tenant
// must not adopt the metadata fetched for the old one.
type ProviderKeys struct {
	Metadata, Lease string
}

// KeysFor returns the keys for the provider whose discovery document is at discoveryURL.
func KeysFor(discoveryURL string) ProviderKeys {
	h := fnv.New64a()
	h.Write([]byte(discoveryURL))
	suffix := strconv.FormatUint(h.Sum64(), 16)
	return ProviderKeys{Metadata: prefix + "idp-metadata/" + suffix, Lease: prefix + "idp-fetch-lease/" + suffix}
}

// Metadata is the provider's configuration as fetched: the discovery document's and the
// JWKS's bodies as the provider sent them, so that every VM parses the same bytes.
type Metadata struct {
	FetchedAt       time.Time
	Discovery, JWKS []byte
}

// PutMetadata shares md, whatever was there: each fetch is complete on its own, and
// readers take it only when it is newer than theirs.
func PutMetadata(s Store, key string, md Metadata) error {
	if err := s.Set(key, encode(kindMetadata, timeField(md.FetchedAt), md.Discovery, md.JWKS), 0); err != nil {
		return fmt.Errorf("writing %s: %w", key, err)
	}
	return nil
}

// GetMetadata reads the shared metadata. Its bodies alias what the store returned.
func GetMetadata(s Store, key string) (Metadata, error) {
	value, _, err := s.Get(key)
	if err != nil {
		return Metadata{}, fmt.Errorf("reading %s: %w", key, err)
	}
	r, err := decode(value)
	if err == nil {
		err = r.want(kindMetadata, 3)
	}
	if err != nil {
		return Metadata{}, err
	}
	at, err := parseTime(r.fields[0])
	return Metadata{FetchedAt: at, Discovery: r.fields[1], JWKS: r.fields[2]}, err
}

// TakeLease gives holder the right to fetch the metadata until until, unless another
// holder's lease still runs at now (ErrTaken). A lease expires, so that a VM that dies
// mid-fetch does not hold up the others for longer than that.
func TakeLease(s Store, key, holder string, now, until time.Time) error {
	return Update(s, key, 1, func(current []byte) ([]byte, error) {
		if l, err := parseLease(current); err == nil && l.holder != holder && now.Before(l.until) {
			return nil, ErrTaken
		}
		return encode(kindLease, []byte(holder), timeField(until)), nil
	})
}

// ReleaseLease gives back holder's lease; ErrTaken when holder no longer holds it.
func ReleaseLease(s Store, key, holder string) error {
	return Update(s, key, 1, func(current []byte) ([]byte, error) {
		if l, err := parseLease(current); err != nil || l.holder != holder {
			return nil, ErrTaken
		}
		return nil, nil
	})
}

type lease struct {
	holder string
	until  time.Time
}

func parseLease(value []byte) (lease, error) {
	r, err := decode(value)
	if err == nil {
		err = r.want(kindLease, 2)
	}
	if err != nil {
		return lease{}, err
	}
	until, err := parseTime(r.fields[1])
	return lease{holder: string(r.fields[0]), until: until}, err
}

// UnknownKidKey holds when keys were last fetched again for a token naming a kid the key
// set lacked.
const UnknownKidKey = prefix + "jwks-unknown-kid-refresh"

// ClaimStamp writes now under key when allowed says that the time written there last
// permits it (the zero time when none was), and ErrTaken when it does not: one VM of the
// process wins each period.
func ClaimStamp(s Store, key string, now time.Time, allowed func(last time.Time) bool) error {
	return Update(s, key, 1, func(current []byte) ([]byte, error) {
		var last time.Time // a malformed stamp counts as none
		if r, err := decode(current); err == nil && r.want(kindStamp, 1) == nil {
			last, _ = parseTime(r.fields[0])
		}
		if !allowed(last) {
			return nil, ErrTaken
		}
		return encode(kindStamp, timeField(now)), nil
	})
}
