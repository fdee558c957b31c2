package flow

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tidwall/gjson"
)

// Secretless client authentication: instead of a client secret, the filter proves it is
// the application with a certificate registered on the app registration, signing a short
// JWT (a client assertion, RFC 7523 and OpenID Connect's private_key_jwt) with the
// certificate's private key; Entra finds the certificate by the x5t#S256 thumbprint.

// ClientAssertion is the key and certificate thumbprint client assertions are signed
// with.
type ClientAssertion struct {
	Key *rsa.PrivateKey
	// Thumbprint is the certificate's x5t#S256: the base64url SHA-256 of its DER.
	Thumbprint string
}

// clientAssertionLifetime is how long a signed assertion is valid.
const clientAssertionLifetime = 5 * time.Minute

// parseClientAssertion reads client_assertion: {"private_key_env", "certificate_env"},
// each naming a VM variable that holds PEM ("\n" written as \n is accepted too).
func (p *configParser) parseClientAssertion() *ClientAssertion {
	block := p.root.Get("client_assertion")
	if !block.Exists() {
		return nil
	}
	if !block.IsObject() {
		p.fail("client_assertion", `must be {"private_key_env": "...", "certificate_env": "..."}`)
		return nil
	}
	sub := &configParser{root: block, prefix: "client_assertion.", getenv: p.getenv}
	block.ForEach(func(k, _ gjson.Result) bool {
		if !slices.Contains([]string{"private_key_env", "certificate_env"}, k.String()) {
			sub.fail(k.String(), "unknown key; the keys are: private_key_env, certificate_env")
		}
		return true
	})
	defer func() { p.problems = append(p.problems, sub.problems...) }()
	keyPEM, certPEM := sub.pemFromEnv("private_key_env"), sub.pemFromEnv("certificate_env")
	if keyPEM == nil || certPEM == nil {
		return nil
	}
	key, err := parseRSAKey(keyPEM)
	if err != nil {
		sub.fail("private_key_env", "%v", err)
		return nil
	}
	if certPEM.Type != "CERTIFICATE" {
		sub.fail("certificate_env", "must hold the certificate registered on the app registration, as PEM (-----BEGIN CERTIFICATE-----)")
		return nil
	}
	pub, err := certificateRSAKey(certPEM.Bytes)
	if err != nil {
		sub.fail("certificate_env", "%v: give the certificate registered on the app registration, as PEM (-----BEGIN CERTIFICATE-----)", err)
		return nil
	}
	if !pub.Equal(&key.PublicKey) {
		sub.fail("certificate_env", "the certificate is not the private key's: give the certificate of the key in private_key_env")
		return nil
	}
	sum := sha256.Sum256(certPEM.Bytes)
	return &ClientAssertion{Key: key, Thumbprint: base64.RawURLEncoding.EncodeToString(sum[:])}
}

// pemFromEnv reads the PEM block the VM variable named by key holds.
func (p *configParser) pemFromEnv(key string) *pem.Block {
	name := p.string(key, "")
	if name == "" {
		p.fail(key, "is required: name the VM environment variable that holds the PEM")
		return nil
	}
	v, ok := p.getenv(name)
	if !ok || strings.TrimSpace(v) == "" {
		p.fail(key, "environment variable %s is not set in the VM (Envoy: vm_config.environment_variables; Istio: WasmPlugin vmConfig.env)", name)
		return nil
	}
	block, _ := pem.Decode([]byte(strings.ReplaceAll(v, `\n`, "\n")))
	if block == nil {
		p.fail(key, "environment variable %s does not hold PEM (-----BEGIN ...-----)", name)
	}
	return block
}

func parseRSAKey(block *pem.Block) (*rsa.PrivateKey, error) {
	k, err := parseRSAPrivateKey(block.Bytes)
	switch {
	case errors.Is(err, errNotRSAKeyDER):
		return nil, fmt.Errorf("must hold an RSA private key as PEM (PKCS #1 or PKCS #8): %v", err)
	case err != nil:
		return nil, fmt.Errorf("%v; Entra's client assertions are RS256: give an RSA key", err)
	}
	return k, nil
}

// signClientAssertion is a client assertion for one token request: issued by and about
// the client, for the token endpoint, valid five minutes, with a fresh jti.
func (f *Flow) signClientAssertion(tokenEndpoint string) (string, error) {
	jti, err := f.randomToken()
	if err != nil {
		return "", err
	}
	now := f.now()
	// The header and claims golang-jwt's NewWithClaims(...).SignedString wrote, keys sorted
	// as it sorted them, appended here; golang-jwt signs.
	header := &jsonObject{}
	header.str("alg", jwt.SigningMethodRS256.Alg()).str("typ", "JWT").str("x5t#S256", f.cfg.ClientAssertion.Thumbprint)
	claims := &jsonObject{}
	claims.str("aud", tokenEndpoint).int("exp", now.Add(clientAssertionLifetime).Unix()).int("iat", now.Unix()).
		str("iss", f.cfg.ClientID).str("jti", jti).int("nbf", now.Unix()).str("sub", f.cfg.ClientID)
	enc := base64.RawURLEncoding
	signingInput := enc.EncodeToString(header.bytes()) + "." + enc.EncodeToString(claims.bytes())
	sig, err := jwt.SigningMethodRS256.Sign(signingInput, f.cfg.ClientAssertion.Key)
	if err != nil {
		return "", err
	}
	return signingInput + "." + enc.EncodeToString(sig), nil
}

// setClientAssertion authenticates a token request with a signed client assertion.
func (f *Flow) setClientAssertion(form url.Values, tokenEndpoint string) error {
	assertion, err := f.signClientAssertion(tokenEndpoint)
	if err != nil {
		return err
	}
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", assertion)
	return nil
}
