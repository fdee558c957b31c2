package filter

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/flow"
	"github.com/entra-auth/entra-auth/internal/sharedstate"
	"github.com/entra-auth/entra-auth/session"
)

// peerClock is a clock the test moves; VMs share it, as workers share a machine's.
type peerClock struct{ t time.Time }

func (c *peerClock) now() time.Time { return c.t }

// peerVM is one worker's plugin, as far as the refresh slots go: its own instance name,
// flow and claims, the emulator's shared data shared with the others.
func peerVM(t *testing.T, instance string, clock *peerClock) *plugin {
	t.Helper()
	cfg, err := config.Parse([]byte(testConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	p := (&vmContext{}).NewPluginContext(1).(*plugin)
	p.now = clock.now
	if p.flow, err = flow.New(cfg, rand.Reader, clock.now); err != nil {
		t.Fatal(err)
	}
	p.idp = newIDPCache(cfg, instance, clock.now, p.shared)
	return p
}

// Two workers, one session due for refresh: one claims it, the other waits and takes
// the session the first publishes; a released or run-out claim lets the other refresh.
func TestPeersRefreshASessionOnce(t *testing.T) {
	clock := &peerClock{t: time.Unix(1764400000, 0)}
	sess := &session.Session{ID: "session-1", Subject: "sub-1", AccessExpires: clock.t.Add(time.Minute), Expires: clock.t.Add(8 * time.Hour)}
	renewed := *sess
	renewed.AccessExpires = clock.t.Add(time.Hour)

	for _, tc := range []struct {
		name string
		run  func(t *testing.T, a, b *plugin)
	}{
		{"one claims, the other waits for it", func(t *testing.T, a, b *plugin) {
			if !a.claimRefresh(sess) {
				t.Fatal("the first claim failed")
			}
			if b.claimRefresh(sess) {
				t.Fatal("a second worker claimed a session the first holds")
			}
			state := b.peerRefresh(sess)
			if !state.busy || !state.deadline.After(clock.t) {
				t.Fatalf("the other worker sees %+v, want busy until a later deadline", state)
			}
			if st := a.peerRefresh(sess); st.busy {
				t.Fatal("the claiming worker sees its own claim as another's")
			}
		}},
		{"the renewed session reaches the other", func(t *testing.T, a, b *plugin) {
			a.claimRefresh(sess)
			a.publishRefresh(sess.ID, &renewed)
			state := b.peerRefresh(sess)
			if state.renewed == nil || !state.renewed.AccessExpires.Equal(renewed.AccessExpires) {
				t.Fatalf("the other worker sees %+v, want the renewed session", state)
			}
			if b.claimRefresh(sess) {
				t.Fatal("a worker claimed a refresh another already published")
			}
			newer := renewed
			newer.AccessExpires = renewed.AccessExpires.Add(time.Hour)
			if st := b.peerRefresh(&newer); st.renewed != nil {
				t.Fatal("a published session older than the one asked about was offered")
			}
		}},
		{"a released claim lets the other refresh", func(t *testing.T, a, b *plugin) {
			a.claimRefresh(sess)
			a.publishRefresh(sess.ID, nil)
			if !b.claimRefresh(sess) {
				t.Fatal("the other worker could not claim a released refresh")
			}
		}},
		{"a claim that ran out lets the other refresh", func(t *testing.T, a, b *plugin) {
			a.claimRefresh(sess)
			clock.t = clock.t.Add(a.claimFor() + time.Millisecond)
			if !b.claimRefresh(sess) {
				t.Fatal("the other worker could not take over a claim that ran out")
			}
		}},
		{"a claim taken over is not written over by its first holder", func(t *testing.T, a, b *plugin) {
			a.claimRefresh(sess)
			clock.t = clock.t.Add(a.claimFor() + time.Millisecond)
			b.claimRefresh(sess)
			a.publishRefresh(sess.ID, &renewed) // a finished late: b refreshes now
			if st := a.peerRefresh(sess); !st.busy {
				t.Fatalf("the late publisher overwrote the claim that took over: %+v", st)
			}
			b.publishRefresh(sess.ID, &renewed)
			if st := a.peerRefresh(sess); st.renewed == nil {
				t.Fatal("the claim's holder could not publish")
			}
		}},
		{"only a claim held is published", func(t *testing.T, a, b *plugin) {
			a.publishRefresh(sess.ID, &renewed) // a never claimed it
			if st := b.peerRefresh(sess); st.renewed != nil {
				t.Fatal("a worker published a refresh it did not claim")
			}
		}},
		{"a slot another session holds is taken over", func(t *testing.T, a, b *plugin) {
			other := collidingSession(t, sess.ID)
			if !a.claimRefresh(other) {
				t.Fatal("claim for the colliding session failed")
			}
			if st := b.peerRefresh(sess); st.busy || st.renewed != nil {
				t.Fatalf("another session's claim is taken for this one's: %+v", st)
			}
			if !b.claimRefresh(sess) {
				t.Fatal("the slot held by another session could not be claimed")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock.t = time.Unix(1764400000, 0)
			newHost(t, testConfig)
			if err := sharedstate.CreateSlots(hostStore{}); err != nil {
				t.Fatal(err)
			}
			tc.run(t, peerVM(t, "vm-a", clock), peerVM(t, "vm-b", clock))
		})
	}
}

// Without the slots (their creation failed at start), a claim cannot be guarded: each
// worker refreshes on its own rather than wait for a claim nobody can make, and none
// publishes.
func TestPeerClaimWithoutSlotsRefreshesAnyway(t *testing.T) {
	clock := &peerClock{t: time.Unix(1764400000, 0)}
	sess := &session.Session{ID: "session-1", AccessExpires: clock.t.Add(time.Minute)}
	newHost(t, testConfig)
	a, b := peerVM(t, "vm-a", clock), peerVM(t, "vm-b", clock)
	if !a.claimRefresh(sess) || !b.claimRefresh(sess) {
		t.Fatal("a worker waits for a claim shared data cannot hold")
	}
	if a.claimed[sess.ID] || b.claimed[sess.ID] {
		t.Fatal("a claim was recorded that shared data does not hold")
	}
	if _, _, err := proxywasm.GetSharedData(sharedstate.SlotKey(sess.ID)); err == nil {
		t.Fatal("a slot was written blind")
	}
}

// collidingSession is a session whose id hashes to id's slot.
func collidingSession(t *testing.T, id string) *session.Session {
	t.Helper()
	for i := range 100000 {
		other := fmt.Sprint("other-", i)
		if sharedstate.SlotKey(other) == sharedstate.SlotKey(id) && other != id {
			return &session.Session{ID: other, AccessExpires: time.Unix(1764400000, 0).Add(time.Minute)}
		}
	}
	t.Fatal("no colliding session id found")
	return nil
}

// A request whose session another worker is refreshing: while its access token holds it
// goes on at once; once expired it waits, on ticks, and takes the session the other
// worker publishes, without a refresh of its own.
func TestRequestWaitsForAnotherWorkersRefresh(t *testing.T) {
	host := startedWith(t, refreshConfig)
	cb := exchangeCodeWith(t, host, map[string]any{"refresh_token": "rt-1", "expires_in": 1})
	cookies := sessionCookies(host.GetSentLocalResponse(cb))
	cfg, err := config.Parse([]byte(refreshConfig), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	f, err := flow.New(cfg, rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := f.Authenticate(flow.NewRequest(request("/app", cookies...)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := sharedstate.Claim(hostStore{}, sess.ID, "another worker", sess.AccessExpires, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	refreshes := func() int {
		n := 0
		for _, c := range host.GetCalloutAttributesFromContext(proxytest.PluginContextID) {
			if strings.Contains(string(c.Body), "grant_type=refresh_token") {
				n++
			}
		}
		return n
	}

	id := host.InitializeHttpContext()
	if a := host.CallOnRequestHeaders(id, request("/app", cookies...), true); a != types.ActionContinue {
		t.Fatalf("with the tokens still good: %v, want on at once", a)
	}
	time.Sleep(time.Until(sess.AccessExpires) + 10*time.Millisecond)
	id = host.InitializeHttpContext()
	if a := host.CallOnRequestHeaders(id, request("/app", cookies...), true); a != types.ActionPause {
		t.Fatalf("with the tokens expired: %v, want it to wait for the other worker", a)
	}
	host.Tick() // still refreshing over there
	if host.GetCurrentHttpStreamAction(id) != types.ActionPause || refreshes() != 0 {
		t.Fatalf("the request did not keep waiting (%v, %d refreshes of its own)", host.GetCurrentHttpStreamAction(id), refreshes())
	}
	renewed := *sess
	renewed.AccessToken, renewed.AccessExpires = "at-from-the-other-worker", time.Now().Add(time.Hour)
	if err := sharedstate.Publish(hostStore{}, sess.ID, "another worker", renewed.Marshal(), renewed.AccessExpires); err != nil {
		t.Fatal(err)
	}
	host.Tick()
	if a := host.GetCurrentHttpStreamAction(id); a != types.ActionContinue || refreshes() != 0 {
		t.Fatalf("after the other worker published: %v (%d refreshes of its own), want on", a, refreshes())
	}
	if got := headerOf(host.GetCurrentRequestHeaders(id), "x-auth-request-user"); got != "ada@contoso.com" {
		t.Errorf("identity upstream %q", got)
	}
	host.CallOnResponseHeaders(id, [][2]string{{":status", "200"}}, false)
	if !strings.Contains(headerOf(host.GetCurrentResponseHeaders(id), "set-cookie"), "__Host-entra-auth=") {
		t.Errorf("the renewed session does not reach the browser: %v", host.GetCurrentResponseHeaders(id))
	}
}
