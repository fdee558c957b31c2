// Package entratest is what entra-auth's tests share to stand in for Entra ID's keys:
// RSA keys made once per test binary (a 2048-bit key takes tens of milliseconds), keys
// rendered as Entra publishes them, key set documents, and self-signed certificates. Unit
// tests of config, flow, jwks and filter and the end-to-end tests use it; nothing else may.
package entratest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"sync"
	"testing"
)

var (
	keysMu sync.Mutex
	keys   = map[string]*rsa.PrivateKey{}
)

// RSAKey returns the test binary's 2048-bit RSA key called name, made on first use: the
// same name is the same key, different names are different keys.
func RSAKey(tb testing.TB, name string) *rsa.PrivateKey {
	tb.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[name]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	keys[name] = k
	return k
}

// JWK renders pub as Entra ID publishes a signing key: kty RSA, use sig, kid, x5t, n, e,
// x5c, no alg; and issuer, which Entra's keys name, when it is not empty.
func JWK(kid string, pub *rsa.PublicKey, issuer string) map[string]any {
	k := map[string]any{
		"kty": "RSA", "use": "sig", "kid": kid, "x5t": kid,
		"n":   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		"x5c": []string{base64.StdEncoding.EncodeToString([]byte("not a real certificate"))},
	}
	if issuer != "" {
		k["issuer"] = issuer
	}
	return k
}

// JWKS is a key set document ({"keys": [...]}) of keys.
func JWKS(tb testing.TB, keys ...map[string]any) []byte {
	tb.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
