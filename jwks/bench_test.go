package jwks

import (
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entra-auth/entra-auth/internal/entratest"
)

// BenchmarkVerify is one ID token's verification: parsing, the RS256 signature with a
// 2048-bit key, and the claim rules. `make bench` runs it natively and compiled to Wasm
// under wazero.
func BenchmarkVerify(b *testing.B) {
	now := time.Unix(1_800_000_000, 0)
	k := entratest.RSAKey(b, "a")
	set := mustParse(b, entratest.JWKS(b, entratest.JWK("k1", &k.PublicKey, issuerV2)))
	token := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": clientID, "iss": issuerV2, "tid": tenant, "sub": "s", "oid": "o", "exp": now.Unix() + 60, "iat": now.Unix(),
		"nonce": "n", "name": "Ada Lovelace", "preferred_username": "ada@contoso.com", "email": "ada@contoso.com", "ver": "2.0",
		"groups": []string{"a4f7c0d2-1111-4a5b-9c3d-000000000001", "a4f7c0d2-1111-4a5b-9c3d-000000000002"}, "roles": []string{"Admin"},
	})
	token.Header["kid"] = "k1"
	signed, err := token.SignedString(k)
	if err != nil {
		b.Fatal(err)
	}
	v := NewVerifier(Config{ClientID: clientID, Issuer: issuerV2, Now: func() time.Time { return now }})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(signed, set, "n"); err != nil {
			b.Fatal(err)
		}
	}
}
