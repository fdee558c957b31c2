package filter

import (
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/flow"
	"github.com/entra-auth/entra-auth/internal/expcache"
	"github.com/entra-auth/entra-auth/jwks"
	"github.com/entra-auth/entra-auth/session"
)

// renewedFor is how long a VM remembers a session it renewed: requests the browser sent
// with the old cookie before it got the new one are given the renewed session, instead
// of refreshing again with a refresh token Entra has rotated away.
const renewedFor = 2 * time.Minute

// maxRenewed bounds the sessions a VM remembers as renewed.
const maxRenewed = 10000

// renewedSessions are sessions this VM renewed lately, by session id, each for
// renewedFor.
type renewedSessions struct {
	cache *expcache.Cache[string, *session.Session]
}

func newRenewedSessions() renewedSessions {
	return renewedSessions{cache: expcache.New[string, *session.Session](maxRenewed)}
}

// newer returns the renewed version of sess when this VM has one newer than it. It reads
// the clock (a host call) only when it has one.
func (r renewedSessions) newer(sess *session.Session, now func() time.Time) *session.Session {
	if sess.ID == "" {
		return nil
	}
	got, ok := r.cache.Get(sess.ID, now)
	if !ok || !got.AccessExpires.After(sess.AccessExpires) {
		return nil
	}
	return got
}

func (r renewedSessions) remember(s *session.Session, now time.Time) {
	r.cache.Put(s.ID, s, now.Add(renewedFor), func() time.Time { return now })
}

// refreshOutcome is what a refresh gives each request that waited for it.
type refreshOutcome func(renewed *session.Session, err error)

// refresh renews the session's tokens with a refresh_token grant while the request waits,
// then lets it through with the renewed session (and its cookies on the response). Each
// session is refreshed once however many of its requests come due together: on this VM
// the first makes the call and the others wait for it; across VMs, the one that claims
// the session's shared slot refreshes, and the others take the session it publishes (or
// go on meanwhile, while the tokens they hold are still good).
func (s *stream) refresh(sess *session.Session) types.Action {
	s.paused = true
	p, f := s.plugin, s.plugin.flow
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
	peer := p.peerRefresh(sess)
	switch {
	case peer.renewed != nil:
		p.renewed.remember(peer.renewed, p.now())
		s.refreshed(sess, peer.renewed, nil)
	case peer.busy && !f.AccessExpired(sess):
		return s.signedIn(sess) // another worker is refreshing; these tokens still hold
	case peer.busy:
		p.refreshing[sess.ID] = []refreshOutcome{wait}
		p.awaitPeer(sess, peer.deadline)
	default:
		p.refreshing[sess.ID] = []refreshOutcome{wait}
		p.startRefresh(sess, s.requestID)
	}
	if s.passed { // the outcome came at once and let the request on
		return types.ActionContinue
	}
	return types.ActionPause
}

// startRefresh claims the session's refresh for this VM and makes it; when another VM
// holds the claim, it waits for that one instead. The requests waiting in
// p.refreshing[sess.ID] learn the outcome.
func (p *plugin) startRefresh(sess *session.Session, requestID string) {
	if !p.claimRefresh(sess) {
		p.awaitPeer(sess, p.now().Add(p.claimFor()))
		return
	}
	p.idp.await(func(md *metadata, err error) {
		if err != nil {
			p.finishRefresh(sess, nil, err)
			return
		}
		f := p.flow
		req, err := f.RefreshRequest(md.disc, sess)
		if err != nil {
			p.finishRefresh(sess, nil, err)
			return
		}
		callErr := p.idp.call(req, func(status int, body []byte) {
			tokens, err := flow.ParseRefreshResponse(status, body)
			if err != nil {
				p.finishRefresh(sess, nil, flow.RefreshFailed(err))
				return
			}
			if tokens.IDToken == "" {
				p.refreshVerified(sess, tokens, nil, requestID)
				return
			}
			p.verifyRefreshed(sess, tokens, md, requestID)
		})
		if callErr != nil {
			p.finishRefresh(sess, nil, callErr)
		}
	})
}

// verifyRefreshed verifies the ID token a refresh returned. A key the set lacks gets
// one key refetch (as at sign-in); any other failure, or the key still unknown, ends the
// session. Only the provider being unreachable for the refetch is a passing outage.
func (p *plugin) verifyRefreshed(sess *session.Session, tokens *flow.Tokens, md *metadata, requestID string) {
	claims, err := md.verifier.VerifyRefreshed(tokens.IDToken, md.keys, sess.Nonce)
	if err == nil {
		p.refreshVerified(sess, tokens, claims, requestID)
		return
	}
	if !errors.Is(err, jwks.ErrUnknownKey) {
		p.finishRefresh(sess, nil, fmt.Errorf("%w: %w", flow.ErrRefreshUnverified, err))
		return
	}
	p.idp.refreshKeysAfter(md.fetchedAt, func(newer *metadata, ferr error) {
		switch {
		case errors.Is(ferr, flow.ErrIdPUnavailable):
			p.finishRefresh(sess, nil, ferr)
		case ferr != nil:
			p.finishRefresh(sess, nil, fmt.Errorf("%w: %w", flow.ErrRefreshUnverified, ferr))
		default:
			claims, err := newer.verifier.VerifyRefreshed(tokens.IDToken, newer.keys, sess.Nonce)
			if err != nil {
				p.finishRefresh(sess, nil, fmt.Errorf("%w: %w", flow.ErrRefreshUnverified, err))
				return
			}
			p.refreshVerified(sess, tokens, claims, requestID)
		}
	})
}

// refreshVerified renews the session with a refresh's tokens and the verified claims of
// its ID token (nil when it had none), reading the groups from Graph on an overage and
// syncing the user again when what it would say changed.
func (p *plugin) refreshVerified(sess *session.Session, tokens *flow.Tokens, claims *jwks.Claims, requestID string) {
	renewed, err := p.flow.Refreshed(sess, tokens, claims)
	if err != nil || claims == nil {
		p.finishRefresh(sess, renewed, err)
		return
	}
	if !flow.GroupsOverage(claims) {
		p.resyncIfChanged(sess, renewed, claims, nil, requestID)
		return
	}
	// Too many groups for the token: read them from Graph again; if Graph fails, keep
	// the ones the session had rather than none.
	p.callGraphGroups(tokens.AccessToken, requestID, func(groups []string, err error) {
		if err != nil {
			proxywasm.LogWarnf("entra-auth: request %s: keeping the session's groups: %v", requestID, err)
			groups = sess.Groups
		}
		renewed.Groups = groups
		p.resyncIfChanged(sess, renewed, claims, groups, requestID)
	})
}

// finishRefresh shares the outcome with the other VMs and hands it to every request
// waiting here.
func (p *plugin) finishRefresh(old, renewed *session.Session, err error) {
	if err == nil {
		p.renewed.remember(renewed, p.now())
		p.publishRefresh(old.ID, renewed)
	} else {
		p.publishRefresh(old.ID, nil)
	}
	waiting := p.refreshing[old.ID]
	delete(p.refreshing, old.ID)
	for _, w := range waiting {
		w(renewed, err)
	}
}

// resyncIfChanged sends the user to the user-sync endpoint again when what the call
// would say differs from what the session was synced with: a rename or a group change
// reaches the application without a new sign-in. A refusal ends the session; an
// unavailable endpoint leaves the session as it was synced, to try at the next refresh.
func (p *plugin) resyncIfChanged(old, renewed *session.Session, claims *jwks.Claims, graphGroups []string, requestID string) {
	if p.flow.Config().UserSync == nil {
		p.finishRefresh(old, renewed, nil)
		return
	}
	user := p.flow.SyncUserWithGroups(claims, graphGroups)
	fingerprint := user.Fingerprint()
	if fingerprint == renewed.SyncFingerprint {
		p.finishRefresh(old, renewed, nil)
		return
	}
	p.callUserSync(user, requestID, func(userID string, err error) {
		switch {
		case err == nil:
			renewed.UserID, renewed.SyncFingerprint = userID, fingerprint
			proxywasm.LogInfof("entra-auth: request %s: %s changed; synced again", requestID, renewed.ObjectID)
			p.finishRefresh(old, renewed, nil)
		case errors.Is(err, flow.ErrUserRefused):
			p.metrics.userSyncFailures.Increment(1)
			p.finishRefresh(old, nil, err)
		default:
			p.metrics.userSyncFailures.Increment(1)
			proxywasm.LogWarnf("entra-auth: request %s: syncing the changed user failed; trying again at the next refresh: %v", requestID, err)
			p.finishRefresh(old, renewed, nil)
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
	case errors.Is(err, flow.ErrRefreshRejected), errors.Is(err, flow.ErrRefreshIdentity), errors.Is(err, flow.ErrRefreshUnverified):
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

// onBehalfOf gets a token for the downstream API (obo_scopes) with the session's access
// token while the request waits, then lets the request through with it. Several requests
// of one session may each ask; the token endpoint answers each, and the last is kept.
func (s *stream) onBehalfOf(sess *session.Session, headers [][2]string) types.Action {
	s.paused = true
	p, f := s.plugin, s.plugin.flow
	p.idp.await(func(md *metadata, err error) {
		var req *flow.HTTPRequest
		if err == nil {
			req, err = f.OBORequest(md.disc, sess)
		}
		if err == nil {
			err = p.idp.call(req, func(status int, body []byte) {
				if !s.resume() {
					return
				}
				tokens, err := flow.ParseRefreshResponse(status, body)
				if err != nil {
					s.fail("on-behalf-of token", fmt.Errorf("%w: %w", flow.ErrDownstreamToken, err))
					return
				}
				s.letThrough(append(headers, f.RememberOBO(sess, tokens)))
			})
		}
		if err != nil && s.resume() {
			s.fail("on-behalf-of token", fmt.Errorf("%w: %w", flow.ErrDownstreamToken, err))
		}
	})
	if s.passed {
		return types.ActionContinue
	}
	return types.ActionPause
}
