package flow

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/session"
)

// Step-up: a rule may ask more of a sign-in than who the user is (auth_context,
// max_auth_age). A browser whose sign-in lacks it is sent to Entra again, asking for it
// with an OpenID Connect claims request (acrs, essential) or max_age and prompt=login;
// a program is answered 401 with a challenge it can act on.

// StepUp is what a request's sign-in lacks for its path.
type StepUp struct {
	// Contexts, when set, are the authentication contexts one of which is needed.
	Contexts []string
	// MaxAge, when set, is how recent the last authentication must be.
	MaxAge time.Duration
	// Rule names the rule that asks it.
	Rule string
}

// StepUpError says what a step-up sign-in lacked.
type StepUpError struct{ StepUp }

func (e *StepUpError) Error() string {
	return fmt.Sprintf("%v: %s", ErrStepUpUnsatisfied, e.StepUp.describe())
}

func (e *StepUpError) Unwrap() error { return ErrStepUpUnsatisfied }

// describe names the requirement, as a page and a log line say it.
func (su *StepUp) describe() string {
	var parts []string
	if len(su.Contexts) > 0 {
		parts = append(parts, "authentication context "+strings.Join(su.Contexts, " or "))
	}
	if su.MaxAge > 0 {
		parts = append(parts, "a sign-in within the last "+su.MaxAge.String())
	}
	return strings.Join(parts, ", and ")
}

// stepUpFor returns what rule asks of how the user signed in and s (a session, or a
// bearer token's user) lacks, or nil.
func (f *Flow) stepUpFor(rule *config.PathRule, s *session.Session) *StepUp {
	if !rule.StepUp() {
		return nil
	}
	su, lacks := f.lacking(rule.AuthContexts, rule.MaxAuthAge, s)
	if !lacks {
		return nil
	}
	su.Rule = rule.String()
	return &su
}

// lacking says which of the requirements (one of contexts; an authentication at most
// maxAge old) s does not meet, and whether it lacks any.
func (f *Flow) lacking(contexts []string, maxAge time.Duration, s *session.Session) (StepUp, bool) {
	var su StepUp
	if len(contexts) > 0 && !hasAny(s.ACRs, contexts) {
		su.Contexts = contexts
	}
	if maxAge > 0 && !f.recentEnough(s.AuthTime, maxAge) {
		su.MaxAge = maxAge
	}
	return su, su.Contexts != nil || su.MaxAge != 0
}

// recentEnough reports whether an authentication at authTime is at most maxAge old,
// with the configured clock skew.
func (f *Flow) recentEnough(authTime time.Time, maxAge time.Duration) bool {
	return !authTime.IsZero() && f.now().Sub(authTime) <= maxAge+f.cfg.ClockSkew
}

// ClaimsRequest is the OpenID Connect claims request (Core 5.5) that asks Entra for one
// of the contexts, as essential: {"id_token":{"acrs":{"essential":true,"value":"c1"}}}.
// The ids are c1..c99 (checked by config), so nothing in them needs escaping.
func (su *StepUp) ClaimsRequest() string {
	if len(su.Contexts) == 1 {
		return `{"id_token":{"acrs":{"essential":true,"value":"` + su.Contexts[0] + `"}}}`
	}
	return `{"id_token":{"acrs":{"essential":true,"values":["` + strings.Join(su.Contexts, `","`) + `"]}}}`
}

// StartStepUp is StartSignIn for a signed-in browser whose sign-in lacks what the path
// asks: the authorize request carries the claims request and max_age (with prompt=login,
// so that Entra asks for the password again rather than reuse its own session), and the
// sign-in cookie remembers the requirement, which the callback checks.
func (f *Flow) StartStepUp(r *Request, d *Discovery, returnTo string, su *StepUp) (*Response, error) {
	return f.startSignIn(r, d, returnTo, signInOptions{stepUp: su})
}

// stepUpParams sets the authorize request's step-up parameters.
func stepUpParams(q map[string][]string, su *StepUp) {
	if len(su.Contexts) > 0 {
		q["claims"] = []string{su.ClaimsRequest()}
	}
	if su.MaxAge > 0 {
		q["max_age"] = []string{strconv.FormatInt(int64(su.MaxAge/time.Second), 10)}
		q["prompt"] = []string{"login"}
	}
}

// CheckStepUp checks that a step-up sign-in's session has what its sign-in asked for:
// Entra may sign a user in without satisfying an authentication context (no policy
// targets it, or the user cannot meet it), and then the page stays out of reach.
func (f *Flow) CheckStepUp(cb *Callback, s *session.Session) error {
	if missing, lacks := f.lacking(cb.SignIn.ACRs, cb.SignIn.MaxAge, s); lacks {
		return &StepUpError{missing}
	}
	return nil
}

// StepUpChallenge answers a program (an API call, or a script of a signed-in page) whose
// sign-in lacks what the path asks: 401 with a challenge it can act on. An
// authentication context is asked as Entra asks (error="insufficient_claims" and the
// claims request in base64, which MSAL clients understand); a recent sign-in as RFC
// 9470 asks (error="insufficient_user_authentication" with max_age).
func (f *Flow) StepUpChallenge(r *Request, su *StepUp, requestID string) *Response {
	msg := "This request needs a stronger sign-in: " + su.describe() + "."
	var challenge string
	if len(su.Contexts) > 0 {
		claims := base64.StdEncoding.EncodeToString([]byte(su.ClaimsRequest()))
		challenge = fmt.Sprintf(`Bearer realm=%q, error="insufficient_claims", error_description=%q, claims=%q`,
			r.Authority, "authentication context "+strings.Join(su.Contexts, " or ")+" required", claims)
	} else {
		challenge = fmt.Sprintf(`Bearer realm=%q, error="insufficient_user_authentication", error_description=%q, max_age=%d`,
			r.Authority, "a more recent authentication is required", int64(su.MaxAge/time.Second))
	}
	code := "insufficient_claims"
	if len(su.Contexts) == 0 {
		code = "insufficient_user_authentication"
	}
	resp := JSONError(401, code, msg, requestID)
	resp.Headers = append(resp.Headers, [2]string{"www-authenticate", challenge})
	return resp
}
