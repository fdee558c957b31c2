package flow

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/jwks"
	"github.com/entra-auth/entra-auth/session"
)

// Identity headers set for the upstream. Client-sent headers with the prefix, in any
// spelling (see ClientMayNotSend), are removed from every request before any of these
// is set.
const (
	HeaderPrefix = "x-auth-request-"
	HeaderUser   = "x-auth-request-user"
	HeaderEmail  = "x-auth-request-email"
	HeaderName   = "x-auth-request-name"
	HeaderOID    = "x-auth-request-oid"
	HeaderTID    = "x-auth-request-tid"
	HeaderGroups = "x-auth-request-groups"
	HeaderRoles  = "x-auth-request-roles"
	HeaderUserID = "x-auth-request-user-id"
	// HeaderACRs lists the authentication contexts the sign-in satisfied (c1,c7);
	// HeaderAuthTime is when the user last actively authenticated, in Unix seconds.
	HeaderACRs     = "x-auth-request-acrs"
	HeaderAuthTime = "x-auth-request-auth-time"
)

// IsIdentityHeader reports whether name, as the filter spells it, is one of its
// x-auth-request-* headers. For a client's header, use ClientMayNotSend.
func IsIdentityHeader(name string) bool {
	return len(name) >= len(HeaderPrefix) && strings.EqualFold(name[:len(HeaderPrefix)], HeaderPrefix)
}

// ClientMayNotSend reports whether a request header called name must be removed before
// the request goes on: in the spelling an application server may fold it to, it is a
// header the filter sets. Case is ignored and '_' is taken for '-', as CGI, WSGI, PHP and
// Django's request.META do (X_Auth_Request_Email and x-auth-request-email both become
// HTTP_X_AUTH_REQUEST_EMAIL). The filter's headers are the x-auth-request-* ones and
// those named by forward_access_token and obo_header; authorization, which a client
// sends as its bearer credential, is not one: forwarding a token replaces it.
func (f *Flow) ClientMayNotSend(name string) bool {
	if foldedHasPrefix(name, HeaderPrefix) {
		return true
	}
	for _, owned := range f.ownedHeaders {
		if foldedEqual(name, owned) {
			return true
		}
	}
	return false
}

// ownsCookie reports whether a cookie called name is one of the filter's: the session
// cookie or one of its numbered chunks, or a sign-in cookie. They stay with the filter:
// the session holds a refresh token, and an application that logs its request headers
// must never log a session someone could replay.
func (f *Flow) ownsCookie(name string) bool {
	base := f.cfg.CookieName
	if !strings.HasPrefix(name, base) {
		return false
	}
	rest := name[len(base):]
	if rest == "" || strings.HasPrefix(rest, "-signin-") {
		return true
	}
	digits := strings.TrimPrefix(rest, ".")
	return len(digits) < len(rest) && digits != "" && strings.Trim(digits, "0123456789") == ""
}

// UpstreamCookie is the Cookie header the request goes upstream with: the client's,
// without the filter's own cookies. changed is false when there were none of those.
func (f *Flow) UpstreamCookie(r *Request) (cookie string, changed bool) {
	return session.Without(r.cookieHeaders, f.ownsCookie)
}

// ownedHeaderNames are the configured header names outside the x-auth-request- prefix
// that the filter sets, folded.
func ownedHeaderNames(c *config.Config) []string {
	var out []string
	for _, name := range []string{c.ForwardAccessToken, c.OBOHeader} {
		name = foldHeaderName(name)
		if name != "" && name != "authorization" && !strings.HasPrefix(name, HeaderPrefix) && !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

// foldHeaderName lower-cases the ASCII letters of name and turns '_' into '-'. Header
// names are ASCII tokens (RFC 9110 section 5.1); Envoy's codecs refuse anything else.
func foldHeaderName(name string) string {
	b := []byte(name)
	for i, c := range b {
		b[i] = foldByte(c)
	}
	return string(b)
}

// foldByte is one byte of foldHeaderName.
func foldByte(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}

// foldedHasPrefix reports whether name, folded, starts with prefix (already folded),
// without allocating: it runs on every header of every request.
func foldedHasPrefix(name, prefix string) bool {
	if len(name) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if foldByte(name[i]) != prefix[i] {
			return false
		}
	}
	return true
}

func foldedEqual(name, folded string) bool {
	return len(name) == len(folded) && foldedHasPrefix(name, folded)
}

// NewSession makes the session for a sign-in's verified ID token and the tokens that came
// with it. It lasts session_max_age; with a refresh token, its access token is refreshed
// until then.
func (f *Flow) NewSession(c *jwks.Claims, t *Tokens, nonce string) (*session.Session, error) {
	id, err := f.randomToken()
	if err != nil {
		return nil, err
	}
	now := f.now()
	s := &session.Session{ID: id[:22], Nonce: nonce, IssuedAt: now, Expires: now.Add(f.cfg.SessionMaxAge)}
	setIdentity(s, c)
	f.setTokens(s, t)
	return s, nil
}

// keepsAccessToken reports whether sessions keep the access token: only when the
// configuration forwards it or exchanges it on behalf of the user.
func (f *Flow) keepsAccessToken() bool {
	return f.cfg.ForwardAccessToken != "" || len(f.cfg.OBOScopes) > 0
}

// setIdentity copies who the user is from verified claims.
func setIdentity(s *session.Session, c *jwks.Claims) {
	username := c.String("preferred_username")
	if username == "" {
		username = c.String("upn")
	}
	if username == "" {
		username = c.String("email")
	}
	s.Issuer, s.Subject, s.ObjectID, s.TenantID = c.String("iss"), c.String("sub"), c.String("oid"), c.String("tid")
	s.Username, s.Email, s.Name = username, c.String("email"), c.String("name")
	s.Groups, s.Roles = c.Strings("groups"), c.Strings("roles")
	s.LoginHint = c.String("login_hint")
	setAuthentication(s, c)
}

// setAuthentication copies how the user signed in from verified claims: the
// authentication contexts satisfied (acrs), always from the latest token, so that one
// that no longer lists a context loses it; and the methods (amr) and time (auth_time),
// kept from before when a refreshed token leaves them out (they describe the sign-in,
// which a refresh does not repeat). Values of another type, or that are not well-formed
// context ids or method names, are dropped: they go upstream in a header.
func setAuthentication(s *session.Session, c *jwks.Claims) {
	s.ACRs = wellFormed(c.Get("acrs"), config.IsContextID)
	if amr := c.Get("amr"); amr.IsArray() {
		s.AMR = wellFormed(amr, isMethodName)
	}
	if at := c.Get("auth_time"); at.Type == gjson.Number && at.Int() > 0 {
		s.AuthTime = time.Unix(at.Int(), 0)
	}
}

// wellFormed returns the strings of the JSON array r that pass ok.
func wellFormed(r gjson.Result, ok func(string) bool) []string {
	if !r.IsArray() {
		return nil
	}
	var out []string
	for _, v := range r.Array() {
		if v.Type == gjson.String && ok(v.Str) && !slices.Contains(out, v.Str) && len(out) < maxAuthValues {
			out = append(out, v.Str)
		}
	}
	return out
}

// maxAuthValues bounds the contexts and methods a session keeps.
const maxAuthValues = 32

// isMethodName reports whether s looks like an amr value (RFC 8176: pwd, mfa, otp, ...).
func isMethodName(s string) bool {
	return s != "" && len(s) <= 32 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == ""
}

// setTokens keeps what the token endpoint answered; a refresh token the answer leaves out
// stays what it was (Entra rotates them, but need not). The access token is kept only
// when something uses it later (forward_access_token, obo_scopes): it is often the
// largest part of the cookie, which every request carries and a VM that has not seen
// the cookie must decrypt; its expiry is kept either way, to refresh on time.
func (f *Flow) setTokens(s *session.Session, t *Tokens) {
	if t == nil {
		return
	}
	s.AccessToken = ""
	if f.keepsAccessToken() {
		s.AccessToken = t.AccessToken
	}
	if t.RefreshToken != "" {
		s.RefreshToken = t.RefreshToken
	}
	s.AccessExpires = time.Time{}
	if t.ExpiresIn > 0 {
		s.AccessExpires = f.now().Add(t.ExpiresIn)
	}
}

// CompleteSignIn answers a callback whose token verified: the session cookies (stale
// chunks of an older, larger session cleared), the sign-in cookie cleared, and a
// redirect to the page the sign-in started from.
func (f *Flow) CompleteSignIn(r *Request, cb *Callback, s *session.Session) (*Response, error) {
	cookies, err := f.sessionCookies(r, s)
	if err != nil {
		return nil, err
	}
	cookies = append(cookies, f.clearSignIn(cb))
	return redirect(SafeReturnPath(cb.SignIn.ReturnTo), cookies), nil
}

func (f *Flow) sessionCookies(r *Request, s *session.Session) ([]string, error) {
	sealed, err := f.codec.Seal(f.cfg.CookieName, s.Marshal())
	if err != nil {
		return nil, err
	}
	chunks, err := session.Split(f.cfg.CookieName, sealed, maxCookieValue, maxSessionChunks)
	if err != nil {
		return nil, fmt.Errorf("%w (%d groups and %d roles; with that many, use app roles or fewer groups)", err, len(s.Groups), len(s.Roles))
	}
	maxAge := int(s.Expires.Sub(f.now()).Seconds())
	var out []string
	written := map[string]bool{}
	for _, c := range chunks {
		out = append(out, f.attrs.Set(c, maxAge))
		written[c.Name] = true
	}
	for _, name := range session.Present(r.Cookies, f.cfg.CookieName, maxSessionChunks) {
		if !written[name] {
			out = append(out, f.attrs.Clear(name))
		}
	}
	return out, nil
}

// Authenticate opens the request's session: ErrNoSession without a cookie,
// ErrSessionInvalid for one that does not open, ErrSessionExpired past its lifetime.
// The session returned may be shared with later calls: callers must not change it.
func (f *Flow) Authenticate(r *Request) (*session.Session, error) {
	candidates, found, err := session.JoinAll(r.Cookies, f.cfg.CookieName, maxSessionChunks)
	switch {
	case !found:
		return nil, ErrNoSession
	case err != nil:
		return nil, fmt.Errorf("%w: %v", ErrSessionInvalid, err)
	case len(candidates) == 1:
		return f.open(candidates[0])
	}
	// The session cookie was sent more than once (a sibling subdomain can set one of the
	// same name under cookie_domain). No value is trusted for its position: every one is
	// opened, and planted ones that do not open cannot lock the user out; but two that
	// open to different sessions leave no safe choice.
	var chosen *session.Session
	for _, sealed := range candidates {
		s, err := f.open(sealed)
		switch {
		case err != nil:
			continue
		case chosen == nil || (sameSession(s, chosen) && s.AccessExpires.After(chosen.AccessExpires)):
			chosen = s
		case !sameSession(s, chosen):
			return nil, ErrTwoSessions
		}
	}
	if chosen == nil {
		return nil, fmt.Errorf("%w: none of the %d session cookies sent opens", ErrSessionInvalid, len(candidates))
	}
	f.identity = &openedSession{session: chosen, headers: identityHeaders(chosen)}
	return chosen, nil
}

// sameSession reports whether a and b are one session, perhaps refreshed: the same id
// and the same user.
func sameSession(a, b *session.Session) bool {
	return a.ID == b.ID && a.Issuer == b.Issuer && a.Subject == b.Subject && a.ObjectID == b.ObjectID && a.TenantID == b.TenantID
}

// open opens one sealed session, from the cache of opened sessions when it can.
func (f *Flow) open(sealed string) (*session.Session, error) {
	cached, ok := f.opened.Get(cacheKey(sealed), f.now) // until the session expires
	if !ok || cached.sealed != sealed {
		plain, err := f.codec.Open(f.cfg.CookieName, sealed)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSessionInvalid, err)
		}
		s, err := session.UnmarshalSession(plain)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSessionInvalid, err)
		}
		if s.Expired(f.now()) {
			return nil, ErrSessionExpired
		}
		cached = f.remember(sealed, s)
	}
	f.identity = cached
	return cached.session, nil
}

// remember caches an opened session with its identity headers until it expires.
func (f *Flow) remember(sealed string, s *session.Session) *openedSession {
	o := &openedSession{sealed: sealed, session: s, headers: identityHeaders(s)}
	f.opened.Put(cacheKey(sealed), o, s.Expires, f.now)
	return o
}

// Identity is identityHeaders(s), without building them again when s is the session
// Authenticate last returned. The caller may append to the result but not change it.
func (f *Flow) Identity(s *session.Session) [][2]string {
	if f.identity != nil && f.identity.session == s {
		return slices.Clip(f.identity.headers)
	}
	return identityHeaders(s)
}

// identityHeaders are the headers that tell the upstream who the user is. Empty values
// are left out; lists are comma-separated.
func identityHeaders(s *session.Session) [][2]string {
	h := make([][2]string, 0, 8)
	add := func(name, value string) {
		if value != "" {
			h = append(h, [2]string{name, headerSafe(value)})
		}
	}
	add(HeaderUser, s.Username)
	add(HeaderEmail, s.Email)
	add(HeaderName, s.Name)
	add(HeaderOID, s.ObjectID)
	add(HeaderTID, s.TenantID)
	add(HeaderGroups, strings.Join(s.Groups, ","))
	add(HeaderRoles, strings.Join(s.Roles, ","))
	add(HeaderUserID, s.UserID)
	add(HeaderACRs, strings.Join(s.ACRs, ","))
	if !s.AuthTime.IsZero() {
		add(HeaderAuthTime, strconv.FormatInt(s.AuthTime.Unix(), 10))
	}
	return h
}

// headerSafe drops control characters, which no claim should carry and no header may.
func headerSafe(v string) string {
	// A byte scan is enough: no byte of a multi-byte UTF-8 sequence is below 0x80.
	clean := true
	for i := 0; i < len(v) && clean; i++ {
		clean = v[i] >= 0x20 && v[i] != 0x7f
	}
	if clean {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, v)
}

// Me answers /.auth/me: the signed-in user as JSON.
func Me(s *session.Session) *Response {
	o := &jsonObject{} // keys sorted, as they have always been
	o.strs("acrs", nonNil(s.ACRs)).strs("amr", nonNil(s.AMR))
	if !s.AuthTime.IsZero() {
		o.int("auth_time", s.AuthTime.Unix())
	}
	body := o.str("email", s.Email).int("expires_at", s.Expires.Unix()).strs("groups", nonNil(s.Groups)).
		str("iss", s.Issuer).str("name", s.Name).str("oid", s.ObjectID).str("preferred_username", s.Username).
		strs("roles", nonNil(s.Roles)).int("signed_in_at", s.IssuedAt.Unix()).str("sub", s.Subject).
		str("tid", s.TenantID).str("user_id", s.UserID).bytes()
	return &Response{Status: 200, Body: body, Headers: [][2]string{{"content-type", "application/json"}, {"cache-control", "no-store"}}}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Logout clears every session and sign-in cookie and sends the browser to Entra's
// end-session endpoint, with post_logout_redirect_uri and, when the session knows it,
// logout_hint (so Entra need not ask which account). Without an end-session endpoint
// the browser goes straight to the post-logout URI. s may be nil.
func (f *Flow) Logout(r *Request, d *Discovery, s *session.Session) *Response {
	var cookies []string
	for _, name := range session.Present(r.Cookies, f.cfg.CookieName, maxSessionChunks) {
		cookies = append(cookies, f.attrs.Clear(name))
	}
	for _, name := range f.signInCookies(r.Cookies) {
		cookies = append(cookies, f.attrs.Clear(name))
	}
	after := f.cfg.PostLogoutRedirectURI
	if after == "" {
		scheme := "https"
		if r.Scheme == "http" {
			scheme = "http"
		}
		after = scheme + "://" + r.Authority + f.cfg.SignedOutPath
	}
	if d == nil || d.EndSessionEndpoint == "" {
		return redirect(after, cookies)
	}
	q := url.Values{}
	q.Set("post_logout_redirect_uri", after)
	if s != nil && s.LoginHint != "" {
		q.Set("logout_hint", s.LoginHint)
	}
	sep := "?"
	if strings.Contains(d.EndSessionEndpoint, "?") {
		sep = "&"
	}
	return redirect(d.EndSessionEndpoint+sep+q.Encode(), cookies)
}

// SignedOut is the page Entra sends the browser to after sign-out (the default
// post_logout_redirect_uri): it says so, and offers to sign in again, instead of a site
// root that would start a new sign-in at once. It needs no session and reflects nothing
// of the request.
func (f *Flow) SignedOut(r *Request) *Response {
	again := f.cfg.LoginPath + "?rd=%2F"
	if !r.IsBrowser() {
		o := &jsonObject{}
		return &Response{Status: 200, Body: o.bool("signed_out", true).str("sign_in", again).bytes(),
			Headers: [][2]string{{"content-type", "application/json"}, {"cache-control", "no-store"}}}
	}
	body := page("You are signed out", "You signed out of this site. To use it again, sign in.", again, "Sign in again", "")
	return &Response{Status: 200, Body: body, Headers: [][2]string{{"content-type", "text/html; charset=utf-8"}, {"cache-control", "no-store"}}}
}

// SignInRequired answers a request without a valid session: a browser is sent to sign in
// (through start, which the filter calls with the discovery document); a program gets 401
// with WWW-Authenticate naming the login path.
//
// One exception: a browser asks for /favicon.ico on its own, and a 401 there only fills
// its console with an error. A signed-out GET or HEAD of /favicon.ico is answered 204,
// empty and not cached: nothing of the application's, and its icon once signed in.
func (f *Flow) SignInRequired(r *Request, requestID string) *Response {
	if r.pathOnly() == "/favicon.ico" && (r.Method == "GET" || r.Method == "HEAD") {
		return &Response{Status: 204, Headers: [][2]string{{"cache-control", "no-store"}}}
	}
	resp := ErrorResponse(r, 401, "sign_in_required", "Sign-in is required.", requestID)
	resp.Headers = append(resp.Headers, [2]string{"www-authenticate",
		fmt.Sprintf(`Bearer realm=%q, authorization_uri="%s"`, strings.ReplaceAll(r.Authority, `"`, ""), f.cfg.LoginPath)})
	return resp
}

// ErrorResponse is a small page a person can act on for a browser's request, and
// JSONError for a program's, with the request id that is also in the log.
func ErrorResponse(r *Request, status int, code, message, requestID string) *Response {
	if r.IsBrowser() {
		return &Response{Status: status, Body: errorPage(status, message, requestID),
			Headers: [][2]string{{"content-type", "text/html; charset=utf-8"}, {"cache-control", "no-store"}}}
	}
	return JSONError(status, code, message, requestID)
}

// JSONError is an error as JSON ({"error", "message", "request_id"}): the answer for a
// program, or where no request says what the client reads.
func JSONError(status int, code, message, requestID string) *Response {
	o := &jsonObject{}
	body := o.str("error", code).str("message", message).str("request_id", requestID).bytes()
	return &Response{Status: status, Body: body, Headers: [][2]string{{"content-type", "application/json"}, {"cache-control", "no-store"}}}
}

// Problem is how the filter explains an error to the person who met it, and how loud it
// logs it.
type Problem struct {
	Status  int
	Code    string
	Message string
	Level   Level
}

// Level is how loud a problem is logged: LevelInfo for what ordinary use meets (a
// sign-in that took too long, a reload, a refusal by policy), LevelWarn for what an
// attack or a misconfiguration causes, LevelError for an outage or a fault.
type Level int

// The levels of Problem.
const (
	LevelInfo Level = iota
	LevelWarn
	LevelError
)

// Explain maps an error of a sign-in step onto a status and words a person can act on.
// It never repeats a token or a cookie.
func (f *Flow) Explain(err error) Problem {
	var oauth *OAuthError
	var stepUp *StepUpError
	switch {
	case errors.Is(err, ErrGroupsUnavailable):
		return Problem{503, "groups_unavailable", "You are in more groups than a sign-in can carry, and your group memberships could not be read from Microsoft Graph. Please try again later, or ask the application's administrator.", LevelWarn}
	case errors.Is(err, ErrDownstreamToken):
		return Problem{502, "downstream_token_unavailable", "A token for a service this application uses could not be obtained on your behalf (has an administrator granted consent?). Please try again later.", LevelWarn}
	case errors.As(err, &oauth) && errors.Is(err, ErrSignInRefused):
		return Problem{403, "sign_in_refused", describeOAuthError(oauth, "Entra ID did not sign you in.") + " Ask your administrator if this persists.", LevelInfo}
	case errors.As(err, &oauth) && (oauth.Code == "invalid_grant"):
		return Problem{400, "sign_in_expired", "The sign-in code was already used or has expired. Please sign in again.", LevelInfo}
	case errors.As(err, &oauth):
		return Problem{502, "token_endpoint_refused", "Entra ID refused this application's token request: " + describeOAuthError(oauth, "it gave a reason this proxy does not know.") + " The proxy's client_id, its credential (client secret or certificate) or the redirect URI need checking.", LevelWarn}
	case errors.As(err, &stepUp):
		return Problem{403, "step_up_unsatisfied", "This page requires a stronger sign-in than Entra ID gave: " + stepUp.describe() + ". Ask your administrator which sign-in this page expects.", LevelInfo}
	case errors.Is(err, ErrLoginParameter):
		return Problem{400, "bad_sign_in_parameter", "This sign-in link carries a parameter this site cannot pass on. Please sign in from the site's own link.", LevelWarn}
	case errors.Is(err, ErrStateUsed):
		return Problem{400, "sign_in_used", "This sign-in link was already used. Please sign in again.", LevelInfo}
	case errors.Is(err, ErrStateMissing):
		return Problem{400, "sign_in_state_missing", "This sign-in was not started in this browser, or it took too long. Please sign in again.", LevelInfo}
	case errors.Is(err, ErrStateExpired):
		return Problem{400, "sign_in_expired", "The sign-in took too long. Please sign in again.", LevelInfo}
	case errors.Is(err, ErrStateInvalid), errors.Is(err, ErrCallback):
		return Problem{400, "sign_in_invalid", "This sign-in response does not match the sign-in this browser started. Please sign in again.", LevelWarn}
	case errors.Is(err, jwks.ErrUnknownKey):
		return Problem{502, "signing_key_unknown", "Entra ID signed the sign-in with a key it does not publish yet. Please try again in a minute.", LevelWarn}
	case errors.Is(err, jwks.ErrTenant):
		return Problem{403, "tenant_not_allowed", "Accounts from your organization are not allowed to sign in to this application.", LevelInfo}
	case errors.Is(err, ErrUserSyncSecret):
		return Problem{403, "user_sync_misconfigured", "The application refused this sign-in because the proxy in front of it is not set up to reach its user directory. Please tell the application's administrator.", LevelWarn}
	case errors.Is(err, ErrUserRefused):
		return Problem{403, "user_refused", "This application does not accept your account: its user directory refused it. Ask the application's administrator.", LevelInfo}
	case errors.Is(err, ErrUserSyncUnavailable):
		return Problem{503, "user_directory_unavailable", "The application's user directory could not be reached. Please try again shortly.", LevelError}
	case errors.Is(err, ErrClientAssertion):
		return Problem{502, "client_assertion_failed", "This proxy could not authenticate itself to Entra ID. Please tell the application's administrator.", LevelError}
	case errors.Is(err, ErrSharedState):
		return Problem{503, "try_again", "This sign-in could not be completed just now. Please try again.", LevelError}
	case errors.Is(err, ErrIdPUnavailable):
		return Problem{503, "idp_unavailable", "Entra ID could not be reached. Please try again shortly.", LevelError}
	case errors.Is(err, ErrIdPResponse):
		return Problem{502, "idp_bad_response", "Entra ID answered something this proxy cannot use.", LevelError}
	case isTokenError(err):
		return Problem{401, "id_token_invalid", "The sign-in response failed validation. Please sign in again.", LevelWarn}
	}
	return Problem{500, "internal_error", "Something went wrong in the sign-in proxy.", LevelError}
}

func isTokenError(err error) bool {
	for _, e := range []error{jwks.ErrMalformed, jwks.ErrAlgorithm, jwks.ErrSignature, jwks.ErrExpired,
		jwks.ErrAudience, jwks.ErrIssuer, jwks.ErrNonce, jwks.ErrClaims} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
