package filter

import (
	"bytes"
	"errors"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/session"
)

// Refreshes are coordinated across the VMs of an Envoy process (one per worker) through
// shared data, so that a session's requests on several workers refresh it once: a VM
// claims the session's slot before refreshing, the others wait for it and take the
// renewed session it publishes there. Shared data cannot delete keys, so sessions share a
// fixed number of slots; a slot another session took over only costs a wait until the
// claim runs out, then a refresh of one's own.
const refreshSlots = 512

// Slot values: a kind byte, then fields separated by NUL.
const (
	slotPending  = 'P' // session id, VM, claim deadline (Unix ms)
	slotRenewed  = 'D' // session id, the renewed session (session.Marshal)
	slotReleased = 'R' // session id
)

func refreshSlotKey(sessionID string) string {
	h := fnv.New32a()
	h.Write([]byte(sessionID))
	return "entra-auth/refresh/" + strconv.Itoa(int(h.Sum32()%refreshSlots))
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

// peerRefresh reads the session's slot.
func (p *plugin) peerRefresh(sess *session.Session) (peerState, []byte, uint32, bool) {
	value, cas, err := proxywasm.GetSharedData(refreshSlotKey(sess.ID))
	if err != nil {
		return peerState{}, nil, 0, false
	}
	fields := bytes.Split(value, []byte{0})
	if len(value) == 0 || len(fields) < 2 || string(fields[0][1:]) != sess.ID {
		return peerState{}, value, cas, true // free, or another session's
	}
	switch value[0] {
	case slotRenewed:
		renewed, err := session.UnmarshalSession(value[len(fields[0])+1:])
		if err == nil && renewed.AccessExpires.After(sess.AccessExpires) {
			return peerState{renewed: renewed}, value, cas, true
		}
	case slotPending:
		if len(fields) == 3 && string(fields[1]) != p.idp.instance {
			ms, _ := strconv.ParseInt(string(fields[2]), 10, 64)
			if deadline := time.UnixMilli(ms); p.now().Before(deadline) {
				return peerState{busy: true, deadline: deadline}, value, cas, true
			}
		}
	}
	return peerState{}, value, cas, true
}

func slotValue(kind byte, sessionID string, fields ...[]byte) []byte {
	v := append([]byte{kind}, sessionID...)
	for _, f := range fields {
		v = append(append(v, 0), f...)
	}
	return v
}

// createUsedStates makes the record of used sign-in states exist, empty, at plugin
// start: shared data's compare-and-swap guards only keys that exist, and the callback
// writes it only with one (VMs starting together may both write it empty: harmless).
func createUsedStates() {
	if _, _, err := proxywasm.GetSharedData(sharedUsedStatesKey); errors.Is(err, types.ErrorStatusNotFound) {
		if err := proxywasm.SetSharedData(sharedUsedStatesKey, nil, 0); err != nil {
			proxywasm.LogWarnf("entra-auth: cannot create the shared record of used sign-in states (sign-ins will be refused): %v", err)
		}
	}
}

// refreshSlotsMade is written once every refresh slot exists.
const refreshSlotsMade = "entra-auth/refresh/made"

// createRefreshSlots makes every slot exist, empty, at plugin start: shared data's
// compare-and-swap guards only keys that exist (proxy-wasm-cpp-host src/shared_data.cc,
// SharedData::set checks cas only for a key it finds), and a key cannot be created
// atomically, so the slots are made before any claim. Only the first VM of the process
// (Envoy's canary) makes them, then says so in refreshSlotsMade: the others read one key
// instead of 512 and never write a slot blind while a VM that started before them may
// hold a claim in it. (VMs starting together may both write an empty slot, which is
// harmless: nothing has been claimed before the first start ends.)
func createRefreshSlots() {
	if _, _, err := proxywasm.GetSharedData(refreshSlotsMade); err == nil {
		return
	}
	for i := range refreshSlots {
		key := "entra-auth/refresh/" + strconv.Itoa(i)
		if _, _, err := proxywasm.GetSharedData(key); errors.Is(err, types.ErrorStatusNotFound) {
			if err := proxywasm.SetSharedData(key, nil, 0); err != nil {
				proxywasm.LogWarnf("entra-auth: cannot create the shared refresh slots: %v", err)
				return
			}
		}
	}
	if err := proxywasm.SetSharedData(refreshSlotsMade, []byte{1}, 0); err != nil {
		proxywasm.LogWarnf("entra-auth: cannot record that the shared refresh slots exist (the next VM makes sure again): %v", err)
	}
}

// claimRefresh takes the session's slot for this VM, unless another VM holds it or has
// published a renewal, with a compare-and-swap. (A slot that does not exist, which
// createRefreshSlots prevents, is written blind and read back.)
func (p *plugin) claimRefresh(sess *session.Session) bool {
	key := refreshSlotKey(sess.ID)
	state, _, cas, found := p.peerRefresh(sess)
	if state.busy || state.renewed != nil {
		return false
	}
	deadline := strconv.FormatInt(p.now().Add(p.claimFor()).UnixMilli(), 10)
	claim := slotValue(slotPending, sess.ID, []byte(p.idp.instance), []byte(deadline))
	if !found {
		cas = 0
	}
	if err := proxywasm.SetSharedData(key, claim, cas); err != nil {
		if !errors.Is(err, types.ErrorStatusCasMismatch) {
			proxywasm.LogWarnf("entra-auth: cannot claim a session refresh in shared data (refreshing anyway): %v", err)
			return true
		}
		return false
	}
	if !found {
		if back, _, err := proxywasm.GetSharedData(key); err != nil || !bytes.Equal(back, claim) {
			return false
		}
	}
	p.claimed[sess.ID] = true
	return true
}

// publishRefresh puts the renewed session in the slot this VM claimed, for the other VMs,
// or releases the claim after a failed refresh; with a compare-and-swap on its own claim,
// so that a claim that ran out and was taken over by another VM (which is refreshing in
// turn, and will publish) is left alone.
func (p *plugin) publishRefresh(sessionID string, renewed *session.Session) {
	if !p.claimed[sessionID] {
		return
	}
	delete(p.claimed, sessionID)
	key := refreshSlotKey(sessionID)
	current, cas, err := proxywasm.GetSharedData(key)
	if err != nil || !bytes.HasPrefix(current, slotValue(slotPending, sessionID, []byte(p.idp.instance), nil)) {
		proxywasm.LogDebugf("entra-auth: a session refresh's claim was taken over by another worker; it publishes instead")
		return
	}
	value := slotValue(slotReleased, sessionID)
	if renewed != nil {
		value = slotValue(slotRenewed, sessionID, renewed.Marshal())
	}
	if err := proxywasm.SetSharedData(key, value, cas); err != nil && !errors.Is(err, types.ErrorStatusCasMismatch) {
		proxywasm.LogWarnf("entra-auth: cannot share a session refresh with the other workers: %v", err)
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
		state, _, _, _ := p.peerRefresh(w.session)
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
