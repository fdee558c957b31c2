package flow

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/internal/expcache"
	"github.com/entra-auth/entra-auth/session"
	"github.com/entra-auth/entra-auth/upstreamsig"
)

// Cookie limits: a chunk's value stays under browsers' 4 KB per cookie with its
// attributes; a session takes at most maxSessionChunks cookies; at most maxSignIns
// sign-ins run in parallel per browser (older ones are cleared when a new one starts).
// A request's cookies are read only up to session.MaxCookies.
const (
	maxCookieValue   = 3500
	maxSessionChunks = 8
	maxSignIns       = 4
)

// Flow makes the sign-in decisions for one plugin configuration. It is used by one
// goroutine at a time (a Wasm VM has one thread).
type Flow struct {
	cfg   *config.Config
	codec *session.Codec
	attrs session.Attributes
	rand  io.Reader
	now   func() time.Time
	// opened caches sessions already opened: opening a cookie is the largest part of a
	// signed-in request inside a Wasm VM, and a browser sends the same cookie with every
	// request. Entries are found by the sealed text's last characters (its authentication
	// tag: cheap to hash) and used only when the whole text is equal, so a hit can only
	// come from the same cookie. Expiry is still checked on every request.
	opened *expcache.Cache[string, *openedSession] // pointers: one generic shape for all caches
	// identity is the last session Authenticate returned with its identity headers, so
	// that a cache hit costs no header building either.
	identity *openedSession
	// verified caches bearer tokens already verified, by hash, until they expire.
	verified *expcache.Cache[[32]byte, *BearerIdentity]
	// obo keeps the downstream tokens got for sessions, by session id.
	obo *expcache.Cache[string, *oboToken]
	// signer signs what the filter sends upstream (upstream_signature), made at first use.
	signer *upstreamsig.Signer
	// ownedHeaders are the configured headers the filter sets besides x-auth-request-*,
	// folded (see ClientMayNotSend).
	ownedHeaders []string
}

type openedSession struct {
	sealed  string
	session *session.Session
	// headers are the session's identity headers, built once.
	headers [][2]string
}

// cacheKey is the tail of a sealed value: the end of its base64 text, where the
// Poly1305 tag is.
func cacheKey(sealed string) string { return sealed[max(0, len(sealed)-24):] }

// maxOpenedSessions bounds the cache of opened sessions (per VM).
const maxOpenedSessions = 512

// New returns a Flow. random supplies state, nonce, PKCE verifiers and cookie nonces
// (crypto/rand.Reader in production); now is the clock.
func New(cfg *config.Config, random io.Reader, now func() time.Time) (*Flow, error) {
	codec, err := session.NewCodec(cfg.CookieSecrets, random)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", config.ErrConfig, err)
	}
	return &Flow{
		cfg:      cfg,
		codec:    codec,
		attrs:    session.Attributes{Domain: cfg.CookieDomain, Secure: true, SameSite: "Lax"},
		rand:     random,
		now:      now,
		opened:   expcache.New[string, *openedSession](maxOpenedSessions),
		verified: expcache.New[[32]byte, *BearerIdentity](maxVerifiedTokens),
		obo:      expcache.New[string, *oboToken](maxOBOTokens),

		ownedHeaders: ownedHeaderNames(cfg),
	}, nil
}

// Config returns the configuration.
func (f *Flow) Config() *config.Config { return f.cfg }

// Request is what the flow needs of an incoming request.
type Request struct {
	Method    string
	Scheme    string // :scheme
	Authority string // :authority
	Path      string // :path, with the query
	// Accept and RequestedWith tell browsers (navigation) from programs.
	Accept, RequestedWith string
	Cookies               session.Jar
	// Bearer is the token of an "Authorization: Bearer" header, if any.
	Bearer string
	// RequestID is the x-request-id header's value (Envoy sets one on every request).
	RequestID string
	// cookieHeaders are the Cookie header values, for UpstreamCookie.
	cookieHeaders []string
	// authorization is the Authorization header's value; authorizations counts the
	// headers (see OneCredential).
	authorization  string
	authorizations int
}

// NewRequest builds a Request from headers as the proxy gives them (lower-case names,
// pseudo-headers included), reading every cookie header.
func NewRequest(headers [][2]string) *Request {
	r := &Request{}
	var cookies []string
	for _, h := range headers {
		switch h[0] {
		case ":method":
			r.Method = h[1]
		case ":scheme":
			r.Scheme = h[1]
		case ":authority":
			r.Authority = h[1]
		case ":path":
			r.Path = h[1]
		case "accept":
			if r.Accept != "" {
				r.Accept += ","
			}
			r.Accept += h[1]
		case "x-requested-with":
			r.RequestedWith = h[1]
		case "x-request-id":
			r.RequestID = h[1]
		case "authorization":
			r.authorization = h[1]
			r.authorizations++
		case "cookie":
			cookies = append(cookies, h[1])
		}
	}
	r.Cookies, r.cookieHeaders = session.NewJar(cookies...), cookies
	if r.authorizations == 1 {
		if scheme, token, ok := strings.Cut(r.authorization, " "); ok && strings.EqualFold(scheme, "bearer") {
			r.Bearer = strings.TrimSpace(token)
		}
	}
	return r
}

// OneCredential is ErrTwoCredentials when the request carries more than one
// Authorization header, or a bearer credential that holds more than one token: Envoy
// joins repeated Authorization headers into one value with "," (a header it keeps
// inline), and a bearer token (RFC 6750 b64token) has neither commas nor spaces. The
// filter refuses such a request rather than check one credential and let another
// through.
func (r *Request) OneCredential() error {
	switch {
	case r.authorizations > 1:
		return fmt.Errorf("%w: %d Authorization headers", ErrTwoCredentials, r.authorizations)
	case r.Bearer != "" && strings.ContainsAny(r.Bearer, ", \t"):
		return fmt.Errorf("%w: a bearer credential with a comma or a space in it", ErrTwoCredentials)
	case joinedCredentials(r.authorization):
		return fmt.Errorf("%w: one Authorization header holding two", ErrTwoCredentials)
	}
	return nil
}

// joinedCredentials reports whether an Authorization value is two credentials joined by
// a comma ("Basic x,Bearer y"): after a comma, an auth-param list (RFC 9110 section 11.4)
// goes on with name=value, never with a scheme and a space.
func joinedCredentials(value string) bool {
	_, rest, _ := strings.Cut(value, ",")
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		scheme, _, spaced := strings.Cut(strings.TrimLeft(part, " \t"), " ")
		if spaced && scheme != "" && !strings.Contains(scheme, "=") {
			return true
		}
	}
	return false
}

// HasAuthorization reports whether the request carries an Authorization header.
func (r *Request) HasAuthorization() bool { return r.authorizations > 0 }

// pathOnly is the request path without its query.
func (r *Request) pathOnly() string {
	p, _, _ := strings.Cut(r.Path, "?")
	return p
}

// Query parses the request's query.
func (r *Request) Query() url.Values {
	_, q, _ := strings.Cut(r.Path, "?")
	v, _ := url.ParseQuery(q)
	return v
}

// IsBrowser tells a browser navigation, which is redirected to sign in, from a program
// (an XHR, fetch or API client), which gets 401: a browser asks for text/html and does
// not set X-Requested-With.
func (r *Request) IsBrowser() bool {
	return strings.Contains(r.Accept, "text/html") && r.RequestedWith == ""
}

// Route is what a request is to the filter.
type Route int

const (
	// RouteProtected needs a session.
	RouteProtected Route = iota
	// RouteSkip passes without one (skip_paths).
	RouteSkip
	// RouteCallback is Entra's redirect back with a code.
	RouteCallback
	// RouteLogin starts a sign-in.
	RouteLogin
	// RouteLogout ends the session.
	RouteLogout
	// RouteMe answers the signed-in user's claims.
	RouteMe
	// RouteSignedOut is the page that says the user is signed out.
	RouteSignedOut
	// RouteBearer is an API call with a bearer access token (api_audiences is set).
	RouteBearer
)

// Route classifies a request by its path.
func (f *Flow) Route(r *Request) Route {
	p := r.pathOnly()
	switch p {
	case f.cfg.RedirectPath:
		return RouteCallback
	case f.cfg.LoginPath:
		return RouteLogin
	case f.cfg.LogoutPath:
		return RouteLogout
	case f.cfg.MePath:
		return RouteMe
	case f.cfg.SignedOutPath:
		return RouteSignedOut
	}
	for _, sp := range f.cfg.SkipPaths {
		if prefix, ok := strings.CutSuffix(sp, "*"); ok && strings.HasPrefix(p, prefix) || p == sp {
			return RouteSkip
		}
	}
	if r.Bearer != "" && len(f.cfg.APIAudiences) > 0 {
		return RouteBearer
	}
	return RouteProtected
}

// SafeReturnPath returns rd when it is a path on this site, and "/" otherwise, so that a
// sign-in can never send a browser elsewhere: no scheme or host, no "//host", no
// backslash or control character (browsers turn "/\host" and "/\t/host" into "//host").
func SafeReturnPath(rd string) string {
	if len(rd) == 0 || len(rd) > 2048 || rd[0] != '/' || strings.HasPrefix(rd, "//") {
		return "/"
	}
	for i := 0; i < len(rd); i++ {
		if c := rd[i]; c == '\\' || c < 0x20 || c == 0x7f {
			return "/"
		}
	}
	u, err := url.Parse(rd)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return "/"
	}
	return rd
}

// Response is a reply for the filter to send: a status, headers and a body.
type Response struct {
	Status  int
	Headers [][2]string
	Body    []byte
}

func redirect(location string, setCookies []string) *Response {
	h := [][2]string{{"location", location}, {"cache-control", "no-store"}}
	for _, c := range setCookies {
		h = append(h, [2]string{"set-cookie", c})
	}
	return &Response{Status: 302, Headers: h}
}

// randomToken returns 32 random bytes, base64url: state, nonce and PKCE verifier
// (RFC 7636 section 4.1 asks for 43 to 128 characters of high entropy).
func (f *Flow) randomToken() (string, error) {
	var b [32]byte
	if _, err := io.ReadFull(f.rand, b[:]); err != nil {
		return "", fmt.Errorf("flow: read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// codeChallenge is BASE64URL(SHA256(verifier)), RFC 7636 section 4.2, method S256.
func codeChallenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// redirectURI is the configured callback URL, or the request's scheme and host with
// the callback path.
func (f *Flow) redirectURI(r *Request) string {
	if f.cfg.RedirectURI != "" {
		return f.cfg.RedirectURI
	}
	scheme := r.Scheme
	if scheme != "http" {
		scheme = "https"
	}
	return scheme + "://" + r.Authority + f.cfg.RedirectPath
}

// signInCookieName names the cookie of one sign-in after its state, so that sign-ins in
// several tabs do not overwrite each other.
func (f *Flow) signInCookieName(state string) string {
	return f.cfg.CookieName + "-signin-" + state[:min(len(state), 16)]
}

func (f *Flow) signInCookies(jar session.Jar) []string {
	return jar.Names(f.cfg.CookieName + "-signin-")
}

// StartSignIn answers with the redirect to the authorize endpoint (authorization code
// flow, PKCE S256, response_mode=query) and the sign-in cookie that remembers the state,
// nonce, verifier and returnTo (made safe with SafeReturnPath).
func (f *Flow) StartSignIn(r *Request, d *Discovery, returnTo string) (*Response, error) {
	return f.startSignIn(r, d, returnTo, signInOptions{})
}

// signInOptions are what a sign-in asks of Entra beyond the user: a step-up's
// requirement, and the hints /.auth/login passes on.
type signInOptions struct {
	stepUp                        *StepUp
	claims                        string // an application's claims challenge
	loginHint, domainHint, prompt string
}

// StartLogin answers /.auth/login: a sign-in that returns to rd (made safe), passing on
// login_hint (the account to preselect), domain_hint (the organization to go to) and
// prompt=select_account (to choose another account than Entra's session), each checked:
// ErrLoginParameter names one that is not acceptable.
func (f *Flow) StartLogin(r *Request, d *Discovery) (*Response, error) {
	q := r.Query()
	opts := signInOptions{loginHint: q.Get("login_hint"), domainHint: q.Get("domain_hint"), prompt: q.Get("prompt")}
	for name, values := range q {
		if len(values) > 1 && (name == "rd" || name == "login_hint" || name == "domain_hint" || name == "prompt") {
			return nil, fmt.Errorf("%w: %s is given %d times", ErrLoginParameter, name, len(values))
		}
	}
	switch {
	case len(opts.loginHint) > 256 || strings.ContainsFunc(opts.loginHint, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return nil, fmt.Errorf("%w: login_hint must be an account name such as ada@contoso.com", ErrLoginParameter)
	case opts.domainHint != "" && !isDomainHint(opts.domainHint):
		return nil, fmt.Errorf("%w: domain_hint must be a domain such as contoso.com, or organizations or consumers", ErrLoginParameter)
	case opts.prompt != "" && opts.prompt != "select_account":
		return nil, fmt.Errorf("%w: prompt may only be select_account", ErrLoginParameter)
	}
	return f.startSignIn(r, d, q.Get("rd"), opts)
}

// isDomainHint reports whether s is a domain_hint Entra takes: a DNS name, or
// organizations or consumers.
func isDomainHint(s string) bool {
	return s == "organizations" || s == "consumers" || config.IsDomain(s)
}

func (f *Flow) startSignIn(r *Request, d *Discovery, returnTo string, opts signInOptions) (*Response, error) {
	su := opts.stepUp
	state, err := f.randomToken()
	if err != nil {
		return nil, err
	}
	nonce, err := f.randomToken()
	if err != nil {
		return nil, err
	}
	verifier, err := f.randomToken()
	if err != nil {
		return nil, err
	}
	si := &session.SignIn{
		State: state, Nonce: nonce, CodeVerifier: verifier,
		ReturnTo:    SafeReturnPath(returnTo),
		RedirectURI: f.redirectURI(r),
		Expires:     f.now().Add(f.cfg.SignInTimeout),
	}
	if su != nil {
		si.ACRs, si.MaxAge = su.Contexts, su.MaxAge
	}
	si.Challenged = opts.claims != ""
	name := f.signInCookieName(state)
	sealed, err := f.codec.Seal(name, si.Marshal())
	if err != nil {
		return nil, err
	}
	var cookies []string
	if old := f.signInCookies(r.Cookies); len(old) >= maxSignIns {
		for _, n := range old {
			cookies = append(cookies, f.attrs.Clear(n))
		}
	}
	cookies = append(cookies, f.attrs.Set(session.Cookie{Name: name, Value: sealed}, int(f.cfg.SignInTimeout/time.Second)))

	q := url.Values{}
	q.Set("client_id", f.cfg.ClientID)
	q.Set("response_type", "code")
	q.Set("redirect_uri", si.RedirectURI)
	q.Set("response_mode", "query")
	q.Set("scope", strings.Join(f.cfg.Scopes, " "))
	q.Set("state", state)
	q.Set("nonce", nonce)
	q.Set("code_challenge", codeChallenge(verifier))
	q.Set("code_challenge_method", "S256")
	if su != nil {
		stepUpParams(q, su)
	}
	if opts.claims != "" {
		q.Set("claims", opts.claims)
	}
	for name, value := range map[string]string{"login_hint": opts.loginHint, "domain_hint": opts.domainHint, "prompt": opts.prompt} {
		if value != "" && !q.Has(name) {
			q.Set(name, value)
		}
	}
	sep := "?"
	if strings.Contains(d.AuthorizationEndpoint, "?") {
		sep = "&"
	}
	return redirect(d.AuthorizationEndpoint+sep+q.Encode(), cookies), nil
}

// maxCallbackQuery bounds the callback's query: codes are long, but not that long.
const maxCallbackQuery = 16 << 10

// callbackQuery is what Entra sends back to the callback.
type callbackQuery struct {
	Code, State             string
	Error, ErrorDescription string
}

// parseCallbackQuery reads the callback's query, refusing oversized or repeated
// parameters (a repeated state or code is either a bug or an attack).
func parseCallbackQuery(rawQuery string) (*callbackQuery, error) {
	if len(rawQuery) > maxCallbackQuery {
		return nil, fmt.Errorf("%w: query of %d bytes", ErrCallback, len(rawQuery))
	}
	v, err := url.ParseQuery(rawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCallback, err)
	}
	for _, k := range []string{"code", "state", "error", "error_description"} {
		if len(v[k]) > 1 {
			return nil, fmt.Errorf("%w: %s given %d times", ErrCallback, k, len(v[k]))
		}
	}
	return &callbackQuery{Code: v.Get("code"), State: v.Get("state"), Error: v.Get("error"), ErrorDescription: v.Get("error_description")}, nil
}

// Callback is a callback whose state checked out: the code to exchange and the sign-in
// it completes.
type Callback struct {
	Code   string
	SignIn *session.SignIn
	// cookie is the sign-in cookie's name, cleared when the sign-in ends.
	cookie string
}

// clearSignIn returns the Set-Cookie value that ends this sign-in's cookie.
func (f *Flow) clearSignIn(cb *Callback) string { return f.attrs.Clear(cb.cookie) }

// BeginCallback checks a callback: Entra's error if it sent one, then the state against
// the sign-in cookie it names (present, sealed by us for that name, same state, not
// expired), then the code.
func (f *Flow) BeginCallback(r *Request) (*Callback, error) {
	_, raw, _ := strings.Cut(r.Path, "?")
	q, err := parseCallbackQuery(raw)
	if err != nil {
		return nil, err
	}
	if q.Error != "" {
		return nil, &OAuthError{Kind: ErrSignInRefused, Code: q.Error, Description: q.ErrorDescription}
	}
	switch {
	case q.State == "":
		return nil, fmt.Errorf("%w: no state in the callback", ErrStateInvalid)
	case len(q.State) < 16:
		return nil, fmt.Errorf("%w: the callback's state is not one this proxy issues (%d characters)", ErrStateInvalid, len(q.State))
	}
	name := f.signInCookieName(q.State)
	sealed, ok := r.Cookies.Get(name)
	if !ok {
		return nil, ErrStateMissing
	}
	plain, err := f.codec.Open(name, sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStateInvalid, err)
	}
	si, err := session.UnmarshalSignIn(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStateInvalid, err)
	}
	if !constantTimeEqual(si.State, q.State) {
		return nil, ErrStateInvalid
	}
	if !f.now().Before(si.Expires) {
		return nil, ErrStateExpired
	}
	if q.Code == "" {
		return nil, fmt.Errorf("%w: no code in the callback", ErrCallback)
	}
	return &Callback{Code: q.Code, SignIn: si, cookie: name}, nil
}

// CallbackState is the state a callback request carries ("" when none or unreadable).
func CallbackState(r *Request) string {
	_, raw, _ := strings.Cut(r.Path, "?")
	q, err := parseCallbackQuery(raw)
	if err != nil {
		return ""
	}
	return q.State
}

// AlreadySignedIn answers, for a browser that is signed in, a callback it cannot complete
// because it was completed before (a reload, or the back button) or because its sign-in
// cookie is gone: nothing is exchanged, and the browser goes on to the page it was
// signing in for when the sign-in cookie says (cb; its cookie is cleared), else the root.
func (f *Flow) AlreadySignedIn(cb *Callback) *Response {
	if cb == nil {
		return redirect("/", nil)
	}
	return redirect(SafeReturnPath(cb.SignIn.ReturnTo), []string{f.clearSignIn(cb)})
}

func constantTimeEqual(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		v |= a[i] ^ b[i]
	}
	return v == 0
}

// TokenRequest is the authorization_code grant for a callback, with the PKCE verifier and
// the client secret (in the body for client_secret_post, in Basic for client_secret_basic).
func (f *Flow) TokenRequest(d *Discovery, cb *Callback) (*HTTPRequest, error) {
	form := url.Values{}
	form.Set("grant_type", "authorization_code")
	form.Set("code", cb.Code)
	form.Set("redirect_uri", cb.SignIn.RedirectURI)
	form.Set("code_verifier", cb.SignIn.CodeVerifier)
	form.Set("client_id", f.cfg.ClientID)
	return f.tokenRequest(d, form)
}

// tokenRequest is a POST of form to the token endpoint, with the client's credential. A
// client assertion that cannot be signed means no request.
func (f *Flow) tokenRequest(d *Discovery, form url.Values) (*HTTPRequest, error) {
	r, err := requestTo("POST", d.TokenEndpoint)
	if err != nil {
		return nil, err
	}
	r.Headers = append(r.Headers, [2]string{"content-type", "application/x-www-form-urlencoded"})
	switch {
	case f.cfg.ClientAssertion != nil:
		if err := f.setClientAssertion(form, d.TokenEndpoint); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrClientAssertion, err)
		}
	case f.cfg.ClientAuth == "client_secret_basic":
		// RFC 6749 section 2.3.1: form-urlencode both before Basic.
		creds := url.QueryEscape(f.cfg.ClientID) + ":" + url.QueryEscape(f.cfg.ClientSecret)
		r.Headers = append(r.Headers, [2]string{"authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(creds))})
	default:
		form.Set("client_secret", f.cfg.ClientSecret)
	}
	r.Body = []byte(form.Encode())
	r.Headers = append(r.Headers, [2]string{"content-length", strconv.Itoa(len(r.Body))})
	return r, nil
}

// Tokens is a successful token answer.
type Tokens struct {
	IDToken, AccessToken, RefreshToken string
	ExpiresIn                          time.Duration
}

// ParseTokenResponse reads the token endpoint's answer: the tokens, or an *OAuthError
// for an RFC 6749 error, or ErrIdPUnavailable when there was no usable answer.
func ParseTokenResponse(status int, body []byte) (*Tokens, error) {
	switch {
	case status == 0 || status >= 500:
		return nil, checkAnswer("token endpoint", status, body)
	case len(body) > maxIdPBody:
		return nil, fmt.Errorf("%w: token answer over %d bytes", ErrIdPResponse, maxIdPBody)
	}
	doc := gjson.ParseBytes(body)
	if status != 200 {
		if code := doc.Get("error").String(); code != "" {
			e := &OAuthError{Kind: ErrTokenEndpoint, Status: status, Code: code, Description: firstLine(doc.Get("error_description").String()),
				TraceID: doc.Get("trace_id").String(), CorrelationID: doc.Get("correlation_id").String()}
			doc.Get("error_codes").ForEach(func(_, c gjson.Result) bool {
				e.EntraCodes = append(e.EntraCodes, c.Int())
				return true
			})
			return nil, e
		}
		return nil, fmt.Errorf("%w: token endpoint answered %d: %s", ErrIdPResponse, status, snippet(body))
	}
	t := &Tokens{
		IDToken:      doc.Get("id_token").String(),
		AccessToken:  doc.Get("access_token").String(),
		RefreshToken: doc.Get("refresh_token").String(),
		ExpiresIn:    time.Duration(doc.Get("expires_in").Int()) * time.Second,
	}
	if t.IDToken == "" {
		return nil, fmt.Errorf("%w: the token answer has no id_token (is openid among the scopes?)", ErrIdPResponse)
	}
	return t, nil
}

// ParseRefreshResponse reads the answer to a refresh_token grant, as ParseTokenResponse,
// except that the id_token may be missing (the access token is what a refresh is for).
func ParseRefreshResponse(status int, body []byte) (*Tokens, error) {
	t, err := ParseTokenResponse(status, body)
	if errors.Is(err, ErrIdPResponse) && status == 200 && len(body) <= maxIdPBody {
		doc := gjson.ParseBytes(body)
		t = &Tokens{
			AccessToken:  doc.Get("access_token").String(),
			RefreshToken: doc.Get("refresh_token").String(),
			ExpiresIn:    time.Duration(doc.Get("expires_in").Int()) * time.Second,
		}
		err = nil
	}
	if err == nil && t.AccessToken == "" {
		return nil, fmt.Errorf("%w: the refresh answer has no access_token", ErrIdPResponse)
	}
	return t, err
}

// firstLine keeps Entra's error_description to its first line (the rest is trace and
// correlation ids, given separately).
func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	line, _, _ = strings.Cut(line, "\n")
	return line
}
