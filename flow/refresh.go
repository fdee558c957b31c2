package flow

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/entra-auth/entra-auth/jwks"
	"github.com/entra-auth/entra-auth/session"
)

// RefreshDue reports whether the session's access token is within refresh_before of
// expiring (or past it) and can be refreshed.
func (f *Flow) RefreshDue(s *session.Session) bool {
	return s.RefreshToken != "" && !s.AccessExpires.IsZero() && !f.now().Before(s.AccessExpires.Add(-f.cfg.RefreshBefore))
}

// AccessExpired reports whether the session's access token is past its expiry: a
// session that cannot be refreshed then must not be used.
func (f *Flow) AccessExpired(s *session.Session) bool {
	return !s.AccessExpires.IsZero() && !f.now().Before(s.AccessExpires)
}

// RefreshRequest is the refresh_token grant for the session, asking for the configured
// scopes again.
func (f *Flow) RefreshRequest(d *Discovery, s *session.Session) (*HTTPRequest, error) {
	form := url.Values{}
	form.Set("grant_type", "refresh_token")
	form.Set("refresh_token", s.RefreshToken)
	form.Set("client_id", f.cfg.ClientID)
	form.Set("scope", strings.Join(f.cfg.Scopes, " "))
	return f.tokenRequest(d, form)
}

// interactive are the token endpoint's errors that mean the refresh token is no good any
// more and only a new sign-in will do.
var interactive = []string{"invalid_grant", "interaction_required", "login_required", "consent_required"}

// RefreshFailed classifies a failed refresh: ErrRefreshRejected when only a new sign-in
// will do; otherwise the error as it was (the provider unavailable or misconfigured), and
// the session may be used while its access token lasts.
func RefreshFailed(err error) error {
	var oauth *OAuthError
	if errors.As(err, &oauth) && slices.Contains(interactive, oauth.Code) {
		return fmt.Errorf("%w: %v", ErrRefreshRejected, err)
	}
	return err
}

// Refreshed is the session after a refresh: the new tokens (a refresh token left out of
// the answer stays the old one) and, when the answer had a verified ID token, who the
// user is now (name, groups, roles may have changed; iss, sub, oid and tid may not). The
// session keeps its id, its sign-in time, its absolute expiry and its user-sync state.
func (f *Flow) Refreshed(old *session.Session, t *Tokens, c *jwks.Claims) (*session.Session, error) {
	s := *old
	s.Groups, s.Roles = slices.Clone(old.Groups), slices.Clone(old.Roles)
	if c != nil {
		if c.String("iss") != old.Issuer || c.String("sub") != old.Subject || c.String("oid") != old.ObjectID || c.String("tid") != old.TenantID {
			return nil, fmt.Errorf("%w: %s/%s in tenant %s became %s/%s in tenant %s", ErrRefreshIdentity,
				old.Subject, old.ObjectID, old.TenantID, c.String("sub"), c.String("oid"), c.String("tid"))
		}
		setIdentity(&s, c)
	}
	f.setTokens(&s, t)
	return &s, nil
}

// SessionCookies are the Set-Cookie values that store s for the request's browser,
// clearing chunks of an older, larger session.
func (f *Flow) SessionCookies(r *Request, s *session.Session) ([]string, error) {
	return f.sessionCookies(r, s)
}

// SessionEnded answers a request whose session the identity provider ended: the session
// cookies cleared, and a browser sent to sign in again (to come back to the same page), a
// program told 401.
func (f *Flow) SessionEnded(r *Request, requestID string) *Response {
	cookies := f.ClearSession(r)
	var resp *Response
	if r.IsBrowser() {
		resp = redirect(f.cfg.LoginPath+"?rd="+url.QueryEscape(SafeReturnPath(r.Path)), cookies)
	} else {
		resp = f.SignInRequired(r, requestID)
		for _, c := range cookies {
			resp.Headers = append(resp.Headers, [2]string{"set-cookie", c})
		}
	}
	return resp
}

// ClearSession are the Set-Cookie values that remove the request's session cookies.
func (f *Flow) ClearSession(r *Request) []string {
	var cookies []string
	for _, name := range session.Present(r.Cookies, f.cfg.CookieName, maxSessionChunks) {
		cookies = append(cookies, f.attrs.Clear(name))
	}
	return cookies
}
