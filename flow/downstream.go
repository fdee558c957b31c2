package flow

import (
	"net/url"
	"strings"
	"time"

	"github.com/entra-auth/entra-auth/session"
)

// Tokens for the upstream: the user's own access token (forward_access_token) and one
// for a downstream API got on the user's behalf (obo_scopes, the OAuth 2.0 on-behalf-of
// flow, as Microsoft.Identity.Web and django-entra-auth's token middleware do).

// maxOBOTokens bounds the on-behalf-of tokens a VM keeps.
const maxOBOTokens = 10000

// oboToken is a downstream token got for a session.
type oboToken struct {
	token   string
	expires time.Time
	// accessToken is the session's access token it was got with: a renewed session is a
	// new user assertion, and gets a new token.
	accessToken string
}

// ForwardedAccessToken is the header that gives the upstream the session's access token
// (forward_access_token), unless it is off, absent or expired.
func (f *Flow) ForwardedAccessToken(s *session.Session) ([2]string, bool) {
	name := f.cfg.ForwardAccessToken
	if name == "" || s.AccessToken == "" || f.AccessExpired(s) {
		return [2]string{}, false
	}
	value := s.AccessToken
	if name == "authorization" {
		value = "Bearer " + value
	}
	return [2]string{name, value}, true
}

// OBONeeded reports whether requests get a downstream token (obo_scopes).
func (f *Flow) OBONeeded() bool { return len(f.cfg.OBOScopes) > 0 }

// CachedOBO returns the downstream token header for the session while its token is good
// for longer than refresh_before, and was got with the session's current access token.
func (f *Flow) CachedOBO(s *session.Session) ([2]string, bool) {
	var now time.Time // read at most once, and only for a session with a token
	clock := func() time.Time {
		if now.IsZero() {
			now = f.now()
		}
		return now
	}
	got, ok := f.obo.Get(s.ID, clock)
	if !ok || got.accessToken != s.AccessToken || !clock().Before(got.expires.Add(-f.cfg.RefreshBefore)) {
		return [2]string{}, false
	}
	return [2]string{f.cfg.OBOHeader, got.token}, true
}

// OBORequest is the on-behalf-of grant: the session's access token (issued to this
// application) exchanged for a token for obo_scopes.
func (f *Flow) OBORequest(d *Discovery, s *session.Session) (*HTTPRequest, error) {
	form := url.Values{}
	form.Set("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
	form.Set("requested_token_use", "on_behalf_of")
	form.Set("assertion", s.AccessToken)
	form.Set("scope", strings.Join(f.cfg.OBOScopes, " "))
	form.Set("client_id", f.cfg.ClientID)
	return f.tokenRequest(d, form)
}

// RememberOBO keeps the downstream token got for the session and returns its header.
func (f *Flow) RememberOBO(s *session.Session, t *Tokens) [2]string {
	now := f.now()
	expires := now.Add(t.ExpiresIn)
	f.obo.Put(s.ID, &oboToken{token: t.AccessToken, expires: expires, accessToken: s.AccessToken}, expires, func() time.Time { return now })
	return [2]string{f.cfg.OBOHeader, t.AccessToken}
}
