package jwks

import (
	"crypto/rsa"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tidwall/gjson"
)

// jws is a compact JWS read and checked for shape, before any key is looked up.
type jws struct {
	header       gjson.Result
	claims       *Claims
	kid          string
	hasKid       bool
	signingInput string
	signature    []byte
}

// readToken splits raw and checks its header: three base64url parts, alg RS256 exactly,
// no crit, typ (when present) JWT, kid (when present) a string. Nothing is verified yet.
func readToken(raw string) (*jws, error) {
	if len(raw) > MaxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(raw))
	}
	last := strings.LastIndexByte(raw, '.')
	first := strings.IndexByte(raw, '.')
	if first <= 0 || last == first || strings.Count(raw, ".") != 2 {
		return nil, fmt.Errorf("%w: not three dot-separated parts", ErrMalformed)
	}
	headerJSON, err1 := base64.RawURLEncoding.DecodeString(raw[:first])
	payload, err2 := base64.RawURLEncoding.DecodeString(raw[first+1 : last])
	signature, err3 := base64.RawURLEncoding.DecodeString(raw[last+1:])
	if err1 != nil || err2 != nil || err3 != nil {
		return nil, fmt.Errorf("%w: a part is not base64url", ErrMalformed)
	}
	if !gjson.ValidBytes(headerJSON) || !gjson.ParseBytes(headerJSON).IsObject() {
		return nil, fmt.Errorf("%w: the header is not a JSON object", ErrMalformed)
	}
	header := gjson.ParseBytes(headerJSON)
	if alg := header.Get("alg"); alg.Type != gjson.String || alg.Str != "RS256" {
		return nil, fmt.Errorf("%w: alg %s; only RS256 is accepted", ErrAlgorithm, alg.Raw)
	}
	if header.Get("crit").Exists() {
		return nil, fmt.Errorf("%w: critical header parameters are not supported", ErrAlgorithm)
	}
	if typ := header.Get("typ"); typ.Exists() && (typ.Type != gjson.String || !strings.EqualFold(typ.Str, "JWT")) {
		return nil, fmt.Errorf("%w: typ %s is not JWT", ErrAlgorithm, typ.Raw)
	}
	if len(signature) == 0 {
		return nil, fmt.Errorf("%w: no signature", ErrMalformed)
	}
	t := &jws{header: header, claims: &Claims{}, signingInput: raw[:last], signature: signature}
	if kid := header.Get("kid"); kid.Exists() {
		if kid.Type != gjson.String {
			return nil, fmt.Errorf("%w: kid is not a string", ErrMalformed)
		}
		t.kid, t.hasKid = kid.Str, true
	}
	if err := t.claims.UnmarshalJSON(payload); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return t, nil
}

// Claim types, as the specifications give them (RFC 7519, OIDC Core, Microsoft's token
// references). A claim the filter reads that has another type makes the token bad: it is
// never converted (the type confusion behind CVE-2020-26160 was an aud of the wrong type).
var (
	stringClaims = []string{"iss", "sub", "tid", "oid", "nonce", "azp", "scp", "ver", "name", "given_name",
		"family_name", "preferred_username", "upn", "email", "unique_name", "login_hint", "sid", "appid", "idp", "acr"}
	stringListClaims = []string{"roles", "groups", "amr", "wids"}
	numberClaims     = []string{"exp", "nbf", "iat", "auth_time"}
)

// claimType is what a claim must be.
type claimType int

const (
	aString claimType = iota + 1
	aNumber
	aStringList
)

// claimTypes maps each claim the filter reads to its type, built from the lists above.
var claimTypes = func() map[string]claimType {
	m := map[string]claimType{}
	for _, n := range stringClaims {
		m[n] = aString
	}
	for _, n := range numberClaims {
		m[n] = aNumber
	}
	for _, n := range stringListClaims {
		m[n] = aStringList
	}
	return m
}()

// checkTypes refuses a token whose claims have the wrong types: aud a string or a
// non-empty array of strings, the others as listed above. One pass over the claims.
func (c *Claims) checkTypes() error {
	var err error
	hasAud := false
	gjson.ParseBytes(c.raw).ForEach(func(key, value gjson.Result) bool {
		name := key.Str
		if name == "aud" {
			hasAud = true
			if value.Type != gjson.String && !(isStringArray(value) && len(value.Array()) > 0) {
				err = fmt.Errorf("%w: aud is neither a string nor an array of strings", ErrClaims)
			}
			return err == nil
		}
		switch claimTypes[name] {
		case aString:
			if value.Type != gjson.String {
				err = fmt.Errorf("%w: %s is not a string", ErrClaims, name)
			}
		case aNumber:
			if value.Type != gjson.Number {
				err = fmt.Errorf("%w: %s is not a number", ErrClaims, name)
			}
		case aStringList:
			if !isStringArray(value) {
				err = fmt.Errorf("%w: %s is not an array of strings", ErrClaims, name)
			}
		}
		return err == nil
	})
	if err == nil && !hasAud {
		err = fmt.Errorf("%w: aud is required", ErrClaims)
	}
	return err
}

func isStringArray(r gjson.Result) bool {
	if !r.IsArray() {
		return false
	}
	ok := true
	r.ForEach(func(_, v gjson.Result) bool {
		ok = v.Type == gjson.String
		return ok
	})
	return ok
}

// audiences are aud's values (checkTypes has run).
func (c *Claims) audiences() []string { return c.Strings("aud") }

// checkTimes applies exp (required), iat (required: OIDC Core 2, RFC 9068 2.2) and nbf
// with the clock skew.
func (c *Claims) checkTimes(now time.Time, skew time.Duration) error {
	exp, iat := c.Get("exp"), c.Get("iat")
	if !exp.Exists() || !iat.Exists() {
		return fmt.Errorf("%w: exp and iat are required", ErrClaims)
	}
	at := func(r gjson.Result) time.Time {
		return time.Unix(0, 0).Add(time.Duration(r.Float() * float64(time.Second)))
	}
	switch {
	case !now.Before(at(exp).Add(skew)):
		return fmt.Errorf("%w: expired at %v", ErrExpired, at(exp).UTC())
	case at(iat).After(now.Add(skew)):
		return fmt.Errorf("%w: issued in the future (%v)", ErrExpired, at(iat).UTC())
	}
	if nbf := c.Get("nbf"); nbf.Exists() && at(nbf).After(now.Add(skew)) {
		return fmt.Errorf("%w: not valid before %v", ErrExpired, at(nbf).UTC())
	}
	return nil
}

// isGUID reports whether s is a GUID as Entra writes tenant ids: 8-4-4-4-12 lower-case hex.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
	}
	return true
}

// verifySignature looks up the token's key, applies the key's issuer (a key that names
// an issuer signs only that issuer's tokens, {tenantid} put in: Microsoft's signing-key
// issuer validation for multi-tenant applications), and checks the RS256 signature. It
// comes last: a token that fails a cheaper check never costs a key lookup, an unknown-kid
// refetch or RSA work.
func (t *jws) verifySignature(keys *Set, tid string) error {
	key, err := t.key(keys)
	if err != nil {
		return err
	}
	if want, ok := keys.issuerOf(key); ok && want != "" && !issuerMatches(want, t.claims.String("iss"), tid) {
		return fmt.Errorf("%w: the key names issuer %q, the token %q", ErrIssuer, want, t.claims.String("iss"))
	}
	if err := jwt.SigningMethodRS256.Verify(t.signingInput, t.signature, key); err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return nil
}

// key picks the key the token names, or the only one of the set for a token without kid.
func (t *jws) key(keys *Set) (*rsa.PublicKey, error) {
	switch {
	case t.hasKid && keys.byID[t.kid] != nil:
		return keys.byID[t.kid], nil
	case t.hasKid:
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, t.kid)
	case keys.only != nil:
		return keys.only, nil
	default:
		return nil, fmt.Errorf("%w: token has no kid and the key set holds %d keys", ErrUnknownKey, keys.Len())
	}
}

// issuerMatches reports whether a token issued by iss for tenant tid may be signed by a
// key whose issuer is keyIssuer. Entra signs v1 and v2 tokens with the same keys and its
// v2 key sets name the v2 issuer, so a v1 token's issuer also matches the v2 issuer of
// the same tenant.
func issuerMatches(keyIssuer, iss, tid string) bool {
	want := strings.ReplaceAll(keyIssuer, TenantPlaceholder, tid)
	if iss == want {
		return true
	}
	v1 := strings.ReplaceAll(V1IssuerTemplate, TenantPlaceholder, tid)
	return iss == v1 && strings.HasSuffix(want, "/"+tid+"/v2.0")
}
