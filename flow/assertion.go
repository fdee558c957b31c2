package flow

import (
	"encoding/base64"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Secretless client authentication (client_assertion): the filter signs a short JWT with
// the certificate's key (RFC 7523, OpenID Connect's private_key_jwt); Entra finds the
// certificate by the x5t#S256 thumbprint.

// clientAssertionLifetime is how long a signed assertion is valid.
const clientAssertionLifetime = 5 * time.Minute

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
