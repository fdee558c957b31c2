package config

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"math/big"
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/internal/entratest"
)

func TestParseRSAPrivateKey(t *testing.T) {
	rsaTestKey := entratest.RSAKey(t, "der")
	pkcs1 := x509.MarshalPKCS1PrivateKey(rsaTestKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaTestKey)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec8, _ := x509.MarshalPKCS8PrivateKey(ecKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	ed8, _ := x509.MarshalPKCS8PrivateKey(edKey)
	// A key whose private exponent does not match: well-formed, invalid.
	bad := *rsaTestKey
	bad.D = new(big.Int).Add(rsaTestKey.D, big.NewInt(2))
	badDER := x509.MarshalPKCS1PrivateKey(&bad)

	for _, tc := range []struct {
		name    string
		der     []byte
		wantErr string // empty: parses to rsaTestKey
	}{
		{"PKCS #1", pkcs1, ""},
		{"PKCS #8", pkcs8, ""},
		{"PKCS #8 with an EC key", ec8, "holds an EC key"},
		{"PKCS #8 with an Ed25519 key", ed8, "holds an Ed25519 key"},
		{"PKCS #1, exponent does not match", badDER, "an invalid RSA key"},
		{"PKCS #1, truncated", pkcs1[:len(pkcs1)-10], errNotRSAKeyDER.Error()},
		{"PKCS #8, truncated", pkcs8[:len(pkcs8)-10], errNotRSAKeyDER.Error()},
		{"PKCS #1, trailing bytes", append(append([]byte{}, pkcs1...), 0), errNotRSAKeyDER.Error()},
		{"empty", nil, errNotRSAKeyDER.Error()},
		{"not DER", []byte("-----BEGIN PRIVATE KEY-----"), errNotRSAKeyDER.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := parseRSAPrivateKey(tc.der)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !k.Equal(rsaTestKey) {
				t.Fatalf("parsed %v, %v", k != nil, err)
			}
			sig, err := rsa.SignPKCS1v15(rand.Reader, k, 0, []byte("hashed"))
			if err != nil || rsa.VerifyPKCS1v15(&rsaTestKey.PublicKey, 0, []byte("hashed"), sig) != nil {
				t.Fatalf("the parsed key does not sign: %v", err)
			}
		})
	}
}

func TestCertificateRSAKey(t *testing.T) {
	rsaTestKey := entratest.RSAKey(t, "der")
	_, _, rsaCert := entratest.Certificate(t, rsaTestKey)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, _, ecCert := entratest.Certificate(t, ecKey)
	pub, err := certificateRSAKey(rsaCert)
	if err != nil || !pub.Equal(&rsaTestKey.PublicKey) {
		t.Fatalf("RSA certificate: %v", err)
	}
	for name, der := range map[string][]byte{
		"EC certificate":  ecCert,
		"truncated":       rsaCert[:len(rsaCert)-1],
		"trailing bytes":  append(append([]byte{}, rsaCert...), 0),
		"a key, not cert": x509.MarshalPKCS1PrivateKey(rsaTestKey),
		"empty":           nil,
	} {
		if _, err := certificateRSAKey(der); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// FuzzParseRSAPrivateKey: no input panics, and whatever the key parser reads as an RSA
// key, crypto/x509 reads as the same key. (crypto/x509 is more lenient: it takes a PKCS #1
// key without dP, dQ and qInv, which RFC 8017 requires; this parser refuses it.)
func FuzzParseRSAPrivateKey(f *testing.F) {
	rsaTestKey := entratest.RSAKey(f, "der")
	f.Add(x509.MarshalPKCS1PrivateKey(rsaTestKey))
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaTestKey)
	f.Add(pkcs8)
	f.Fuzz(func(t *testing.T, der []byte) {
		ours, err := parseRSAPrivateKey(der)
		if err != nil {
			return
		}
		if theirs := x509RSAKey(der); theirs == nil || !ours.Equal(theirs) {
			t.Fatalf("read a key crypto/x509 does not (or reads differently): %v", theirs != nil)
		}
	})
}

func x509RSAKey(der []byte) *rsa.PrivateKey {
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k
	}
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if r, ok := k.(*rsa.PrivateKey); ok {
			return r
		}
	}
	return nil
}

// FuzzCertificateRSAKey: every certificate crypto/x509 reads with an RSA key gives the
// same key here, and no input panics. (This parser checks less than crypto/x509: a
// certificate Entra would not accept fails there, at the token request.)
func FuzzCertificateRSAKey(f *testing.F) {
	f.Fuzz(func(t *testing.T, der []byte) {
		ours, err := certificateRSAKey(der)
		cert, xerr := x509.ParseCertificate(der)
		if xerr != nil {
			return
		}
		theirs, ok := cert.PublicKey.(*rsa.PublicKey)
		if !ok {
			if err == nil {
				t.Fatal("read an RSA key from a certificate crypto/x509 reads as another kind")
			}
			return
		}
		if err != nil || !ours.Equal(theirs) {
			t.Fatalf("crypto/x509 reads an RSA key; ours: %v", err)
		}
	})
}
