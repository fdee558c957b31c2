package jwks

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrNotAccessToken reports a token that is not an access token for this API: an ID
// token, or a token for another resource such as Microsoft Graph (whose tokens carry a
// nonce header and are not meant to be verified by anyone but Graph).
var ErrNotAccessToken = errors.New("jwks: not an access token for this API")

// V1IssuerTemplate is the issuer of Entra ID's v1.0 access tokens (an API whose
// registration leaves accessTokenAcceptedVersion at 1 receives these).
const V1IssuerTemplate = "https://sts.windows.net/" + TenantPlaceholder + "/"

// AccessConfig says what a valid access token for the application's API looks like.
type AccessConfig struct {
	// Audiences are the accepted aud values (api_audiences): typically the API's
	// application ID URI (v1 tokens) and its client ID (v2 tokens).
	Audiences []string
	// Issuer is the discovery document's (v2) issuer, which may contain {tenantid}; v1
	// tokens of the same tenants are accepted too.
	Issuer string
	// AllowedTenants, ClockSkew and Now are as in Config.
	AllowedTenants []string
	ClockSkew      time.Duration
	Now            func() time.Time
}

// AccessVerifier checks bearer access tokens against a key set.
type AccessVerifier struct {
	cfg     AccessConfig
	tenants *Verifier // for its issuer and tenant rules
}

// NewAccessVerifier returns a verifier for cfg.
func NewAccessVerifier(cfg AccessConfig) *AccessVerifier {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &AccessVerifier{
		cfg:     cfg,
		tenants: &Verifier{cfg: Config{Issuer: cfg.Issuer, AllowedTenants: cfg.AllowedTenants}},
	}
}

// Verify checks raw, a bearer token, and returns its claims. Beyond the rules of an ID
// token (RS256 with a key of the set, no crit header, claim types, times), it must be
// issued by the tenant's v1 or v2 issuer to one of the API's audiences, and be an access
// token: one with scp (a user's delegated token) or with roles and no user (an
// application's token). As for ID tokens, the key lookup and the signature come last.
func (v *AccessVerifier) Verify(raw string, keys *Set) (*Claims, error) {
	t, err := readToken(raw)
	if err != nil {
		return nil, err
	}
	if t.header.Get("nonce").Exists() {
		return nil, fmt.Errorf("%w: it has a nonce header, as Microsoft Graph's tokens do", ErrNotAccessToken)
	}
	c := t.claims
	if err := c.checkTypes(); err != nil {
		return nil, err
	}
	if err := c.checkTimes(v.cfg.Now(), v.cfg.ClockSkew); err != nil {
		return nil, err
	}
	if auds := c.audiences(); !slices.ContainsFunc(auds, func(a string) bool { return slices.Contains(v.cfg.Audiences, a) }) {
		return nil, fmt.Errorf("%w: %q", ErrAudience, auds)
	}
	tid, err := v.tenants.checkIssuer(c, v.cfg.Issuer, V1IssuerTemplate)
	if err != nil {
		return nil, err
	}
	delegated := c.String("scp") != ""
	application := len(c.Strings("roles")) > 0 && c.String("sub") == c.String("oid")
	if !delegated && !application {
		return nil, fmt.Errorf("%w: it has neither scp nor an application's roles (an ID token?)", ErrNotAccessToken)
	}
	if err := t.verifySignature(keys, tid); err != nil {
		return nil, err
	}
	return c, nil
}

// Scopes are a delegated token's scopes (scp, space-separated).
func (c *Claims) Scopes() []string { return strings.Fields(c.String("scp")) }
