package jwks_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entra-auth/entra-auth/jwks"
)

// A tenant's key set, as its jwks_uri answers, and an ID token verified with it: the
// key chosen by kid, RS256 only, and the claims an ID token for this client must have.
func Example() {
	const (
		tenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		clientID = "6731de76-14a6-49ae-97bc-6eba6914391e"
		issuer   = "https://login.microsoftonline.com/" + tenant + "/v2.0"
	)
	key, _ := rsa.GenerateKey(rand.Reader, 2048) // Entra's signing key, in this example
	body, _ := json.Marshal(map[string]any{"keys": []map[string]any{{
		"kty": "RSA", "use": "sig", "kid": "key-1", "issuer": issuer,
		"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}})
	keys, err := jwks.Parse(body)
	if err != nil {
		fmt.Println(err)
		return
	}

	now := time.Now()
	token := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": issuer, "aud": clientID, "tid": tenant, "sub": "sub-1", "nonce": "n-1",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "preferred_username": "ada@contoso.example",
	})
	token.Header["kid"] = "key-1"
	raw, _ := token.SignedString(key)

	verifier := jwks.NewVerifier(jwks.Config{ClientID: clientID, Issuer: issuer, ClockSkew: 2 * time.Minute})
	claims, err := verifier.Verify(raw, keys, "n-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(claims.String("preferred_username"))

	_, err = verifier.Verify(raw, keys, "another nonce")
	fmt.Println(err != nil)
	// Output:
	// ada@contoso.example
	// true
}
