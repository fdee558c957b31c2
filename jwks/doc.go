// Package jwks parses a tenant's JSON Web Key Set, holds its signing keys, and verifies
// Entra ID tokens with them.
//
// The key set is passive: this package does no I/O. The filter fetches the JWKS with a
// dispatched call, hands the body to Parse, and keeps the resulting Set; when a token
// names a key the Set lacks, Verify fails with ErrUnknownKey and the filter may fetch
// again, at most once per MinUnknownKeyRefresh (RefreshAllowed says when).
//
// Verification is strict by default and has no opt-outs: RS256 only (no "none", no HMAC
// with a public key), the key chosen by kid (a token without kid is accepted only when
// the set holds a single key), issuer equal to the discovery issuer with {tenantid}
// replaced by the token's tid, tid among the allowed tenants, aud equal to the client id,
// exp required, exp/nbf/iat checked with a small clock skew, sub present, nonce equal to
// the one sent, no "crit" header. Entra publishes keys without "alg"; a key is used for
// RS256 when its kty is RSA.
package jwks
