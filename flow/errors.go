package flow

import (
	"errors"
	"fmt"
)

var (
	// ErrNoSession: the request carries no session cookie.
	ErrNoSession = errors.New("flow: not signed in")
	// ErrSessionInvalid: the session cookie does not open (tampered, foreign, truncated).
	ErrSessionInvalid = errors.New("flow: session cookie invalid")
	// ErrSessionExpired: the session is past its lifetime.
	ErrSessionExpired = errors.New("flow: session expired")
	// ErrStateMissing: a callback without the state cookie that started it (expired,
	// cleared, or another browser).
	ErrStateMissing = errors.New("flow: sign-in state not found")
	// ErrStateInvalid: the state does not match the state cookie, or the cookie is bad.
	ErrStateInvalid = errors.New("flow: sign-in state mismatch")
	// ErrStateUsed: the callback's sign-in was completed before (a reload, a second visit,
	// or a replay).
	ErrStateUsed = errors.New("flow: sign-in already completed")
	// ErrStateExpired: the sign-in took longer than sign_in_timeout.
	ErrStateExpired = errors.New("flow: sign-in expired")
	// ErrStepUpUnsatisfied: Entra signed the user in without what the step-up asked
	// (StepUpError says what).
	ErrStepUpUnsatisfied = errors.New("flow: the sign-in did not satisfy the step-up")
	// ErrClaimsRequest: an application's claims challenge whose claims request is not
	// one to pass on.
	ErrClaimsRequest = errors.New("flow: the claims challenge's claims request is not acceptable")
	// ErrLoginParameter: /.auth/login was given a hint it cannot pass on.
	ErrLoginParameter = errors.New("flow: a sign-in parameter is not acceptable")
	// ErrCallback: a callback request that is malformed (no code, oversized query).
	ErrCallback = errors.New("flow: malformed callback")
	// ErrSignInRefused: Entra ID answered the authorize request with an error.
	ErrSignInRefused = errors.New("flow: sign-in refused by the identity provider")
	// ErrTokenEndpoint: the token endpoint answered with an OAuth error.
	ErrTokenEndpoint = errors.New("flow: token endpoint refused the request")
	// ErrIdPUnavailable: the identity provider could not be reached or failed (5xx).
	ErrIdPUnavailable = errors.New("flow: identity provider unavailable")
	// ErrClientAssertion: the client assertion for a token request could not be signed;
	// no token request goes out unauthenticated.
	ErrClientAssertion = errors.New("flow: the client assertion could not be signed")
	// ErrSharedState: the record of used sign-in states, shared by the workers, could not
	// be read, written or won; the callback does not go ahead (it might be a replay).
	ErrSharedState = errors.New("flow: the sign-in could not be checked against the other workers")
	// ErrTwoSessions: the session cookie was sent more than once, and two of the values
	// open to different sessions; neither is trusted.
	ErrTwoSessions = errors.New("flow: two different sessions in the request")
	// ErrTwoCredentials: the request carries more than one Authorization header, or one
	// that holds more than one credential; the filter never picks one of them.
	ErrTwoCredentials = errors.New("flow: more than one credential in the request")
	// ErrIdPResponse: the identity provider answered something unusable.
	ErrIdPResponse = errors.New("flow: unusable answer from the identity provider")
	// ErrDownstreamToken: no token could be got for the downstream API (obo_scopes).
	ErrDownstreamToken = errors.New("flow: no token for the downstream API")
	// ErrGroupsUnavailable: the user's group memberships could not be read from Microsoft
	// Graph. Nothing that depends on groups may go on as if there were none.
	ErrGroupsUnavailable = errors.New("flow: the user's group memberships could not be read")
	// ErrPath: a request path that cannot be judged safely (an encoded slash or backslash,
	// a control character, a broken or double percent-encoding). It is refused with 400.
	ErrPath = errors.New("flow: a path that cannot be judged safely")
	// ErrRefreshRejected: the token endpoint will not refresh this session any more
	// (invalid_grant: revoked, expired or already-used refresh token; or the user must
	// sign in interactively again). The session is over.
	ErrRefreshRejected = errors.New("flow: the identity provider ended the session")
	// ErrRefreshIdentity: a refresh returned an ID token for someone else (another iss,
	// sub, oid or tid). The session is over.
	ErrRefreshIdentity = errors.New("flow: the refreshed ID token names another user")
	// ErrRefreshUnverified: a refresh returned an ID token that does not verify (its
	// signature, issuer, audience, nonce or times). That is no passing outage: the
	// session is over.
	ErrRefreshUnverified = errors.New("flow: the refreshed ID token does not verify")
	// ErrUserRefused: the user-sync endpoint answered 4xx: the application refuses this
	// user (or the proxy's secret).
	ErrUserRefused = errors.New("flow: the application refused the user")
	// ErrUserSyncUnavailable: the user-sync endpoint could not be reached or failed (5xx).
	ErrUserSyncUnavailable = errors.New("flow: the user-sync endpoint is unavailable")
	// ErrUserSyncSecret: the endpoint answered 401, refusing the proxy's secret: a
	// refusal (no retry, 403) that says nothing about the user.
	ErrUserSyncSecret = fmt.Errorf("%w: it refused the proxy's bearer secret (401)", ErrUserRefused)
)

// OAuthError is an RFC 6749 error answer, from the authorize redirect or the token
// endpoint, with Entra's error codes when it sends them.
type OAuthError struct {
	// Kind is ErrSignInRefused or ErrTokenEndpoint.
	Kind error
	// Status is the HTTP status of a token endpoint answer (0 for the authorize redirect).
	Status      int
	Code        string // "invalid_grant", "access_denied", ...
	Description string
	// EntraCodes are Entra's AADSTS numbers (error_codes), when present.
	EntraCodes []int64
	// TraceID and CorrelationID help Entra's support find the event.
	TraceID, CorrelationID string
}

// Error quotes the code and description: from a callback they are the client's words.
func (e *OAuthError) Error() string {
	msg := fmt.Sprintf("%v: %s", e.Kind, logSafe(e.Code))
	if e.Description != "" {
		msg += ": " + logSafe(e.Description)
	}
	return msg
}

func (e *OAuthError) Unwrap() error { return e.Kind }
