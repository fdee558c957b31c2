package jwks

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

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
	cfg Config
}

// NewVerifier returns a verifier for cfg.
func NewVerifier(cfg Config) *Verifier {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Verifier{cfg: cfg}
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

// verify runs the checks cheapest first, and the key lookup and the signature last.
func (v *Verifier) verify(raw string, keys *Set, nonce string, nonceOptional bool) (*Claims, error) {
	t, err := readToken(raw)
	if err != nil {
		return nil, err
	}
	c := t.claims
	if err := c.checkTypes(); err != nil {
		return nil, err
	}
	if err := c.checkTimes(v.cfg.Now(), v.cfg.ClockSkew); err != nil {
		return nil, err
	}
	if err := v.checkAudience(c); err != nil {
		return nil, err
	}
	tid, err := v.checkIssuer(c, v.cfg.Issuer, "")
	if err != nil {
		return nil, err
	}
	if err := checkNonce(c, nonce, nonceOptional); err != nil {
		return nil, err
	}
	if err := t.verifySignature(keys, tid); err != nil {
		return nil, err
	}
	return c, nil
}

// checkAudience: the client id among the audiences, and with more than one audience,
// azp equal to the client id (OIDC Core 3.1.3.7).
func (v *Verifier) checkAudience(c *Claims) error {
	auds := c.audiences()
	if !slices.Contains(auds, v.cfg.ClientID) {
		return fmt.Errorf("%w: %q", ErrAudience, auds)
	}
	if len(auds) > 1 && c.String("azp") != v.cfg.ClientID {
		return fmt.Errorf("%w: several audiences, and azp %q is not this application", ErrAudience, c.String("azp"))
	}
	return nil
}

// checkIssuer: sub and tid present, tid a GUID when the issuer is a multi-tenant
// template, iss equal to issuer (or to v1Issuer, when given) with the tenant put in, and
// the tenant allowed. It returns tid.
func (v *Verifier) checkIssuer(c *Claims, issuer, v1Issuer string) (string, error) {
	tid := c.String("tid")
	if c.String("sub") == "" || tid == "" {
		return "", fmt.Errorf("%w: sub and tid are required", ErrClaims)
	}
	if strings.Contains(issuer, TenantPlaceholder) && !isGUID(tid) {
		return "", fmt.Errorf("%w: tid %q is not a tenant GUID", ErrTenant, tid)
	}
	iss := c.String("iss")
	want := strings.ReplaceAll(issuer, TenantPlaceholder, tid)
	if iss != want && (v1Issuer == "" || iss != strings.ReplaceAll(v1Issuer, TenantPlaceholder, tid)) {
		return "", fmt.Errorf("%w: %q, want %q", ErrIssuer, iss, want)
	}
	if !v.tenantAllowed(tid) {
		return "", fmt.Errorf("%w: %q", ErrTenant, tid)
	}
	return tid, nil
}

// checkNonce: the sign-in's nonce, compared in constant time; a refreshed ID token may
// leave it out.
func checkNonce(c *Claims, nonce string, optional bool) error {
	got := c.Get("nonce")
	if optional && !got.Exists() {
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
