package config

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// validateClient reads the application: client_id, how it authenticates (client_secret,
// client_auth, or client_assertion) and the scopes it asks for.
func validateClient(p *parser, c *Config) {
	c.ClientID = p.required("client_id")
	if c.ClientID != "" && !isGUID(c.ClientID) {
		p.fail("client_id", "must be the Application (client) ID of the app registration, a GUID such as 6731de76-14a6-49ae-97bc-6eba6914391e")
	}
	c.ClientAssertion = p.parseClientAssertion()
	hasAssertion := p.root.Get("client_assertion").Exists()
	c.ClientSecret, _ = p.secret("client_secret", !hasAssertion)
	c.ClientAuth = p.string("client_auth", "client_secret_post")
	switch {
	case hasAssertion && (p.root.Get("client_secret").Exists() || p.root.Get("client_secret_env").Exists()):
		p.fail("client_assertion", "give a client secret or a client assertion, not both")
	case hasAssertion:
		c.ClientAuth = "private_key_jwt"
	case c.ClientAuth != "client_secret_post" && c.ClientAuth != "client_secret_basic":
		p.fail("client_auth", "must be client_secret_post or client_secret_basic (for private_key_jwt, give client_assertion)")
	}
	c.Scopes = p.strings("scopes", true)
	if !p.root.Get("scopes").Exists() {
		c.Scopes = strings.Fields(DefaultScopes)
	}
	if !slices.Contains(c.Scopes, "openid") {
		p.fail("scopes", "must include openid (the ID token depends on it)")
	}
}

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

// parseClientAssertion reads client_assertion: {"private_key_env", "certificate_env"},
// each naming a VM variable that holds PEM ("\n" written as \n is accepted too).
func (p *parser) parseClientAssertion() *ClientAssertion {
	block := p.root.Get("client_assertion")
	if !block.Exists() {
		return nil
	}
	if !block.IsObject() {
		p.fail("client_assertion", `must be {"private_key_env": "...", "certificate_env": "..."}`)
		return nil
	}
	sub := p.sub(block, "client_assertion.")
	sub.known(block, "private_key_env", "certificate_env")
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
func (p *parser) pemFromEnv(key string) *pem.Block {
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
