package filter

import (
	"errors"
	"fmt"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/internal/sharedstate"
	"github.com/entra-auth/entra-auth/session"
)

// Refreshes are coordinated across the VMs of an Envoy process through the refresh
// slots of sharedstate, so that a session's requests on several workers refresh it once:
// a VM claims the session's slot before refreshing, the others wait for it and take the
// renewed session it publishes there.

// hostStore is the host's shared data as a sharedstate.Store.
type hostStore struct{}

func (hostStore) Get(key string) ([]byte, uint32, error) {
	value, cas, err := proxywasm.GetSharedData(key)
	return value, cas, hostError(err)
}

func (hostStore) Set(key string, value []byte, cas uint32) error {
	return hostError(proxywasm.SetSharedData(key, value, cas))
}

// hostError turns the host's answer into sharedstate's failures.
func hostError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, types.ErrorStatusNotFound):
		return sharedstate.ErrNotFound
	case errors.Is(err, types.ErrorStatusCasMismatch):
		return sharedstate.ErrConflict
	}
	return fmt.Errorf("%w: %v", sharedstate.ErrUnavailable, err)
}

// createShared makes the keys that are written only with a compare-and-swap exist, at
// plugin start: shared data's compare-and-swap guards only keys that exist
// (proxy-wasm-cpp-host src/shared_data.cc, SharedData::set), and no key can be made
// atomically later. What each missing key costs is said in its warning.
func (p *plugin) createShared() {
	for _, k := range []struct{ key, without string }{
		{sharedstate.UsedStatesKey, "sign-ins will be refused"},
		{sharedstate.UnknownKidKey, "a token naming a new key waits for the next key refresh"},
		{p.idp.keys.Lease, "every worker fetches the provider's metadata itself"},
	} {
		if err := sharedstate.Create(p.shared, k.key); err != nil {
			proxywasm.LogWarnf("entra-auth: cannot create shared data (%s): %v", k.without, err)
		}
	}
	if err := sharedstate.CreateSlots(p.shared); err != nil {
		proxywasm.LogWarnf("entra-auth: cannot create the shared refresh slots (each worker refreshes sessions itself): %v", err)
	}
}

// peerState is what the shared slot says of a session.
type peerState struct {
	// renewed is set when another VM published a session newer than the one asked about.
	renewed *session.Session
	// busy is set while another VM holds a claim to refresh it, until deadline.
	busy     bool
	deadline time.Time
}

// peerWait is a session whose refresh another VM makes, waited for on ticks.
type peerWait struct {
	session  *session.Session
	deadline time.Time
}

// claimFor is how long a VM may hold a refresh claim: the refresh call, a key refetch,
// the user-sync call, and some slack.
func (p *plugin) claimFor() time.Duration {
	d := 2*p.flow.Config().IDPTimeout + time.Second
	if us := p.flow.Config().UserSync; us != nil {
		d += us.Timeout
	}
	return d
}

// peerRefresh reads what the session's slot says. A slot that cannot be read says
// nothing: this VM then refreshes on its own.
func (p *plugin) peerRefresh(sess *session.Session) peerState {
	slot, err := sharedstate.ReadSlot(p.shared, sess.ID)
	if err != nil {
		proxywasm.LogDebugf("entra-auth: cannot read a session's refresh slot: %v", err)
		return peerState{}
	}
	switch slot.State {
	case sharedstate.SlotRenewed:
		renewed, err := session.UnmarshalSession(slot.Renewed)
		if err == nil && renewed.ID == sess.ID && renewed.AccessExpires.After(sess.AccessExpires) {
			return peerState{renewed: renewed}
		}
	case sharedstate.SlotClaimed:
		if slot.Holder != p.idp.instance && p.now().Before(slot.Deadline) {
			return peerState{busy: true, deadline: slot.Deadline}
		}
	}
	return peerState{}
}

// claimRefresh takes the session's slot for this VM, unless another VM holds it or has
// published a renewal. When shared data fails, this VM refreshes without a claim: the
// cost is a refresh the others may repeat, never a wrong session.
func (p *plugin) claimRefresh(sess *session.Session) bool {
	now := p.now()
	err := sharedstate.Claim(p.shared, sess.ID, p.idp.instance, sess.AccessExpires, now, now.Add(p.claimFor()))
	switch {
	case err == nil:
		p.claimed[sess.ID] = true
		return true
	case sharedstate.IsCoordinationFault(err):
		proxywasm.LogWarnf("entra-auth: cannot claim a session refresh in shared data (refreshing anyway): %v", err)
		return true
	}
	return false
}

// publishRefresh puts the renewed session in the slot this VM claimed, for the other VMs,
// or releases the claim after a failed refresh. A claim that ran out and was taken over
// by another VM (which is refreshing in turn, and will publish) is left alone.
func (p *plugin) publishRefresh(sessionID string, renewed *session.Session) {
	if !p.claimed[sessionID] {
		return
	}
	delete(p.claimed, sessionID)
	var value []byte
	var expires time.Time
	if renewed != nil {
		value, expires = renewed.Marshal(), renewed.AccessExpires
	}
	err := sharedstate.Publish(p.shared, sessionID, p.idp.instance, value, expires)
	switch {
	case sharedstate.IsCoordinationFault(err):
		proxywasm.LogWarnf("entra-auth: cannot share a session refresh with the other workers: %v", err)
	case err != nil:
		proxywasm.LogDebugf("entra-auth: a session refresh's claim was taken over by another worker; it publishes instead")
	}
}

// awaitPeer waits, on ticks, for the refresh another VM makes of the session.
func (p *plugin) awaitPeer(sess *session.Session, deadline time.Time) {
	p.peerWaits[sess.ID] = peerWait{session: sess, deadline: deadline}
	p.idp.setTick(busyTick)
}

// pollPeerRefreshes, on each tick, hands the sessions other VMs renewed to the requests
// waiting here, and takes over a refresh whose claim ran out or was given up.
func (p *plugin) pollPeerRefreshes() {
	for id, w := range p.peerWaits {
		state := p.peerRefresh(w.session)
		switch {
		case state.renewed != nil:
			delete(p.peerWaits, id)
			p.finishRefresh(w.session, state.renewed, nil)
		case state.busy && p.now().Before(w.deadline.Add(time.Second)):
			// still refreshing over there
		default:
			delete(p.peerWaits, id)
			p.startRefresh(w.session, "(tick)")
		}
	}
}
