package flow

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/entra-auth/entra-auth/jwks"
	"github.com/entra-auth/entra-auth/session"
)

// HeaderScopes carries a bearer token's delegated scopes to the upstream.
const HeaderScopes = "x-auth-request-scopes"

// maxVerifiedTokens bounds the verified bearer tokens a VM remembers.
const maxVerifiedTokens = 10000

// BearerIdentity is who a verified bearer token speaks for.
type BearerIdentity struct {
	// User is the token's user (or application) in the form sessions have.
	User *session.Session
	// Scopes are the delegated scopes (scp); Roles are in User.Roles.
	Scopes []string
	// Expires is the token's exp.
	Expires time.Time
	// headers are BearerHeaders, built once per verified token.
	headers [][2]string
}

// CachedBearer returns the identity of a bearer token verified earlier and not yet
// expired, so that a busy API does not verify the same token on every request.
func (f *Flow) CachedBearer(token string) (*BearerIdentity, bool) {
	return f.verified.Get(bearerKey(token), f.now)
}

// bearerKey is a token's BLAKE2b-256 hash, its key in the cache: the token itself is not
// kept. (BLAKE2b, not SHA-256: inside a Wasm VM neither has assembly, and BLAKE2b's 64-bit
// arithmetic hashes a token in about half the time.)
func bearerKey(token string) [32]byte { return blake2b.Sum256([]byte(token)) }

// RememberBearer records a token the verifier accepted and returns its identity. It is
// remembered until its exp (the verifier allowed it no later).
func (f *Flow) RememberBearer(token string, c *jwks.Claims) *BearerIdentity {
	user := &session.Session{}
	setIdentity(user, c)
	if user.Username == "" {
		user.Username = c.String("unique_name") // v1 tokens
	}
	exp := time.Unix(c.Get("exp").Int(), 0)
	id := &BearerIdentity{User: user, Scopes: c.Scopes(), Expires: exp}
	id.headers = bearerHeaders(id)
	f.verified.Put(bearerKey(token), id, exp, f.now)
	return id
}

// BearerHeaders are the identity headers for a bearer request: those of a session, and
// the scopes. The caller may append to them but not change them.
func BearerHeaders(id *BearerIdentity) [][2]string {
	if id.headers != nil {
		return slices.Clip(id.headers)
	}
	return bearerHeaders(id)
}

func bearerHeaders(id *BearerIdentity) [][2]string {
	h := identityHeaders(id.User)
	if len(id.Scopes) > 0 {
		h = append(h, [2]string{HeaderScopes, headerSafe(strings.Join(id.Scopes, " "))})
	}
	return h
}

// BearerRefused answers a bearer token that did not verify: 401 with a WWW-Authenticate
// header that says why, in RFC 6750's terms (the description names the rule, never a
// claim's value).
func (f *Flow) BearerRefused(r *Request, err error, requestID string) *Response {
	desc := "the access token is not valid"
	switch {
	case errors.Is(err, jwks.ErrExpired):
		desc = "the access token expired"
	case errors.Is(err, jwks.ErrAudience):
		desc = "the access token was issued for another audience"
	case errors.Is(err, jwks.ErrNotAccessToken):
		desc = "not an access token for this API"
	case errors.Is(err, jwks.ErrIssuer), errors.Is(err, jwks.ErrTenant):
		desc = "the access token was issued by an issuer or tenant this API does not accept"
	case errors.Is(err, jwks.ErrSignature), errors.Is(err, jwks.ErrAlgorithm), errors.Is(err, jwks.ErrUnknownKey):
		desc = "the access token's signature does not verify"
	case errors.Is(err, jwks.ErrMalformed):
		desc = "the access token is malformed"
	}
	resp := JSONError(401, "invalid_token", "The bearer token was refused: "+desc+".", requestID)
	resp.Headers = append(resp.Headers, [2]string{"www-authenticate",
		fmt.Sprintf(`Bearer realm=%q, error="invalid_token", error_description=%q`, r.Authority, desc)})
	return resp
}
