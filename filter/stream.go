package filter

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/flow"
	"github.com/entra-auth/entra-auth/internal/sharedstate"
	"github.com/entra-auth/entra-auth/jwks"
	"github.com/entra-auth/entra-auth/session"
)

// stream is one HTTP request through the filter.
type stream struct {
	types.DefaultHttpContext
	plugin    *plugin
	id        uint32
	req       *flow.Request
	requestID string
	// passed is set once the request may go upstream. Until then every body and trailer
	// callback holds the request too: a body answered Continue would release headers the
	// filter paused.
	passed bool
	// paused is set when the request headers are answered Pause, so that passing the
	// request later must resume it; inHeaders while OnHttpRequestHeaders runs, when
	// passing is answering Continue instead.
	paused, inHeaders bool
	// setCookies go on the response: a session renewed while the request waited.
	setCookies []string
	// session is the one the request was let through with (nil for none, or a bearer
	// token): an application's claims challenge is judged against it.
	session *session.Session
}

func (s *stream) OnHttpRequestHeaders(int, bool) (action types.Action) {
	s.inHeaders = true
	defer func() {
		s.inHeaders = false
		if v := recover(); v != nil {
			action = s.panicked("OnHttpRequestHeaders", v)
		}
	}()
	headers, err := proxywasm.GetHttpRequestHeaders()
	if err != nil {
		// Without the headers the filter cannot guarantee that no forged identity
		// reaches the upstream: fail closed.
		proxywasm.LogErrorf("entra-auth: %v: %v", errNoHeaders, err)
		return s.respond(&flow.Response{Status: 500, Body: []byte("entra-auth: cannot read the request headers\n")})
	}
	f := s.plugin.flow
	// The request and its id first: whatever fails next is answered with them.
	s.req = flow.NewRequest(headers)
	s.requestID = flow.SafeRequestID(s.req.RequestID)
	if s.requestID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails: Go crashes the program instead
		s.requestID = hex.EncodeToString(b[:])
	}
	armFaults(headers)
	injectFault("request-headers")
	// The path is judged as the upstream will read it, and the upstream gets the path
	// that was judged.
	normalized, err := flow.NormalizePath(s.req.Path)
	if err != nil { // a path trick, or a client no browser is: worth a warning
		proxywasm.LogWarnf("entra-auth: request %s: refused: %v", s.requestID, err)
		return s.respond(flow.ErrorResponse(s.req, 400, "bad_path",
			"This address cannot be served: its path holds characters this site does not accept.", s.requestID))
	}
	if normalized != s.req.Path {
		if err := proxywasm.ReplaceHttpRequestHeader(":path", normalized); err != nil {
			proxywasm.LogErrorf("entra-auth: request %s: cannot set the normalized path: %v", s.requestID, err)
			return s.respond(&flow.Response{Status: 500, Body: []byte("entra-auth: cannot set the normalized path\n")})
		}
		s.req.Path = normalized
	}
	// Client-sent identity headers go on every request, whatever happens next, in every
	// spelling an application server may take for one of ours.
	var removed []string
	for _, h := range headers {
		if f.ClientMayNotSend(h[0]) && !slices.Contains(removed, h[0]) {
			removed = append(removed, h[0])
			if err := proxywasm.RemoveHttpRequestHeader(h[0]); err != nil {
				proxywasm.LogErrorf("entra-auth: cannot remove the client-sent header %s: %v", h[0], err)
				return s.respond(&flow.Response{Status: 500, Body: []byte("entra-auth: cannot remove a client-sent identity header\n")})
			}
		}
	}
	// One credential per request: the filter never checks one and lets another through.
	if err := s.req.OneCredential(); err != nil {
		proxywasm.LogWarnf("entra-auth: request %s: refused: %v", s.requestID, err)
		return s.respond(flow.ErrorResponse(s.req, 400, "one_credential",
			"This request carries more than one credential. Send one Authorization header with one token.", s.requestID))
	}
	// The filter's own cookies (the session holds a refresh token) never go upstream.
	if cookie, changed := f.UpstreamCookie(s.req); changed {
		var err error
		if cookie == "" {
			err = proxywasm.RemoveHttpRequestHeader("cookie")
		} else {
			err = proxywasm.ReplaceHttpRequestHeader("cookie", cookie) // every cookie header, then one
		}
		if err != nil {
			proxywasm.LogErrorf("entra-auth: request %s: cannot take the filter's cookies out of the request: %v", s.requestID, err)
			return s.respond(&flow.Response{Status: 500, Body: []byte("entra-auth: cannot rewrite the request's cookies\n")})
		}
	}
	switch f.Route(s.req) {
	case flow.RouteSkip:
		return s.letThrough(nil) // no identity; signed when upstream_signature says so
	case flow.RouteCallback:
		return s.callback()
	case flow.RouteLogin:
		return s.sendToSignIn(func(d *flow.Discovery) (*flow.Response, error) { return f.StartLogin(s.req, d) })
	case flow.RouteLogout:
		return s.logout()
	case flow.RouteBearer:
		return s.bearer(true)
	case flow.RouteSignedOut:
		return s.respond(f.SignedOut(s.req))
	case flow.RouteMe:
		sess, err := f.Authenticate(s.req)
		if err != nil {
			return s.respond(flow.JSONError(401, "sign_in_required", "Not signed in.", s.requestID))
		}
		return s.respond(flow.Me(sess))
	}
	// A request let through on the strength of its session must not carry a credential
	// the filter did not check (forward_access_token, if it names authorization, sets
	// its own).
	if s.req.HasAuthorization() {
		if err := proxywasm.RemoveHttpRequestHeader("authorization"); err != nil {
			proxywasm.LogErrorf("entra-auth: request %s: cannot remove the client's authorization header: %v", s.requestID, err)
			return s.respond(&flow.Response{Status: 500, Body: []byte("entra-auth: cannot remove an unchecked credential\n")})
		}
	}
	sess, err := f.Authenticate(s.req)
	if err == nil {
		if newer := s.plugin.renewed.newer(sess, s.plugin.now); newer != nil {
			// Another request renewed this session; this browser has not seen it yet.
			sess = newer
			if s.setCookies, err = f.SessionCookies(s.req, sess); err != nil {
				proxywasm.LogErrorf("entra-auth: request %s: %v", s.requestID, err)
			}
		}
		if f.RefreshDue(sess) {
			return s.refresh(sess)
		}
		return s.signedIn(sess)
	}
	if errors.Is(err, flow.ErrTwoSessions) {
		// Signing in again would not help: the other cookie stays, with attributes this
		// filter cannot clear (a sibling site's Domain, say).
		proxywasm.LogWarnf("entra-auth: request %s: refused: %v (a site under cookie_domain that shares the cookie secret may have set one)", s.requestID, err)
		return s.respond(flow.ErrorResponse(s.req, 400, "two_sessions",
			"This browser sent two different sessions for this site. Clear this site's cookies, then sign in again.", s.requestID))
	}
	if !errors.Is(err, flow.ErrNoSession) {
		proxywasm.LogDebugf("entra-auth: request %s: no valid session: %v", s.requestID, err)
	}
	if !s.req.IsBrowser() {
		return s.respond(f.SignInRequired(s.req, s.requestID))
	}
	return s.startSignIn(flow.SafeReturnPath(s.req.Path))
}

func (s *stream) OnHttpRequestBody(int, bool) (action types.Action) {
	defer func() {
		if v := recover(); v != nil {
			action = s.panicked("OnHttpRequestBody", v)
		}
	}()
	if s.passed {
		return types.ActionContinue
	}
	return types.ActionPause
}

func (s *stream) OnHttpRequestTrailers(int) (action types.Action) {
	defer func() {
		if v := recover(); v != nil {
			action = s.panicked("OnHttpRequestTrailers", v)
		}
	}()
	if s.passed {
		return types.ActionContinue
	}
	return types.ActionPause
}

func (s *stream) pass() types.Action {
	s.passed = true
	return types.ActionContinue
}

// signedIn lets a signed-in request through with the identity headers, now or, when the
// request was paused (for a refresh), by resuming it.
func (s *stream) signedIn(sess *session.Session) types.Action {
	su, ok := s.authorized(sess, nil, false)
	if !ok {
		return types.ActionPause
	}
	if su != nil {
		return s.stepUp(su)
	}
	f := s.plugin.flow
	s.session = sess
	headers := f.Identity(sess)
	if h, ok := f.ForwardedAccessToken(sess); ok {
		headers = append(headers, h)
	}
	if f.OBONeeded() {
		h, ok := f.CachedOBO(sess)
		if !ok {
			return s.onBehalfOf(sess, headers)
		}
		headers = append(headers, h)
	}
	return s.letThrough(headers)
}

// stepUp answers a request whose sign-in lacks what its path asks (an authentication
// context, a recent sign-in): a browser signs in again, asking Entra for it, and comes
// back to the page; a program gets a 401 challenge.
func (s *stream) stepUp(su *flow.StepUp) types.Action {
	f := s.plugin.flow
	proxywasm.LogInfof("entra-auth: request %s: step-up: the sign-in lacks what rule %q asks", s.requestID, su.Rule)
	if !s.req.IsBrowser() {
		return s.respond(f.StepUpChallenge(s.req, su, s.requestID))
	}
	return s.sendToSignIn(func(d *flow.Discovery) (*flow.Response, error) {
		return f.StartStepUp(s.req, d, flow.SafeReturnPath(s.req.Path), su)
	})
}

// authorized applies the access rules to user (and a bearer token's scopes), answering
// 403 (naming what was required) when it does not meet them; when it does, it returns
// what the path asks of how the user signed in and the sign-in lacks, if anything.
func (s *stream) authorized(user *session.Session, scopes []string, bearer bool) (*flow.StepUp, bool) {
	d, su := s.plugin.flow.Authorize(s.req, user, scopes, bearer)
	if d == nil {
		return su, true
	}
	proxywasm.LogInfof("entra-auth: request %s: forbidden: lacks one of the %s %v (rule %q)", s.requestID, d.Kind, d.Want, d.Rule)
	s.plugin.metrics.forbidden.Increment(1)
	s.respond(s.plugin.flow.Forbidden(s.req, d, bearer, s.requestID))
	return nil, false
}

// letThrough sets the identity headers, with their signature when upstream_signature
// is configured, and lets the request go upstream. The x-auth-request-* headers were
// removed from the request already and are added; any other (a forwarded access token
// in authorization, say) replaces what the client sent.
func (s *stream) letThrough(identity [][2]string) types.Action {
	identity = s.plugin.flow.Signed(s.req, identity)
	// One call per header: cheaper inside the VM than serializing every header anew.
	for _, h := range identity {
		set := proxywasm.AddHttpRequestHeader
		if !flow.IsIdentityHeader(h[0]) {
			set = proxywasm.ReplaceHttpRequestHeader
		}
		if err := set(h[0], h[1]); err != nil {
			proxywasm.LogErrorf("entra-auth: request %s: cannot set %s: %v", s.requestID, h[0], err)
			return s.respond(&flow.Response{Status: 500, Body: []byte("entra-auth: cannot set the identity headers\n")})
		}
	}
	if s.paused && !s.inHeaders {
		s.passed = true
		if err := proxywasm.ResumeHttpRequest(); err != nil {
			proxywasm.LogErrorf("entra-auth: request %s: cannot resume the request: %v", s.requestID, err)
		}
		return types.ActionPause // ignored: the request was resumed
	}
	return s.pass()
}

// OnHttpResponseHeaders stores a session renewed while the request waited.
func (s *stream) OnHttpResponseHeaders(int, bool) (action types.Action) {
	defer func() {
		if v := recover(); v != nil {
			action = s.panicked("OnHttpResponseHeaders", v)
		}
	}()
	injectFault("response-headers")
	if s.followsClaimsChallenge() {
		return types.ActionPause
	}
	for _, c := range s.setCookies {
		if err := proxywasm.AddHttpResponseHeader("set-cookie", c); err != nil {
			proxywasm.LogErrorf("entra-auth: request %s: cannot set the renewed session cookie: %v", s.requestID, err)
		}
	}
	return types.ActionContinue
}

// followsClaimsChallenge turns the application's claims challenge to a browser's page
// into a sign-in asking Entra for those claims (follow_claims_challenges), replacing the
// 401 with the redirect, and reports whether it did. A challenge whose claims cannot be
// passed on, or a second one for the page within the window, reaches the browser as the
// application sent it.
func (s *stream) followsClaimsChallenge() bool {
	f := s.plugin.flow
	if !f.Config().FollowClaimsChallenges || s.session == nil || s.plugin.idp.current == nil {
		return false
	}
	if status, err := proxywasm.GetHttpResponseHeader(":status"); err != nil || status != "401" {
		return false
	}
	headers, err := proxywasm.GetHttpResponseHeaders()
	if err != nil {
		return false
	}
	var challenges []string
	for _, h := range headers {
		if strings.EqualFold(h[0], "www-authenticate") {
			challenges = append(challenges, h[1])
		}
	}
	claims, err := flow.ClaimsChallenge(401, challenges)
	switch {
	case err != nil:
		proxywasm.LogWarnf("entra-auth: request %s: not following the application's claims challenge: %v", s.requestID, err)
		return false
	case claims == "":
		return false
	case !f.FollowsClaimsChallenge(s.req, s.session):
		proxywasm.LogInfof("entra-auth: request %s: the application asked for claims again for this page within minutes; passing its 401 on", s.requestID)
		return false
	}
	resp, err := f.StartClaimsChallenge(s.req, s.plugin.idp.current.disc, claims)
	if err != nil {
		proxywasm.LogErrorf("entra-auth: request %s: cannot follow the application's claims challenge: %v", s.requestID, err)
		return false
	}
	proxywasm.LogInfof("entra-auth: request %s: the application asked for a stronger sign-in; signing in again with its claims request", s.requestID)
	for _, c := range s.setCookies { // a session renewed on the way keeps its new tokens
		resp.Headers = append(resp.Headers, [2]string{"set-cookie", c})
	}
	s.plugin.metrics.signInsStarted.Increment(1)
	s.respond(resp)
	return true
}

// respond sends a local reply; the stream stays paused.
func (s *stream) respond(r *flow.Response) types.Action {
	if err := proxywasm.SendHttpResponse(uint32(r.Status), r.Headers, r.Body, -1); err != nil {
		proxywasm.LogErrorf("entra-auth: request %s: cannot send a %d reply: %v", s.requestID, r.Status, err)
	}
	return types.ActionPause
}

// fail answers an error of a sign-in step with a page a person can act on, and logs it
// with the request id. Error texts carry codes, key ids and claims names, never tokens.
func (s *stream) fail(step string, err error) {
	p := s.plugin.flow.Explain(err)
	switch p.Level {
	case flow.LevelError:
		proxywasm.LogErrorf("entra-auth: request %s: %s failed: %v", s.requestID, step, err)
	case flow.LevelWarn:
		proxywasm.LogWarnf("entra-auth: request %s: %s failed: %v", s.requestID, step, err)
	default:
		proxywasm.LogInfof("entra-auth: request %s: %s failed: %v", s.requestID, step, err)
	}
	s.plugin.metrics.signInsFailed.Increment(1)
	s.respond(flow.ErrorResponse(s.req, p.Status, p.Code, p.Message, s.requestID))
}

// resume makes this stream the one host calls act on, inside a callback that belongs to
// another context (a tick or a dispatched call). It reports false when the stream is gone.
func (s *stream) resume() bool {
	if proxywasm.SetEffectiveContext(s.id) != nil {
		return false
	}
	if inRoot {
		resumed = s
		injectFault("resumed")
	}
	return true
}

// afterMetadata runs fn with the provider's metadata, now or once it is fetched.
func (s *stream) afterMetadata(step string, fn func(*metadata)) types.Action {
	s.plugin.idp.await(func(md *metadata, err error) {
		if !s.resume() {
			return
		}
		if err != nil {
			s.fail(step, err)
			return
		}
		fn(md)
	})
	return types.ActionPause
}

func (s *stream) startSignIn(returnTo string) types.Action {
	return s.sendToSignIn(func(d *flow.Discovery) (*flow.Response, error) { return s.plugin.flow.StartSignIn(s.req, d, returnTo) })
}

// sendToSignIn answers with the sign-in start makes (the redirect to Entra and its
// cookie), once the provider's metadata is there.
func (s *stream) sendToSignIn(start func(*flow.Discovery) (*flow.Response, error)) types.Action {
	return s.afterMetadata("sign-in", func(md *metadata) {
		resp, err := start(md.disc)
		if err != nil {
			s.fail("sign-in", err)
			return
		}
		s.plugin.metrics.signInsStarted.Increment(1)
		s.respond(resp)
	})
}

func (s *stream) logout() types.Action {
	f := s.plugin.flow
	sess, _ := f.Authenticate(s.req) // for logout_hint; none is fine
	var disc *flow.Discovery
	if md := s.plugin.idp.current; md != nil {
		disc = md.disc
	}
	// Never wait for the provider to sign out: without its metadata the cookies are
	// cleared all the same and the browser goes to the post-logout page.
	return s.respond(f.Logout(s.req, disc, sess))
}

// callback completes a sign-in: state, code exchange, ID token, replay check, session.
func (s *stream) callback() types.Action {
	f := s.plugin.flow
	cb, err := f.BeginCallback(s.req)
	if err == nil {
		// Single use: a replayed callback stops here, before its code is exchanged again;
		// and so does one whose use cannot be recorded (fail closed).
		err = s.plugin.markStateUsed(cb, s.plugin.now())
	}
	if errors.Is(err, flow.ErrStateUsed) || errors.Is(err, flow.ErrStateMissing) {
		// Mostly a reload or a second visit of a completed sign-in: a signed-in browser
		// goes on (nothing is exchanged); a signed-out one learns the link was used, when
		// this process recorded it so.
		if _, aerr := f.Authenticate(s.req); aerr == nil {
			proxywasm.LogInfof("entra-auth: request %s: the callback of a sign-in already completed (%v); signed in, going on", s.requestID, err)
			return s.respond(f.AlreadySignedIn(cb))
		}
		if errors.Is(err, flow.ErrStateMissing) && s.plugin.stateWasUsed(flow.CallbackState(s.req)) {
			err = fmt.Errorf("%w: its sign-in cookie is gone", flow.ErrStateUsed)
		}
	}
	if err != nil {
		s.fail("callback", err)
		return types.ActionPause
	}
	return s.afterMetadata("callback", func(md *metadata) {
		req, err := f.TokenRequest(md.disc, cb)
		if err != nil {
			s.fail("token exchange", err)
			return
		}
		err = s.plugin.idp.call(req, func(status int, body []byte) {
			if !s.resume() {
				return
			}
			tokens, err := flow.ParseTokenResponse(status, body)
			if err != nil {
				s.fail("token exchange", err)
				return
			}
			s.verify(cb, tokens, md, true)
		})
		if err != nil {
			s.fail("token exchange", err)
		}
	})
}

// verify checks the ID token and completes the sign-in; an unknown kid gets one JWKS
// refresh (within the rate limit) and one more try.
func (s *stream) verify(cb *flow.Callback, tokens *flow.Tokens, md *metadata, mayRefresh bool) {
	claims, err := md.verifier.Verify(tokens.IDToken, md.keys, cb.SignIn.Nonce)
	if errors.Is(err, jwks.ErrUnknownKey) && mayRefresh {
		s.plugin.idp.refreshKeysAfter(md.fetchedAt, func(newer *metadata, err error) {
			if !s.resume() {
				return
			}
			if err != nil {
				s.fail("ID token validation", err)
				return
			}
			s.verify(cb, tokens, newer, false)
		})
		return
	}
	if err != nil {
		s.fail("ID token validation", err)
		return
	}
	if flow.GroupsOverage(claims) {
		// Too many groups for the token: ask Microsoft Graph, and sign in only with them.
		s.plugin.callGraphGroups(tokens.AccessToken, s.requestID, func(groups []string, err error) {
			if !s.resume() {
				return
			}
			if err != nil {
				s.fail("group memberships", err)
				return
			}
			s.signIn(cb, claims, tokens, groups)
		})
		return
	}
	s.signIn(cb, claims, tokens, nil)
}

// signIn makes the session for verified claims (with the groups read from Graph, when
// the token left them out), syncs the user, and completes the sign-in.
func (s *stream) signIn(cb *flow.Callback, claims *jwks.Claims, tokens *flow.Tokens, graphGroups []string) {
	f := s.plugin.flow
	sess, err := f.NewSession(claims, tokens, cb.SignIn.Nonce)
	if err != nil {
		s.fail("session", err)
		return
	}
	if graphGroups != nil {
		sess.Groups = graphGroups
	}
	// A step-up sign-in must have brought what it asked for.
	if err := f.CheckStepUp(cb, sess); err != nil {
		s.fail("step-up", err)
		return
	}
	f.ChallengeRound(cb, sess)
	if f.Config().UserSync == nil {
		s.complete(cb, sess)
		return
	}
	user := f.SyncUserWithGroups(claims, graphGroups)
	s.syncUser(user, func(userID string, err error) {
		switch {
		case err == nil:
			sess.UserID, sess.SyncFingerprint = userID, user.Fingerprint()
			s.complete(cb, sess)
		case errors.Is(err, flow.ErrUserSyncUnavailable) && f.Config().UserSync.AllowOnFailure:
			s.plugin.metrics.userSyncFailures.Increment(1)
			proxywasm.LogWarnf("entra-auth: request %s: user sync failed, signing in without a user id (on_failure: allow): %v", s.requestID, err)
			s.complete(cb, sess)
		default:
			s.plugin.metrics.userSyncFailures.Increment(1)
			s.fail("user sync", err)
		}
	})
}

// callGraphGroups reads the user's group memberships from Microsoft Graph with the
// user's access token, through graph_cluster, and calls done with them or why not.
func (p *plugin) callGraphGroups(accessToken, requestID string, done func([]string, error)) {
	f := p.flow
	req, err := f.GraphGroupsRequest(accessToken)
	if err != nil {
		done(nil, err)
		return
	}
	err = dispatch(f.Config().GraphCluster, f.Config().IDPTimeout, req, func(status int, body []byte) {
		done(flow.ParseGraphGroups(status, body))
	})
	if err != nil {
		proxywasm.LogErrorf("entra-auth: request %s: %v (graph_cluster)", requestID, err)
		done(nil, fmt.Errorf("%w: %v", flow.ErrGroupsUnavailable, err))
	}
}

// syncUser sends the user to the application's user-sync endpoint while the stream
// waits, and calls done in the stream with the user id it answered, or why not.
func (s *stream) syncUser(u *flow.SyncUser, done func(userID string, err error)) {
	s.plugin.callUserSync(u, s.requestID, func(userID string, err error) {
		if s.resume() {
			done(userID, err)
		}
	})
}

// callUserSync sends the user to the application's user-sync endpoint, through the
// current context, and calls done with the user id it answered, or why not. A connection
// failure or a 502, 503 or 504 gets one retry within user_sync.timeout_ms; a 4xx none. It
// knows nothing of sign-in, so a token refresh calls it again for a signed-in user.
func (p *plugin) callUserSync(u *flow.SyncUser, requestID string, done func(userID string, err error)) {
	f := p.flow
	cfg := f.Config().UserSync
	deadline := p.now().Add(cfg.Timeout)
	req, err := f.UserSyncRequest(u)
	if err != nil {
		done("", fmt.Errorf("%w: %v", flow.ErrUserSyncUnavailable, err))
		return
	}
	var call func(first bool)
	call = func(first bool) {
		answered := func(status int, body []byte) {
			if first && flow.UserSyncRetryable(status) && deadline.Sub(p.now()) > 10*time.Millisecond {
				what := fmt.Sprintf("answered %d", status)
				if status == 0 {
					what = "did not answer"
				}
				proxywasm.LogWarnf("entra-auth: request %s: the user-sync endpoint %s; trying once more", requestID, what)
				call(false)
				return
			}
			done(flow.ParseUserSyncResponse(status, body))
		}
		if err := dispatch(cfg.Cluster, deadline.Sub(p.now()), req, answered); err != nil {
			proxywasm.LogErrorf("entra-auth: request %s: %v (user_sync.cluster)", requestID, err)
			answered(0, nil)
		}
	}
	call(true)
}

// complete sets the session and sends the browser back where the sign-in started.
func (s *stream) complete(cb *flow.Callback, sess *session.Session) {
	resp, err := s.plugin.flow.CompleteSignIn(s.req, cb, sess)
	if err != nil {
		s.fail("session", err)
		return
	}
	s.plugin.metrics.signInsCompleted.Increment(1)
	proxywasm.LogInfof("entra-auth: request %s: signed in %s (tenant %s)", s.requestID, sess.ObjectID, sess.TenantID)
	s.respond(resp)
}

// markStateUsed records the callback's state in the shared record of used states. A
// state already there is a replay (ErrStateUsed). A record that cannot be read,
// written or won is ErrSharedState: the callback must not go ahead.
func (p *plugin) markStateUsed(cb *flow.Callback, now time.Time) error {
	err := sharedstate.MarkUsed(p.shared, cb.SignIn.State, cb.SignIn.Expires, now)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sharedstate.ErrReplayed):
		return fmt.Errorf("%w: %w", flow.ErrStateUsed, err)
	}
	return fmt.Errorf("%w: recording the used sign-in state: %w", flow.ErrSharedState, err)
}

// stateWasUsed reports whether a callback for state was completed in this process. Shared
// data failing counts as no: the page then says less, never more.
func (p *plugin) stateWasUsed(state string) bool {
	if state == "" {
		return false
	}
	used, err := sharedstate.WasUsed(p.shared, state, p.now())
	return err == nil && used
}
