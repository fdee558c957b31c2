package filter

import (
	"errors"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/flow"
	"github.com/entra-auth/entra-auth/jwks"
	"github.com/entra-auth/entra-auth/session"
)

// renewedFor is how long a VM remembers a session it renewed: requests the browser sent
// with the old cookie before it got the new one are given the renewed session, instead
// of refreshing again with a refresh token Entra has rotated away.
const renewedFor = 2 * time.Minute

// maxRenewed bounds the sessions a VM remembers as renewed.
const maxRenewed = 10000

// renewedSessions are sessions this VM renewed lately, by session id.
type renewedSessions map[string]renewal

type renewal struct {
	session *session.Session
	until   time.Time
}

// newer returns the renewed version of sess when this VM has one newer than it.
func (r renewedSessions) newer(sess *session.Session, now time.Time) *session.Session {
	got, ok := r[sess.ID]
	if !ok || sess.ID == "" {
		return nil
	}
	if now.After(got.until) {
		delete(r, sess.ID)
		return nil
	}
	if !got.session.AccessExpires.After(sess.AccessExpires) {
		return nil
	}
	return got.session
}

func (r renewedSessions) remember(s *session.Session, now time.Time) {
	if len(r) >= maxRenewed {
		for id, old := range r {
			if now.After(old.until) || len(r) >= maxRenewed {
				delete(r, id)
			}
		}
	}
	r[s.ID] = renewal{session: s, until: now.Add(renewedFor)}
}

// refreshOutcome is what a refresh gives each request that waited for it.
type refreshOutcome func(renewed *session.Session, err error)

// refresh renews the session's tokens with a refresh_token grant while the request waits,
// then lets it through with the renewed session (and its cookies on the response). The
// first request of a session due for a refresh makes the call; the others on this VM wait
// for its outcome rather than each spending the refresh token.
func (s *stream) refresh(sess *session.Session) types.Action {
	s.paused = true
	p := s.plugin
	wait := func(renewed *session.Session, err error) {
		if !s.resume() {
			return
		}
		s.refreshed(sess, renewed, err)
	}
	if waiting, inFlight := p.refreshing[sess.ID]; inFlight {
		p.refreshing[sess.ID] = append(waiting, wait)
		return types.ActionPause
	}
	p.refreshing[sess.ID] = []refreshOutcome{wait}
	done := func(renewed *session.Session, err error) {
		if err == nil {
			p.renewed.remember(renewed, p.now())
		}
		waiting := p.refreshing[sess.ID]
		delete(p.refreshing, sess.ID)
		for _, w := range waiting {
			w(renewed, err)
		}
	}
	p.idp.await(func(md *metadata, err error) {
		if err != nil {
			done(nil, err)
			return
		}
		f := p.flow
		callErr := p.idp.call(f.RefreshRequest(md.disc, sess), func(status int, body []byte) {
			tokens, err := flow.ParseRefreshResponse(status, body)
			if err != nil {
				done(nil, flow.RefreshFailed(err))
				return
			}
			var claims *jwks.Claims
			if tokens.IDToken != "" {
				if claims, err = md.verifier.VerifyRefreshed(tokens.IDToken, md.keys, sess.Nonce); err != nil {
					done(nil, err)
					return
				}
			}
			renewed, err := f.Refreshed(sess, tokens, claims)
			if err != nil || claims == nil || f.Config().UserSync == nil {
				done(renewed, err)
				return
			}
			s.resyncIfChanged(renewed, claims, done)
		})
		if callErr != nil {
			done(nil, callErr)
		}
	})
	if s.passed { // the outcome came at once (the provider failing) and let the request on
		return types.ActionContinue
	}
	return types.ActionPause
}

// resyncIfChanged sends the user to the user-sync endpoint again when what the call
// would say differs from what the session was synced with: a rename or a group change
// reaches the application without a new sign-in. A refusal ends the session; an
// unavailable endpoint leaves the session as it was synced, to try at the next refresh.
func (s *stream) resyncIfChanged(renewed *session.Session, claims *jwks.Claims, done refreshOutcome) {
	f := s.plugin.flow
	user := f.SyncUser(claims)
	fingerprint := user.Fingerprint()
	if fingerprint == renewed.SyncFingerprint {
		done(renewed, nil)
		return
	}
	// The call belongs to the root context (as every dispatched call in Envoy), so its
	// answer comes even if this request goes away; done resumes each waiting request.
	s.plugin.callUserSync(user, s.requestID, func(userID string, err error) {
		switch {
		case err == nil:
			renewed.UserID, renewed.SyncFingerprint = userID, fingerprint
			proxywasm.LogInfof("entra-auth: request %s: %s changed; synced again", s.requestID, renewed.ObjectID)
			done(renewed, nil)
		case errors.Is(err, flow.ErrUserRefused):
			s.plugin.metrics.userSyncFailures.Increment(1)
			done(nil, err)
		default:
			s.plugin.metrics.userSyncFailures.Increment(1)
			proxywasm.LogWarnf("entra-auth: request %s: syncing the changed user failed; trying again at the next refresh: %v", s.requestID, err)
			done(renewed, nil)
		}
	})
}

// refreshed lets a waiting request through, or stops it, by the refresh's outcome.
func (s *stream) refreshed(old, renewed *session.Session, err error) {
	f := s.plugin.flow
	switch {
	case err == nil:
		cookies, cerr := f.SessionCookies(s.req, renewed)
		if cerr != nil {
			s.fail("session", cerr)
			return
		}
		s.setCookies = cookies
		s.signedIn(renewed)
	case errors.Is(err, flow.ErrRefreshRejected), errors.Is(err, flow.ErrRefreshIdentity):
		proxywasm.LogInfof("entra-auth: request %s: the session of %s ended: %v", s.requestID, old.ObjectID, err)
		s.respond(f.SessionEnded(s.req, s.requestID))
	case errors.Is(err, flow.ErrUserRefused):
		proxywasm.LogWarnf("entra-auth: request %s: the application no longer accepts %s: %v", s.requestID, old.ObjectID, err)
		p := f.Explain(err)
		resp := flow.ErrorResponse(s.req, p.Status, p.Code, p.Message, s.requestID)
		for _, c := range f.ClearSession(s.req) {
			resp.Headers = append(resp.Headers, [2]string{"set-cookie", c})
		}
		s.respond(resp)
	case !f.AccessExpired(old):
		// Refreshed early, so the tokens still hold: go on, and try again next time.
		proxywasm.LogWarnf("entra-auth: request %s: refreshing the session failed; it is still valid, trying again later: %v", s.requestID, err)
		s.signedIn(old)
	default:
		s.fail("session refresh", err)
	}
}
