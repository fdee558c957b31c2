// Package jwks parses a tenant's JSON Web Key Set, holds its signing keys, and verifies
// Entra ID tokens with them.
//
// The key set is passive: this package does no I/O. The filter fetches the JWKS with a
// dispatched call, hands the body to Parse, and keeps the resulting Set; when a token
// names a key the Set lacks, Verify fails with ErrUnknownKey and the filter may fetch
// again, at most once per MinUnknownKeyRefresh (RefreshAllowed says when).
//
// Verification is strict by default and has no opt-outs, and does the cheap checks first,
// so that a token that fails one never costs a key lookup, an unknown-kid refetch or RSA
// work: the header (alg exactly RS256, so no "none" and no HMAC with a public key; no
// "crit"; typ JWT when present), the claims' types (a claim of the wrong type is a bad
// token, never converted: aud a string or an array of strings), exp and iat required
// and checked with nbf against a small clock skew, aud holding the client id (and, with
// several audiences, azp equal to it), sub and tid present, tid a GUID for a
// multi-tenant issuer, iss equal to the discovery issuer with {tenantid} replaced by the
// token's tid, tid among the allowed tenants, nonce equal to the one sent. Then the key:
// the one kid names (a token without kid only when the set holds one key); a key that
// names an issuer (Entra's do) signs only that issuer's tokens. Entra publishes keys
// without "alg"; a key is used for RS256 when its kty is RSA. A malformed key is
// skipped, not fatal.
package jwks
