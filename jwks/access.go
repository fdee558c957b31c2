package jwks

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
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
	tenants *Verifier // for its tenant rules
	parser  *jwt.Parser
}

// NewAccessVerifier returns a verifier for cfg.
func NewAccessVerifier(cfg AccessConfig) *AccessVerifier {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &AccessVerifier{
		cfg:     cfg,
		tenants: &Verifier{cfg: Config{Issuer: cfg.Issuer, AllowedTenants: cfg.AllowedTenants}},
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{"RS256"}),
			jwt.WithAudience(cfg.Audiences...),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(cfg.ClockSkew),
			jwt.WithTimeFunc(cfg.Now),
		),
	}
}

// Verify checks raw, a bearer token, and returns its claims. Beyond the rules of an ID
// token (RS256 with a key of the set, no crit header, times), it must be issued by the
// tenant's v1 or v2 issuer to one of the API's audiences, and be an access token: one
// with scp (a user's delegated token) or with roles and no user (an application's token).
func (v *AccessVerifier) Verify(raw string, keys *Set) (*Claims, error) {
	if len(raw) > MaxTokenSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMalformed, len(raw))
	}
	claims := &Claims{}
	_, err := v.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		if _, nonce := t.Header["nonce"]; nonce {
			return nil, fmt.Errorf("%w: it has a nonce header, as Microsoft Graph's tokens do", ErrNotAccessToken)
		}
		return keyFor(t, keys)
	})
	if err != nil {
		if errors.Is(err, ErrNotAccessToken) {
			return nil, err
		}
		return nil, classify(err)
	}
	tid := claims.String("tid")
	if tid == "" || claims.String("sub") == "" {
		return nil, fmt.Errorf("%w: sub and tid are required", ErrClaims)
	}
	iss := claims.String("iss")
	v2 := strings.ReplaceAll(v.cfg.Issuer, TenantPlaceholder, tid)
	v1 := strings.ReplaceAll(V1IssuerTemplate, TenantPlaceholder, tid)
	if iss != v2 && iss != v1 {
		return nil, fmt.Errorf("%w: %q, want %q or %q", ErrIssuer, iss, v2, v1)
	}
	if !v.tenants.tenantAllowed(tid) {
		return nil, fmt.Errorf("%w: %q", ErrTenant, tid)
	}
	delegated := claims.Get("scp").String() != ""
	application := len(claims.Strings("roles")) > 0 && claims.String("sub") == claims.String("oid")
	if !delegated && !application {
		return nil, fmt.Errorf("%w: it has neither scp nor an application's roles (an ID token?)", ErrNotAccessToken)
	}
	return claims, nil
}

// Scopes are a delegated token's scopes (scp, space-separated).
func (c *Claims) Scopes() []string { return strings.Fields(c.String("scp")) }
