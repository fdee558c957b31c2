package filter

import (
	"errors"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/flow"
	"github.com/entra-auth/entra-auth/jwks"
)

// bearer lets an API call with a valid bearer access token through, never redirecting:
// a token verified before is taken from the cache; otherwise it is verified with the
// provider's keys (an unknown kid gets one key refetch, as at sign-in). A token that does
// not verify gets 401 with a WWW-Authenticate header that says why.
func (s *stream) bearer(mayRefetch bool) types.Action {
	p, f := s.plugin, s.plugin.flow
	if id, ok := f.CachedBearer(s.req.Bearer); ok {
		p.metrics.bearerCacheHits.Increment(1)
		return s.bearerThrough(id)
	}
	s.paused = true
	p.idp.await(func(md *metadata, err error) {
		if !s.resume() {
			return
		}
		if err != nil {
			s.fail("bearer token", err)
			return
		}
		s.verifyBearer(md, mayRefetch)
	})
	if s.passed {
		return types.ActionContinue
	}
	return types.ActionPause
}

func (s *stream) verifyBearer(md *metadata, mayRefetch bool) {
	p, f := s.plugin, s.plugin.flow
	claims, err := md.access.Verify(s.req.Bearer, md.keys)
	if errors.Is(err, jwks.ErrUnknownKey) && mayRefetch {
		p.idp.refreshKeysAfter(md.fetchedAt, func(newer *metadata, ferr error) {
			if !s.resume() {
				return
			}
			if ferr != nil {
				s.refuseBearer(err)
				return
			}
			s.verifyBearer(newer, false)
		})
		return
	}
	if err != nil {
		s.refuseBearer(err)
		return
	}
	p.metrics.bearerVerified.Increment(1)
	s.bearerThrough(f.RememberBearer(s.req.Bearer, claims))
}

// bearerThrough applies the access rules to the token's identity, then lets it through.
func (s *stream) bearerThrough(id *flow.BearerIdentity) types.Action {
	su, ok := s.authorized(id.User, id.Scopes, true)
	if !ok {
		return types.ActionPause
	}
	if su != nil {
		proxywasm.LogInfof("entra-auth: request %s: the bearer token lacks what rule %q asks of the sign-in", s.requestID, su.Rule)
		return s.respond(s.plugin.flow.StepUpChallenge(s.req, su, s.requestID))
	}
	return s.letThrough(flow.BearerHeaders(id))
}

func (s *stream) refuseBearer(err error) {
	s.plugin.metrics.bearerRefused.Increment(1)
	proxywasm.LogInfof("entra-auth: request %s: bearer token refused: %v", s.requestID, err)
	s.respond(s.plugin.flow.BearerRefused(s.req, err, s.requestID))
}
