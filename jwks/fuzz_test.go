package jwks

import (
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/internal/entratest"
)

// FuzzParse: any document yields a key set or ErrKeySet, never a panic.
func FuzzParse(f *testing.F) {
	k := entratest.RSAKey(f, "a")
	f.Add(entratest.JWKS(f, entratest.JWK("k1", &k.PublicKey, issuerV2)))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"x","n":"` + "AAAA" + `","e":""}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		set, err := Parse(body)
		if err != nil {
			if !errors.Is(err, ErrKeySet) {
				t.Fatalf("error %v is not ErrKeySet", err)
			}
			return
		}
		if set.Len() == 0 {
			t.Fatal("an empty set without error")
		}
	})
}

// FuzzVerify: no token a client can send verifies without the key, and none panics.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	k := entratest.RSAKey(f, "a")
	set, err := Parse(entratest.JWKS(f, entratest.JWK("k1", &k.PublicKey, issuerV2)))
	if err != nil {
		f.Fatal(err)
	}
	good := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": clientID, "iss": issuerV2, "tid": tenant, "sub": "s", "exp": now.Unix() + 60, "iat": now.Unix(), "nonce": "n",
	})
	good.Header["kid"] = "k1"
	signed, _ := good.SignedString(k)
	f.Add(signed)
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	v := NewVerifier(Config{ClientID: clientID, Issuer: issuerV2, Now: func() time.Time { return now }})
	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := v.Verify(raw, set, "n")
		if err == nil && raw != signed {
			// A different string that verifies must carry the same signed content
			// (JWS allows no other change); anything else is a forgery.
			if claims.String("sub") != "s" {
				t.Fatalf("a forged token verified: %q", raw)
			}
		}
	})
}

// FuzzVerifyAccess: no bearer token a client can send verifies without the key, and none
// panics.
func FuzzVerifyAccess(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	k := entratest.RSAKey(f, "a")
	set, err := Parse(entratest.JWKS(f, entratest.JWK("k1", &k.PublicKey, issuerV2)))
	if err != nil {
		f.Fatal(err)
	}
	good := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": clientID, "iss": issuerV2, "tid": tenant, "sub": "s", "oid": "o", "exp": now.Unix() + 60, "iat": now.Unix(), "scp": "read",
	})
	good.Header["kid"] = "k1"
	signed, _ := good.SignedString(k)
	f.Add(signed)
	f.Add("eyJhbGciOiJub25lIiwibm9uY2UiOiJ4In0.e30.")
	f.Add("a.b.c")
	v := NewAccessVerifier(AccessConfig{Audiences: []string{clientID}, Issuer: issuerV2, Now: func() time.Time { return now }})
	f.Fuzz(func(t *testing.T, raw string) {
		claims, err := v.Verify(raw, set)
		if err == nil && raw != signed && claims.String("sub") != "s" {
			t.Fatalf("a forged token verified: %q", raw)
		}
	})
}

// FuzzClaimTypes: whatever the payload, a token whose claims pass the type checks has
// an aud of the right shape and strings where strings are read; none panics.
func FuzzClaimTypes(f *testing.F) {
	for _, s := range []string{`{"aud":"a","sub":"s"}`, `{"aud":["a",1]}`, `{"aud":{"x":"a"}}`, `{"aud":[],"exp":"1"}`, `{"roles":["a",null]}`, `[]`, `{"aud":"a","tid":7}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		c := &Claims{}
		if c.UnmarshalJSON([]byte(payload)) != nil || c.checkTypes() != nil {
			return
		}
		aud := c.Get("aud")
		if aud.Type != gjson.String && !(isStringArray(aud) && len(c.audiences()) > 0) {
			t.Fatalf("aud %s passed", aud.Raw)
		}
		for _, name := range stringClaims {
			if r := c.Get(name); r.Exists() && r.Type != gjson.String {
				t.Fatalf("%s %s passed", name, r.Raw)
			}
		}
		for _, name := range stringListClaims {
			if r := c.Get(name); r.Exists() && len(c.Strings(name)) != len(r.Array()) {
				t.Fatalf("%s %s passed with other values than strings", name, r.Raw)
			}
		}
	})
}
