package jwks

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entra-auth/entra-auth/internal/entratest"
)

const (
	clientID = "11111111-2222-3333-4444-555555555555"
	tenant   = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	other    = "9188040d-6c67-4c5b-b112-36a304b66dad"
	issuerV2 = "https://login.microsoftonline.com/" + tenant + "/v2.0"
	template = "https://login.microsoftonline.com/{tenantid}/v2.0"
)

func mustParse(t testing.TB, body []byte) *Set {
	t.Helper()
	s, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParse(t *testing.T) {
	a, b := entratest.RSAKey(t, "a"), entratest.RSAKey(t, "b")
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	ec := map[string]any{"kty": "EC", "crv": "P-256", "kid": "ec", "x": "AA", "y": "AA"}
	enc := entratest.JWK("enc", &b.PublicKey, issuerV2)
	enc["use"] = "enc"
	rs512 := entratest.JWK("rs512", &b.PublicKey, issuerV2)
	rs512["alg"] = "RS512"
	rs256 := entratest.JWK("rs256", &b.PublicKey, issuerV2)
	rs256["alg"] = "RS256"
	badN := entratest.JWK("bad", &a.PublicKey, issuerV2)
	badN["n"] = "%%%"
	badIssuer := entratest.JWK("iss", &b.PublicKey, issuerV2)
	badIssuer["issuer"] = 42
	cases := []struct {
		name    string
		body    []byte
		want    []string // kids kept
		skipped int      // keys named in Skipped
		wantErr bool
	}{
		{name: "entra shape without alg", body: entratest.JWKS(t, entratest.JWK("k1", &a.PublicKey, issuerV2), entratest.JWK("k2", &b.PublicKey, issuerV2)), want: []string{"k1", "k2"}},
		{name: "other kinds skipped", body: entratest.JWKS(t, ec, enc, rs512, rs256, entratest.JWK("k1", &a.PublicKey, issuerV2)), want: []string{"k1", "rs256"}},
		{name: "only skipped kinds", body: entratest.JWKS(t, ec, enc), wantErr: true},
		{name: "small key alone", body: entratest.JWKS(t, entratest.JWK("s", &small.PublicKey, issuerV2)), wantErr: true},
		{name: "duplicate kid alone", body: entratest.JWKS(t, entratest.JWK("k", &a.PublicKey, issuerV2), entratest.JWK("k", &b.PublicKey, issuerV2)), wantErr: true},
		{name: "bad modulus alone", body: entratest.JWKS(t, badN), wantErr: true},
		// One bad key does not take the others down: it is skipped and named.
		{name: "small key among good ones", body: entratest.JWKS(t, entratest.JWK("s", &small.PublicKey, issuerV2), entratest.JWK("k1", &a.PublicKey, issuerV2)), want: []string{"k1"}, skipped: 1},
		{name: "bad modulus among good ones", body: entratest.JWKS(t, badN, entratest.JWK("k1", &a.PublicKey, issuerV2)), want: []string{"k1"}, skipped: 1},
		{name: "duplicate kid among good ones", body: entratest.JWKS(t, entratest.JWK("k", &a.PublicKey, issuerV2), entratest.JWK("k1", &a.PublicKey, issuerV2), entratest.JWK("k", &b.PublicKey, issuerV2)), want: []string{"k1"}, skipped: 1},
		{name: "issuer not a string", body: entratest.JWKS(t, badIssuer, entratest.JWK("k1", &a.PublicKey, issuerV2)), want: []string{"k1"}, skipped: 1},
		{name: "no keys array", body: []byte(`{"keys": {}}`), wantErr: true},
		{name: "not JSON", body: []byte(`{"keys": [`), wantErr: true},
		{name: "huge", body: []byte(`{"keys":[],"x":"` + strings.Repeat("a", maxJWKSSize) + `"}`), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set, err := Parse(tc.body)
			if tc.wantErr {
				if !errors.Is(err, ErrKeySet) {
					t.Fatalf("err %v, want ErrKeySet", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if set.Len() != len(tc.want) {
				t.Fatalf("%d keys, want %v", set.Len(), tc.want)
			}
			if len(set.Skipped) != tc.skipped {
				t.Errorf("skipped %q, want %d", set.Skipped, tc.skipped)
			}
			for _, kid := range tc.want {
				if !set.has(kid) {
					t.Errorf("kid %s missing", kid)
				}
			}
		})
	}
}

func TestRefreshAllowed(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		last time.Time
		want bool
	}{
		{time.Time{}, true},
		{now.Add(-MinUnknownKeyRefresh), true},
		{now.Add(-MinUnknownKeyRefresh + time.Second), false},
		{now, false},
	} {
		if got := RefreshAllowed(tc.last, now); got != tc.want {
			t.Errorf("last %v: %v, want %v", tc.last, got, tc.want)
		}
	}
}

// token holds the parts of a test token before signing.
type token struct {
	method jwt.SigningMethod
	key    any
	header map[string]any
	claims jwt.MapClaims
}

func (tk token) sign(t *testing.T) string {
	t.Helper()
	j := jwt.NewWithClaims(tk.method, tk.claims)
	for k, v := range tk.header {
		if v == nil {
			delete(j.Header, k)
		} else {
			j.Header[k] = v
		}
	}
	s, err := j.SignedString(tk.key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	signer, stranger, second := entratest.RSAKey(t, "a"), entratest.RSAKey(t, "b"), entratest.RSAKey(t, "c")
	oneKey := mustParse(t, entratest.JWKS(t, entratest.JWK("k1", &signer.PublicKey, issuerV2)))
	// Entra's key set for common and organizations names the issuer template.
	commonJWK := entratest.JWK("k1", &signer.PublicKey, issuerV2)
	commonJWK["issuer"] = template
	commonKeys := mustParse(t, entratest.JWKS(t, commonJWK))
	twoKeys := mustParse(t, entratest.JWKS(t, entratest.JWK("k1", &signer.PublicKey, issuerV2), entratest.JWK("k2", &second.PublicKey, issuerV2)))
	publicDER := x509.MarshalPKCS1PublicKey(&signer.PublicKey)

	claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{
			"aud": clientID, "iss": issuerV2, "tid": tenant, "sub": "subject-1", "oid": "object-1",
			"iat": now.Unix() - 60, "nbf": now.Unix() - 60, "exp": now.Unix() + 3600,
			"nonce": "n-1", "ver": "2.0", "name": "Ada Lovelace", "groups": []string{"g1", "g2"},
		}
		if change != nil {
			change(c)
		}
		return c
	}
	valid := token{jwt.SigningMethodRS256, signer, map[string]any{"kid": "k1"}, claims(nil)}
	with := func(change func(*token)) token {
		tk := valid
		tk.claims = claims(nil)
		tk.header = map[string]any{"kid": "k1"}
		change(&tk)
		return tk
	}
	single := Config{ClientID: clientID, Issuer: issuerV2, ClockSkew: 2 * time.Minute, Now: func() time.Time { return now }}
	multi := Config{ClientID: clientID, Issuer: template, AllowedTenants: []string{tenant}, ClockSkew: 2 * time.Minute, Now: func() time.Time { return now }}
	anyTenant := multi
	anyTenant.AllowedTenants = []string{AnyTenant}

	cases := []struct {
		name    string
		cfg     Config
		keys    *Set
		raw     string
		nonce   string
		refresh bool // VerifyRefreshed, with nonce as the sign-in's
		wantErr error
	}{
		{name: "valid", raw: valid.sign(t)},
		{name: "multi-tenant issuer template", cfg: multi, raw: valid.sign(t)},
		{name: "any tenant", cfg: anyTenant, keys: commonKeys, raw: with(func(tk *token) {
			tk.claims["tid"], tk.claims["iss"] = other, "https://login.microsoftonline.com/"+other+"/v2.0"
		}).sign(t)},
		// A key that names its tenant's issuer signs for that tenant only, even where the
		// configuration accepts every tenant (Microsoft's signing-key issuer rule).
		{name: "a tenant's key signing for another tenant", cfg: anyTenant, raw: with(func(tk *token) {
			tk.claims["tid"], tk.claims["iss"] = other, "https://login.microsoftonline.com/"+other+"/v2.0"
		}).sign(t), wantErr: ErrIssuer},
		{name: "multi-tenant tid not a GUID", cfg: anyTenant, keys: commonKeys, raw: with(func(tk *token) {
			tk.claims["tid"], tk.claims["iss"] = "contoso", "https://login.microsoftonline.com/contoso/v2.0"
		}).sign(t), wantErr: ErrTenant},
		{name: "multi-tenant tid in capitals", cfg: anyTenant, keys: commonKeys, raw: with(func(tk *token) {
			tk.claims["tid"], tk.claims["iss"] = strings.ToUpper(other), "https://login.microsoftonline.com/"+strings.ToUpper(other)+"/v2.0"
		}).sign(t), wantErr: ErrTenant},
		{name: "no iat", raw: with(func(tk *token) { delete(tk.claims, "iat") }).sign(t), wantErr: ErrClaims},
		{name: "aud as a number", raw: with(func(tk *token) { tk.claims["aud"] = 42 }).sign(t), wantErr: ErrClaims},
		{name: "aud as an object", raw: with(func(tk *token) { tk.claims["aud"] = map[string]string{"x": clientID} }).sign(t), wantErr: ErrClaims},
		{name: "aud array with a number", raw: with(func(tk *token) { tk.claims["aud"] = []any{clientID, 7} }).sign(t), wantErr: ErrClaims},
		{name: "aud array with our client and azp", raw: with(func(tk *token) { tk.claims["aud"], tk.claims["azp"] = []string{clientID, "other-api"}, clientID }).sign(t)},
		{name: "several audiences without azp", raw: with(func(tk *token) { tk.claims["aud"] = []string{clientID, "other-api"} }).sign(t), wantErr: ErrAudience},
		{name: "several audiences, azp another client", raw: with(func(tk *token) { tk.claims["aud"], tk.claims["azp"] = []string{clientID, "other-api"}, "other-api" }).sign(t), wantErr: ErrAudience},
		{name: "empty aud array", raw: with(func(tk *token) { tk.claims["aud"] = []string{} }).sign(t), wantErr: ErrClaims},
		{name: "sub as a number", raw: with(func(tk *token) { tk.claims["sub"] = 12345 }).sign(t), wantErr: ErrClaims},
		{name: "tid as a number", raw: with(func(tk *token) { tk.claims["tid"] = 1 }).sign(t), wantErr: ErrClaims},
		{name: "nonce as a number", raw: with(func(tk *token) { tk.claims["nonce"] = 1 }).sign(t), wantErr: ErrClaims},
		{name: "exp as a string", raw: with(func(tk *token) { tk.claims["exp"] = "1800003600" }).sign(t), wantErr: ErrClaims},
		{name: "groups as a string", raw: with(func(tk *token) { tk.claims["groups"] = "g1" }).sign(t), wantErr: ErrClaims},
		{name: "roles with a number", raw: with(func(tk *token) { tk.claims["roles"] = []any{"Admin", 1} }).sign(t), wantErr: ErrClaims},
		{name: "typ not JWT", raw: with(func(tk *token) { tk.header["typ"] = "at+jwt+evil" }).sign(t), wantErr: ErrAlgorithm},
		// Cheap checks come first: a token that fails one never costs a key lookup, so it
		// cannot trigger (or use up) the unknown-kid refetch a real rotation needs.
		{name: "expired, with an unknown kid", raw: with(func(tk *token) { tk.claims["exp"] = now.Unix() - 3600; tk.header["kid"] = "rotated" }).sign(t), wantErr: ErrExpired},
		{name: "another audience, with an unknown kid", raw: with(func(tk *token) { tk.claims["aud"] = "x"; tk.header["kid"] = "rotated" }).sign(t), wantErr: ErrAudience},
		{name: "another issuer, with an unknown kid", raw: with(func(tk *token) { tk.claims["iss"] = "https://evil.example/v2.0"; tk.header["kid"] = "rotated" }).sign(t), wantErr: ErrIssuer},
		{name: "kid not a string", raw: with(func(tk *token) { tk.header["kid"] = 1 }).sign(t), wantErr: ErrMalformed},
		{name: "tenant not allowed", cfg: multi, keys: commonKeys, raw: with(func(tk *token) {
			tk.claims["tid"], tk.claims["iss"] = other, "https://login.microsoftonline.com/"+other+"/v2.0"
		}).sign(t), wantErr: ErrTenant},
		{name: "single tenant refuses another tid", raw: with(func(tk *token) { tk.claims["tid"] = other }).sign(t), wantErr: ErrTenant},
		{name: "issuer of another tenant with own tid", cfg: multi, raw: with(func(tk *token) {
			tk.claims["iss"] = "https://login.microsoftonline.com/" + other + "/v2.0"
		}).sign(t), wantErr: ErrIssuer},
		{name: "v1 issuer", raw: with(func(tk *token) { tk.claims["iss"] = "https://sts.windows.net/" + tenant + "/" }).sign(t), wantErr: ErrIssuer},
		{name: "another audience", raw: with(func(tk *token) { tk.claims["aud"] = "00000003-0000-0000-c000-000000000000" }).sign(t), wantErr: ErrAudience},
		{name: "expired", raw: with(func(tk *token) { tk.claims["exp"] = now.Unix() - 3*60 }).sign(t), wantErr: ErrExpired},
		{name: "expired within the skew", raw: with(func(tk *token) { tk.claims["exp"] = now.Unix() - 60 }).sign(t)},
		{name: "not yet valid", raw: with(func(tk *token) { tk.claims["nbf"] = now.Unix() + 5*60 }).sign(t), wantErr: ErrExpired},
		{name: "issued in the future", raw: with(func(tk *token) { tk.claims["iat"] = now.Unix() + 5*60 }).sign(t), wantErr: ErrExpired},
		{name: "no exp", raw: with(func(tk *token) { delete(tk.claims, "exp") }).sign(t), wantErr: ErrClaims},
		{name: "no sub", raw: with(func(tk *token) { delete(tk.claims, "sub") }).sign(t), wantErr: ErrClaims},
		{name: "no tid", raw: with(func(tk *token) { delete(tk.claims, "tid") }).sign(t), wantErr: ErrClaims},
		{name: "wrong nonce", raw: valid.sign(t), nonce: "n-2", wantErr: ErrNonce},
		{name: "no nonce in token", raw: with(func(tk *token) { delete(tk.claims, "nonce") }).sign(t), wantErr: ErrNonce},
		{name: "refreshed without a nonce", refresh: true, raw: with(func(tk *token) { delete(tk.claims, "nonce") }).sign(t)},
		{name: "refreshed repeating the sign-in's nonce", refresh: true, raw: valid.sign(t)},
		{name: "refreshed with another nonce", refresh: true, nonce: "n-2", raw: valid.sign(t), wantErr: ErrNonce},
		{name: "refreshed, other rules still apply", refresh: true, raw: with(func(tk *token) { delete(tk.claims, "nonce"); tk.claims["aud"] = "x" }).sign(t), wantErr: ErrAudience},
		{name: "alg none", raw: with(func(tk *token) { tk.method, tk.key = jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType }).sign(t), wantErr: ErrAlgorithm},
		{name: "HS256 keyed with the public key", raw: with(func(tk *token) { tk.method, tk.key = jwt.SigningMethodHS256, publicDER }).sign(t), wantErr: ErrAlgorithm},
		{name: "RS512", raw: with(func(tk *token) { tk.method = jwt.SigningMethodRS512 }).sign(t), wantErr: ErrAlgorithm},
		{name: "PS256", raw: with(func(tk *token) { tk.method = jwt.SigningMethodPS256 }).sign(t), wantErr: ErrAlgorithm},
		{name: "crit header", raw: with(func(tk *token) { tk.header["crit"] = []string{"exp"} }).sign(t), wantErr: ErrAlgorithm},
		{name: "unknown kid", raw: with(func(tk *token) { tk.header["kid"] = "rotated" }).sign(t), wantErr: ErrUnknownKey},
		{name: "no kid, one key", raw: with(func(tk *token) { tk.header["kid"] = nil }).sign(t)},
		{name: "no kid, two keys", keys: twoKeys, raw: with(func(tk *token) { tk.header["kid"] = nil }).sign(t), wantErr: ErrUnknownKey},
		{name: "second key by kid", keys: twoKeys, raw: with(func(tk *token) { tk.header["kid"], tk.key = "k2", second }).sign(t)},
		{name: "signed by a stranger under a known kid", raw: with(func(tk *token) { tk.key = stranger }).sign(t), wantErr: ErrSignature},
		{name: "payload swapped", raw: swapPayload(valid.sign(t), with(func(tk *token) { tk.claims["sub"] = "admin" }).sign(t)), wantErr: ErrSignature},
		{name: "two parts", raw: "a.b", wantErr: ErrMalformed},
		{name: "garbage", raw: "not a token at all", wantErr: ErrMalformed},
		{name: "oversized", raw: strings.Repeat("a", MaxTokenSize+1), wantErr: ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, keys, nonce := tc.cfg, tc.keys, tc.nonce
			if cfg.ClientID == "" {
				cfg = single
			}
			if keys == nil {
				keys = oneKey
			}
			if nonce == "" {
				nonce = "n-1"
			}
			verify := NewVerifier(cfg).Verify
			if tc.refresh {
				verify = NewVerifier(cfg).VerifyRefreshed
			}
			claims, err := verify(tc.raw, keys, nonce)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if claims.String("sub") == "" || len(claims.Strings("groups")) != 2 {
				t.Errorf("claims %s", claims.JSON())
			}
		})
	}
}

// swapPayload puts the payload of b between the header and signature of a.
func swapPayload(a, b string) string {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	return pa[0] + "." + pb[1] + "." + pa[2]
}

func TestClaimsStrings(t *testing.T) {
	c := &Claims{}
	if err := c.UnmarshalJSON([]byte(`{"one":"a","many":["a",1,"b",null],"num":3}`)); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"one": "a", "many": "a,b", "num": "", "absent": ""} {
		if got := strings.Join(c.Strings(name), ","); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	if err := c.UnmarshalJSON([]byte(`[1]`)); err == nil {
		t.Error("an array was accepted as claims")
	}
}
