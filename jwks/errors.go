package jwks

import "errors"

var (
	// ErrKeySet reports a JWKS document with no usable key.
	ErrKeySet = errors.New("jwks: no usable signing key in the key set")
	// ErrUnknownKey reports a token signed with a key the set lacks (fetch the JWKS again).
	ErrUnknownKey = errors.New("jwks: token signed with an unknown key")
	// ErrMalformed reports a token that is not a well-formed JWS compact JWT.
	ErrMalformed = errors.New("jwks: malformed token")
	// ErrAlgorithm reports a token not signed with RS256, or with a critical header.
	ErrAlgorithm = errors.New("jwks: token algorithm or header refused")
	// ErrSignature reports a signature that does not verify.
	ErrSignature = errors.New("jwks: token signature invalid")
	// ErrExpired reports a token outside its validity period (exp, nbf, iat).
	ErrExpired = errors.New("jwks: token expired or not yet valid")
	// ErrAudience reports a token issued to another application.
	ErrAudience = errors.New("jwks: token audience is not this application")
	// ErrIssuer reports a token from another issuer.
	ErrIssuer = errors.New("jwks: token issuer refused")
	// ErrTenant reports a token from a tenant that is not allowed.
	ErrTenant = errors.New("jwks: token tenant not allowed")
	// ErrNonce reports a token whose nonce is not the one this sign-in sent.
	ErrNonce = errors.New("jwks: token nonce mismatch")
	// ErrClaims reports a token missing a required claim.
	ErrClaims = errors.New("jwks: token lacks a required claim")
)
