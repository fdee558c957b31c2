package config

import (
	"bytes"
	"crypto/rsa"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Reading the client-assertion key and certificate from DER. crypto/x509 does this too,
// but its parsers for every key, curve and extension type add a third of a megabyte to
// the module, for two calls at configuration time. Only RSA is read: Entra's client
// assertions are RS256.

// oidRSAEncryption is rsaEncryption (1.2.840.113549.1.1.1), DER-encoded.
var oidRSAEncryption = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01}

// Other key types a PKCS #8 block may hold, named in the error.
var (
	oidECPublicKey = []byte{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01} // 1.2.840.10045.2.1
	oidEd25519     = []byte{0x2b, 0x65, 0x70}                         // 1.3.101.112
)

var errNotRSAKeyDER = errors.New("not a PKCS #1 or PKCS #8 private key")

// parseRSAPrivateKey reads an RSA private key in PKCS #1 (RSA PRIVATE KEY) or PKCS #8
// (PRIVATE KEY) DER, and checks that its numbers make a valid key.
func parseRSAPrivateKey(der []byte) (*rsa.PrivateKey, error) {
	if k, err := parsePKCS1PrivateKey(der); !errors.Is(err, errNotRSAKeyDER) {
		return k, err // PKCS #1, valid or not
	}
	in := cryptobyte.String(der)
	var info, algorithm, oid, key cryptobyte.String
	var version int
	if !in.ReadASN1(&info, asn1.SEQUENCE) || !in.Empty() ||
		!info.ReadASN1Integer(&version) || (version != 0 && version != 1) ||
		!info.ReadASN1(&algorithm, asn1.SEQUENCE) || !algorithm.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) ||
		!info.ReadASN1(&key, asn1.OCTET_STRING) {
		return nil, errNotRSAKeyDER
	}
	switch {
	case bytes.Equal(oid, oidRSAEncryption):
		return parsePKCS1PrivateKey(key)
	case bytes.Equal(oid, oidECPublicKey):
		return nil, errors.New("holds an EC key")
	case bytes.Equal(oid, oidEd25519):
		return nil, errors.New("holds an Ed25519 key")
	}
	return nil, errors.New("holds a key that is not RSA")
}

// parsePKCS1PrivateKey reads RFC 8017's RSAPrivateKey (two primes).
func parsePKCS1PrivateKey(der []byte) (*rsa.PrivateKey, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	var version, e int
	n, d, p, q, dp, dq, qinv := new(big.Int), new(big.Int), new(big.Int), new(big.Int), new(big.Int), new(big.Int), new(big.Int)
	// The version, then the modulus: an integer (a PKCS #8 block has a sequence there).
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() || !seq.ReadASN1Integer(&version) || !seq.PeekASN1Tag(asn1.INTEGER) {
		return nil, errNotRSAKeyDER
	}
	if version != 0 {
		return nil, errors.New("a multi-prime RSA key is not supported")
	}
	if !seq.ReadASN1Integer(n) || !seq.ReadASN1Integer(&e) || !seq.ReadASN1Integer(d) || !seq.ReadASN1Integer(p) ||
		!seq.ReadASN1Integer(q) || !seq.ReadASN1Integer(dp) || !seq.ReadASN1Integer(dq) || !seq.ReadASN1Integer(qinv) ||
		!seq.Empty() {
		return nil, errNotRSAKeyDER
	}
	for _, x := range []*big.Int{n, d, p, q} {
		if x.Sign() <= 0 {
			return nil, errors.New("an RSA key with a number that is not positive")
		}
	}
	k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: e}, D: d, Primes: []*big.Int{p, q}}
	if err := k.Validate(); err != nil {
		return nil, fmt.Errorf("an invalid RSA key: %v", err)
	}
	k.Precompute()
	if k.Precomputed.Dp.Cmp(dp) != 0 || k.Precomputed.Dq.Cmp(dq) != 0 || k.Precomputed.Qinv.Cmp(qinv) != 0 {
		return nil, errors.New("an invalid RSA key: its CRT values do not match its primes")
	}
	return k, nil
}

// certificateRSAKey reads the RSA public key of an X.509 certificate's
// subjectPublicKeyInfo (RFC 5280). Nothing else of the certificate is checked: Entra
// checks the assertion against the certificate registered on the app registration.
func certificateRSAKey(der []byte) (*rsa.PublicKey, error) {
	in := cryptobyte.String(der)
	var cert, tbs, spki, algorithm, oid, bits cryptobyte.String
	if !in.ReadASN1(&cert, asn1.SEQUENCE) || !in.Empty() ||
		!cert.ReadASN1(&tbs, asn1.SEQUENCE) ||
		!cert.SkipASN1(asn1.SEQUENCE) || // signatureAlgorithm
		!cert.SkipASN1(asn1.BIT_STRING) || !cert.Empty() ||
		!tbs.SkipOptionalASN1(asn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.SkipASN1(asn1.INTEGER) || // serialNumber
		!tbs.SkipASN1(asn1.SEQUENCE) || // signature
		!tbs.SkipASN1(asn1.SEQUENCE) || // issuer
		!tbs.SkipASN1(asn1.SEQUENCE) || // validity
		!tbs.SkipASN1(asn1.SEQUENCE) || // subject
		!tbs.ReadASN1(&spki, asn1.SEQUENCE) ||
		!spki.ReadASN1(&algorithm, asn1.SEQUENCE) || !algorithm.ReadASN1(&oid, asn1.OBJECT_IDENTIFIER) {
		return nil, errors.New("not an X.509 certificate")
	}
	if !bytes.Equal(oid, oidRSAEncryption) {
		return nil, errors.New("the certificate's key is not RSA")
	}
	var unused uint8
	if !spki.ReadASN1(&bits, asn1.BIT_STRING) || !bits.ReadUint8(&unused) || unused != 0 {
		return nil, errors.New("not an X.509 certificate")
	}
	// What the bit string holds: RSAPublicKey, SEQUENCE { modulus, publicExponent }.
	var key cryptobyte.String
	n, e := new(big.Int), 0
	if !bits.ReadASN1(&key, asn1.SEQUENCE) || !bits.Empty() || !key.ReadASN1Integer(n) || !key.ReadASN1Integer(&e) || !key.Empty() ||
		n.Sign() <= 0 || e <= 0 {
		return nil, errors.New("the certificate's RSA key is malformed")
	}
	return &rsa.PublicKey{N: n, E: e}, nil
}
