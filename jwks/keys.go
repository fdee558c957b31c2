package jwks

import (
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// MinUnknownKeyRefresh is the least time between two JWKS fetches caused by tokens with
// an unknown kid, so that a flood of bogus kids never becomes a fetch per request.
const MinUnknownKeyRefresh = 30 * time.Second

// RefreshAllowed reports whether an unknown kid may trigger a JWKS fetch at now, given
// when the last such fetch started.
func RefreshAllowed(lastUnknownKeyRefresh, now time.Time) bool {
	return lastUnknownKeyRefresh.IsZero() || now.Sub(lastUnknownKeyRefresh) >= MinUnknownKeyRefresh
}

// Limits on what Parse accepts.
const (
	maxJWKSSize = 256 << 10
	maxKeys     = 100
	minRSABits  = 2048
)

// Set is an immutable set of RSA signing keys, by kid.
type Set struct {
	byID map[string]*rsa.PublicKey
	only *rsa.PublicKey // the single key, when there is exactly one
}

// Len is the number of keys.
func (s *Set) Len() int { return len(s.byID) }

// Has reports whether the set holds a key with that kid.
func (s *Set) Has(kid string) bool { _, ok := s.byID[kid]; return ok }

// Parse reads a JWKS document. It keeps keys with kty RSA whose use is "sig" or absent and
// whose alg, if given, is RS256; keys of other kinds are skipped, not errors. Malformed RSA
// keys, keys under 2048 bits and duplicate kids are errors: the document is suspect.
func Parse(body []byte) (*Set, error) {
	if len(body) > maxJWKSSize {
		return nil, fmt.Errorf("%w: document of %d bytes is over the %d limit", ErrKeySet, len(body), maxJWKSSize)
	}
	if !gjson.ValidBytes(body) {
		return nil, fmt.Errorf("%w: not JSON", ErrKeySet)
	}
	keys := gjson.GetBytes(body, "keys")
	if !keys.IsArray() {
		return nil, fmt.Errorf("%w: no \"keys\" array", ErrKeySet)
	}
	set := &Set{byID: map[string]*rsa.PublicKey{}}
	var err error
	n := 0
	keys.ForEach(func(_, k gjson.Result) bool {
		if n++; n > maxKeys {
			err = fmt.Errorf("%w: more than %d keys", ErrKeySet, maxKeys)
			return false
		}
		if k.Get("kty").String() != "RSA" {
			return true
		}
		if use := k.Get("use"); use.Exists() && use.String() != "sig" {
			return true
		}
		if alg := k.Get("alg"); alg.Exists() && alg.String() != "RS256" {
			return true
		}
		kid := k.Get("kid").String()
		var pub *rsa.PublicKey
		if pub, err = rsaKey(k.Get("n").String(), k.Get("e").String()); err != nil {
			err = fmt.Errorf("%w: key %q: %v", ErrKeySet, kid, err)
			return false
		}
		if _, dup := set.byID[kid]; dup {
			err = fmt.Errorf("%w: kid %q appears twice", ErrKeySet, kid)
			return false
		}
		set.byID[kid] = pub
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(set.byID) == 0 {
		return nil, fmt.Errorf("%w: no RSA signing key", ErrKeySet)
	}
	if len(set.byID) == 1 {
		for _, k := range set.byID {
			set.only = k
		}
	}
	return set, nil
}

func rsaKey(n64, e64 string) (*rsa.PublicKey, error) {
	n, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(n64, "="))
	if err != nil || len(n) == 0 {
		return nil, fmt.Errorf("modulus \"n\" is not base64url")
	}
	e, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(e64, "="))
	if err != nil || len(e) == 0 || len(e) > 4 {
		return nil, fmt.Errorf("exponent \"e\" is not a small base64url integer")
	}
	exp := 0
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	mod := new(big.Int).SetBytes(n)
	if mod.BitLen() < minRSABits {
		return nil, fmt.Errorf("modulus of %d bits is under %d", mod.BitLen(), minRSABits)
	}
	if exp < 3 || exp%2 == 0 {
		return nil, fmt.Errorf("exponent %d is not a valid RSA exponent", exp)
	}
	return &rsa.PublicKey{N: mod, E: exp}, nil
}
