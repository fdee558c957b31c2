package jwks

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tidwall/gjson"
)

// MaxTokenSize bounds the tokens Verify looks at.
const MaxTokenSize = 16 << 10

// TenantPlaceholder stands for the token's tenant in a multi-tenant issuer.
const TenantPlaceholder = "{tenantid}"

// AnyTenant in Config.AllowedTenants accepts every tenant whose issuer matches.
const AnyTenant = "*"

// Config says what a valid ID token looks like.
type Config struct {
	// ClientID is the application (client) ID: the only accepted audience.
	ClientID string
	// Issuer is the discovery document's issuer; it may contain {tenantid}.
	Issuer string
	// AllowedTenants lists the accepted tid values, or holds AnyTenant. Empty means the
	// tenant named in Issuer (for a single-tenant issuer).
	AllowedTenants []string
	// ClockSkew is the tolerance on exp, nbf and iat.
	ClockSkew time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Verifier checks ID tokens against a key set.
type Verifier struct {
	cfg    Config
	parser *jwt.Parser
}

// NewVerifier returns a verifier for cfg.
func NewVerifier(cfg Config) *Verifier {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithAudience(cfg.ClientID),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.ClockSkew),
		jwt.WithTimeFunc(cfg.Now),
	)}
}

// Claims are a verified token's claims.
type Claims struct {
	raw []byte
}

// Get returns a claim by gjson path (e.g. "groups", "roles.0").
func (c *Claims) Get(path string) gjson.Result { return gjson.GetBytes(c.raw, path) }

// String returns a string claim, or "".
func (c *Claims) String(name string) string { return c.Get(name).String() }

// Strings returns a claim that holds a string or a list of strings; other values are skipped.
func (c *Claims) Strings(name string) []string {
	r := c.Get(name)
	if r.Type == gjson.String {
		return []string{r.String()}
	}
	var out []string
	r.ForEach(func(_, v gjson.Result) bool {
		if v.Type == gjson.String {
			out = append(out, v.String())
		}
		return true
	})
	return out
}

// JSON returns the claims as the token carried them.
func (c *Claims) JSON() []byte { return c.raw }

// UnmarshalJSON keeps the payload as it is; claims are read with gjson when needed.
func (c *Claims) UnmarshalJSON(b []byte) error {
	if !gjson.ValidBytes(b) || !gjson.ParseBytes(b).IsObject() {
		return errors.New("claims are not a JSON object")
	}
	c.raw = append([]byte(nil), b...)
	return nil
}

func (c *Claims) date(name string) (*jwt.NumericDate, error) {
	r := c.Get(name)
	if !r.Exists() {
		return nil, nil
	}
	if r.Type != gjson.Number {
		return nil, fmt.Errorf("%s is not a number", name)
	}
	return jwt.NewNumericDate(time.Unix(r.Int(), 0)), nil
}

// The jwt.Claims methods, for the parser's validation.
func (c *Claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.date("exp") }
func (c *Claims) GetIssuedAt() (*jwt.NumericDate, error)       { return c.date("iat") }
func (c *Claims) GetNotBefore() (*jwt.NumericDate, error)      { return c.date("nbf") }
func (c *Claims) GetIssuer() (string, error)                   { return c.String("iss"), nil }
func (c *Claims) GetSubject() (string, error)                  { return c.String("sub"), nil }
func (c *Claims) GetAudience() (jwt.ClaimStrings, error)       { return c.Strings("aud"), nil }

// Verify checks raw, an ID token, against keys and this sign-in's nonce, and returns its
// claims. Errors wrap this package's sentinels; ErrUnknownKey means a fresh key set
// might know the token's key.
func (v *Verifier) Verify(raw string, keys *Set, nonce string) (*Claims, error) {
	return v.verify(raw, keys, nonce, false)
}

// VerifyRefreshed checks an ID token a refresh_token grant returned: as Verify, but the
// nonce, which binds the sign-in rather than the refresh, may be absent; when present
// (Entra repeats it) it must be the sign-in's.
func (v *Verifier) VerifyRefreshed(raw string, keys *Set, signInNonce string) (*Claims, error) {
	return v.verify(raw, keys, signInNonce, true)
}

func (v *Verifier) verify(raw string, keys *Set, nonce string, nonceOptional bool) (*Claims, error) {
	if len(raw) > MaxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(raw))
	}
	claims := &Claims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) { return keyFor(t, keys) })
	if err != nil {
		return nil, classify(err)
	}
	if err := v.checkClaims(claims, nonce, nonceOptional); err != nil {
		return nil, err
	}
	return claims, nil
}

// keyFor picks the key that verifies t: the one its kid names, or the only one of the set
// for a token without kid. A critical header parameter is refused: none is supported.
func keyFor(t *jwt.Token, keys *Set) (any, error) {
	if _, crit := t.Header["crit"]; crit {
		return nil, fmt.Errorf("%w: critical header parameters are not supported", ErrAlgorithm)
	}
	kid, hasKid := t.Header["kid"].(string)
	switch {
	case hasKid && keys.byID[kid] != nil:
		return keys.byID[kid], nil
	case hasKid:
		return nil, fmt.Errorf("%w: kid %q", ErrUnknownKey, kid)
	case keys.only != nil:
		return keys.only, nil
	default:
		return nil, fmt.Errorf("%w: token has no kid and the key set holds %d keys", ErrUnknownKey, keys.Len())
	}
}

// classify maps the jwt package's errors onto this package's sentinels.
func classify(err error) error {
	wrap := func(ours error) error { return fmt.Errorf("%w: %v", ours, err) }
	// jwt reports a refused or unknown alg as a signature error whose text names the
	// signing method; the module version is fixed, so the text is too.
	badMethod := strings.Contains(err.Error(), "signing method")
	switch {
	case errors.Is(err, ErrUnknownKey), errors.Is(err, ErrAlgorithm):
		return err
	case badMethod && (errors.Is(err, jwt.ErrTokenSignatureInvalid) || errors.Is(err, jwt.ErrTokenUnverifiable)):
		return wrap(ErrAlgorithm)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return wrap(ErrSignature)
	case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return wrap(ErrExpired)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return wrap(ErrClaims)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return wrap(ErrAudience)
	}
	return wrap(ErrMalformed)
}

func (v *Verifier) checkClaims(c *Claims, nonce string, nonceOptional bool) error {
	tid := c.String("tid")
	if c.String("sub") == "" || tid == "" {
		return fmt.Errorf("%w: sub and tid are required", ErrClaims)
	}
	want := strings.ReplaceAll(v.cfg.Issuer, TenantPlaceholder, tid)
	if iss := c.String("iss"); iss != want {
		return fmt.Errorf("%w: %q, want %q", ErrIssuer, iss, want)
	}
	if !v.tenantAllowed(tid) {
		return fmt.Errorf("%w: %q", ErrTenant, tid)
	}
	got := c.Get("nonce")
	if nonceOptional && !got.Exists() {
		return nil
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(got.String()), []byte(nonce)) != 1 {
		return ErrNonce
	}
	return nil
}

func (v *Verifier) tenantAllowed(tid string) bool {
	switch {
	case slices.Contains(v.cfg.AllowedTenants, AnyTenant):
		return true
	case len(v.cfg.AllowedTenants) > 0:
		return slices.Contains(v.cfg.AllowedTenants, tid)
	default:
		// A single-tenant issuer names its tenant: https://host/{tid}/v2.0
		return !strings.Contains(v.cfg.Issuer, TenantPlaceholder) && strings.Contains(v.cfg.Issuer, "/"+tid+"/")
	}
}
