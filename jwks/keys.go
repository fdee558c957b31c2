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
	// issuers are the issuers keys name (Entra's key sets do): such a key signs only
	// that issuer's tokens.
	issuers map[*rsa.PublicKey]string
	// Skipped says, for each key left out as malformed or unusable, why: the caller logs
	// it once per fetch.
	Skipped []string
}

// Len is the number of keys.
func (s *Set) Len() int { return len(s.byID) }

// has reports whether the set holds a key with that kid.
func (s *Set) has(kid string) bool { _, ok := s.byID[kid]; return ok }

// issuerOf returns the issuer a key names, if it names one.
func (s *Set) issuerOf(k *rsa.PublicKey) (string, bool) {
	iss, ok := s.issuers[k]
	return iss, ok
}

// Parse reads a JWKS document. It keeps keys with kty RSA whose use is "sig" or absent and
// whose alg, if given, is RS256; keys of other kinds are left aside without a word. An RSA
// signing key that is malformed or under 2048 bits, one whose issuer is not a string, and
// every key of a kid that appears twice are skipped and listed in Skipped: one bad key
// does not take the others down. A document with no usable key is ErrKeySet.
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
	set := &Set{byID: map[string]*rsa.PublicKey{}, issuers: map[*rsa.PublicKey]string{}}
	duplicate := map[string]bool{}
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
		pub, keyErr := rsaKey(k.Get("n").String(), k.Get("e").String())
		if keyErr != nil {
			set.Skipped = append(set.Skipped, fmt.Sprintf("key %q: %v", kid, keyErr))
			return true
		}
		issuer := k.Get("issuer")
		if issuer.Exists() && issuer.Type != gjson.String {
			set.Skipped = append(set.Skipped, fmt.Sprintf("key %q: its issuer is not a string", kid))
			return true
		}
		if _, dup := set.byID[kid]; dup || duplicate[kid] {
			set.Skipped = append(set.Skipped, fmt.Sprintf("kid %q appears twice; neither key is used", kid))
			delete(set.byID, kid)
			duplicate[kid] = true
			return true
		}
		set.byID[kid] = pub
		if issuer.Exists() {
			set.issuers[pub] = issuer.Str
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(set.byID) == 0 {
		return nil, fmt.Errorf("%w: no usable RSA signing key (%s)", ErrKeySet, strings.Join(set.Skipped, "; "))
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
