package filter

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/flow"
	"github.com/entra-auth/entra-auth/internal/sharedstate"
	"github.com/entra-auth/entra-auth/jwks"
)

// Tick periods: quick while a fetch is wanted or streams wait, slow otherwise.
const (
	idleTick = 1000 * time.Millisecond
	busyTick = 20 * time.Millisecond
)

// metadata is the identity provider's configuration and keys, as one VM knows them.
type metadata struct {
	fetchedAt time.Time
	disc      *flow.Discovery
	keys      *jwks.Set
	verifier  *jwks.Verifier
	// access verifies bearer tokens (nil without api_audiences).
	access *jwks.AccessVerifier
}

// waiter is a stream (or other work) waiting for metadata.
type waiter func(*metadata, error)

// idpCache fetches, shares and refreshes the provider's metadata. All of it runs on the
// VM's one thread; fetches are dispatched from the root context (on a tick), so that a
// stream that goes away never takes a fetch's answer with it.
type idpCache struct {
	cfg      *config.Config
	instance string // this VM, in the fetch lease
	now      func() time.Time
	// shared is the process's shared data; keys this provider's keys in it. Shared data
	// is per vm_id and per Envoy process: what one worker's VM fetched, the others read.
	shared sharedstate.Store
	keys   sharedstate.ProviderKeys

	current       *metadata
	discBody      []byte // current's discovery document, as the provider sent it
	fetching      bool
	fetchDeadline time.Time
	forceKeys     bool // a token named an unknown kid: fetch the JWKS again
	waiters       []waiter
	failures      int
	nextAttempt   time.Time
	lastErr       error
	tickPeriod    time.Duration
}

func newIDPCache(cfg *config.Config, instance string, now func() time.Time, shared sharedstate.Store) *idpCache {
	return &idpCache{cfg: cfg, instance: instance, now: now, shared: shared, keys: sharedstate.KeysFor(cfg.DiscoveryURL())}
}

// await calls fn with the metadata: at once if it is loaded, else when a fetch ends. While
// the provider is failing and the next attempt is not due, fn fails at once rather than
// piling up paused streams.
func (c *idpCache) await(fn waiter) {
	if c.current != nil {
		fn(c.current, nil)
		return
	}
	if c.lastErr != nil && c.now().Before(c.nextAttempt) {
		fn(nil, c.lastErr)
		return
	}
	c.waiters = append(c.waiters, fn)
	c.setTick(busyTick)
}

// refreshKeysAfter handles a token whose kid the keys fetched at since do not have: it
// calls fn with newer metadata, fetching the JWKS again unless another fetch for an
// unknown kid started less than jwks.MinUnknownKeyRefresh ago (on any VM of this Envoy).
func (c *idpCache) refreshKeysAfter(since time.Time, fn waiter) {
	if c.adoptShared() || (c.current != nil && c.current.fetchedAt.After(since)) {
		fn(c.current, nil)
		return
	}
	if !c.claimUnknownKidRefresh() {
		fn(nil, fmt.Errorf("%w (the keys were fetched again less than %v ago)", jwks.ErrUnknownKey, jwks.MinUnknownKeyRefresh))
		return
	}
	c.forceKeys = true
	c.waiters = append(c.waiters, func(md *metadata, err error) {
		if err == nil && !md.fetchedAt.After(since) {
			err = fmt.Errorf("%w: the fetch did not bring newer keys", jwks.ErrUnknownKey)
		}
		fn(md, err)
	})
	c.setTick(busyTick)
}

// claimUnknownKidRefresh takes the process-wide right to refetch keys for an unknown kid,
// at most once per jwks.MinUnknownKeyRefresh. When shared data fails, nobody refetches:
// the token is refused, as one naming an unknown key is.
func (c *idpCache) claimUnknownKidRefresh() bool {
	now := c.now()
	err := sharedstate.ClaimStamp(c.shared, sharedstate.UnknownKidKey, now, func(last time.Time) bool {
		return jwks.RefreshAllowed(last, now)
	})
	if sharedstate.IsCoordinationFault(err) {
		proxywasm.LogWarnf("entra-auth: cannot claim a key refetch for an unknown kid in shared data: %v", err)
	}
	return err == nil
}

// tick runs on the root context: adopt what another VM fetched, start a fetch when one is
// wanted and this VM holds the lease, and give up on a fetch whose answer never came.
// othersWaiting keeps the ticks quick for work of the plugin's other than the metadata.
func (c *idpCache) tick(othersWaiting bool) {
	now := c.now()
	if c.fetching {
		if now.Before(c.fetchDeadline) {
			return
		}
		c.fetched(nil, fmt.Errorf("%w: the fetch got no answer in time", flow.ErrIdPUnavailable))
	}
	c.adoptShared()
	stale := c.current != nil && now.Sub(c.current.fetchedAt) >= c.cfg.JWKSRefreshInterval
	wanted := c.current == nil || c.forceKeys || stale
	if wanted && !now.Before(c.nextAttempt) && c.takeLease(now) {
		c.fetch(c.forceKeys && c.current != nil)
	}
	if othersWaiting || len(c.waiters) > 0 || (wanted && c.current == nil) {
		c.setTick(busyTick)
	} else {
		c.setTick(idleTick)
	}
}

func (c *idpCache) setTick(d time.Duration) {
	if c.tickPeriod == d {
		return
	}
	if err := proxywasm.SetTickPeriodMilliSeconds(uint32(d / time.Millisecond)); err != nil {
		proxywasm.LogErrorf("entra-auth: set tick period: %v", err)
		return
	}
	c.tickPeriod = d
}

// fetch gets the discovery document (unless keysOnly) and the JWKS through idp_cluster.
func (c *idpCache) fetch(keysOnly bool) {
	c.fetching = true
	c.fetchDeadline = c.now().Add(3*c.cfg.IDPTimeout + time.Second)
	getKeys := func(discBody []byte, disc *flow.Discovery) {
		req, err := disc.KeysRequest()
		if err != nil {
			c.fetched(nil, err)
			return
		}
		err = c.call(req, func(status int, body []byte) {
			keys, err := flow.ParseKeys(status, body)
			if err != nil {
				c.fetched(nil, err)
				return
			}
			for _, skipped := range keys.Skipped {
				proxywasm.LogWarnf("entra-auth: the identity provider's key set: skipped %s", skipped)
			}
			md := &metadata{fetchedAt: c.now(), disc: disc, keys: keys, verifier: c.verifier(disc), access: c.accessVerifier(disc)}
			c.store(md, discBody, body)
			c.fetched(md, nil)
		})
		if err != nil {
			c.fetched(nil, err)
		}
	}
	if keysOnly {
		getKeys(c.discBody, c.current.disc)
		return
	}
	req, err := flow.DiscoveryRequest(c.cfg)
	if err != nil {
		c.fetched(nil, err)
		return
	}
	err = c.call(req, func(status int, body []byte) {
		disc, err := flow.ParseDiscovery(c.cfg, status, body)
		if err != nil {
			c.fetched(nil, err)
			return
		}
		getKeys(body, disc)
	})
	if err != nil {
		c.fetched(nil, err)
	}
}

func (c *idpCache) accessVerifier(d *flow.Discovery) *jwks.AccessVerifier {
	if len(c.cfg.APIAudiences) == 0 {
		return nil
	}
	return jwks.NewAccessVerifier(jwks.AccessConfig{
		Audiences:      c.cfg.APIAudiences,
		Issuer:         d.Issuer,
		AllowedTenants: c.cfg.AllowedTenants,
		ClockSkew:      c.cfg.ClockSkew,
		Now:            c.now,
	})
}

func (c *idpCache) verifier(d *flow.Discovery) *jwks.Verifier {
	return jwks.NewVerifier(jwks.Config{
		ClientID:       c.cfg.ClientID,
		Issuer:         d.Issuer,
		AllowedTenants: c.cfg.AllowedTenants,
		ClockSkew:      c.cfg.ClockSkew,
		Now:            c.now,
	})
}

// call dispatches req to the identity provider's cluster.
func (c *idpCache) call(req *flow.HTTPRequest, done func(status int, body []byte)) error {
	if err := dispatch(c.cfg.IDPCluster, c.cfg.IDPTimeout, req, done); err != nil {
		return fmt.Errorf("%w: %v (idp_cluster)", flow.ErrIdPUnavailable, err)
	}
	return nil
}

// dispatch sends req to cluster and calls done with the answer's status (0 when there
// was none) and body. The timeout is at least a millisecond (0 would mean none).
func dispatch(cluster string, timeout time.Duration, req *flow.HTTPRequest, done func(status int, body []byte)) error {
	_, err := proxywasm.DispatchHttpCall(cluster, req.Pairs(), req.Body, nil, uint32(max(timeout/time.Millisecond, 1)),
		func(numHeaders, bodySize, _ int) {
			enterRoot()
			defer func() {
				if v := recover(); v != nil {
					rootPanicked("the answer of a call to cluster "+cluster, v)
				}
				leaveRoot()
			}()
			// An answer that cannot be read is no answer (status 0): callers treat it as
			// the cluster failing, never as a success.
			status := 0
			if numHeaders > 0 {
				headers, err := proxywasm.GetHttpCallResponseHeaders()
				if err != nil {
					proxywasm.LogErrorf("entra-auth: cannot read the answer of a call to cluster %s: %v", cluster, err)
					done(0, nil)
					return
				}
				for _, h := range headers {
					if h[0] == ":status" {
						if status, err = strconv.Atoi(h[1]); err != nil {
							status = 0
						}
					}
				}
			}
			var body []byte
			if bodySize > 0 {
				var err error
				if body, err = proxywasm.GetHttpCallResponseBody(0, bodySize); err != nil {
					proxywasm.LogErrorf("entra-auth: cannot read the body of a call to cluster %s: %v", cluster, err)
					done(0, nil)
					return
				}
			}
			done(status, body)
		})
	if errors.Is(err, types.ErrorStatusBadArgument) {
		return fmt.Errorf("cannot call cluster %q: is it defined in Envoy's configuration?", cluster)
	}
	if err != nil {
		return fmt.Errorf("call to cluster %q: %v", cluster, err)
	}
	return nil
}

// fetched ends a fetch: the lease goes back, and waiting streams learn the outcome.
func (c *idpCache) fetched(md *metadata, err error) {
	c.fetching = false
	c.releaseLease()
	c.finish(md, err)
}

func (c *idpCache) finish(md *metadata, err error) {
	if err != nil {
		c.failures++
		backoff := min(time.Second<<min(c.failures-1, 6), time.Minute)
		c.nextAttempt = c.now().Add(backoff)
		c.lastErr = err
		proxywasm.LogErrorf("entra-auth: fetching the identity provider's metadata failed (attempt %d, next in %v): %v", c.failures, backoff, err)
		c.forceKeys = false
		c.resolve(nil, err)
		return
	}
	c.failures, c.lastErr, c.nextAttempt, c.forceKeys = 0, nil, time.Time{}, false
	c.current = md
	c.resolve(md, nil)
}

// resolve hands the outcome to every waiter.
func (c *idpCache) resolve(md *metadata, err error) {
	waiters := c.waiters
	c.waiters = nil
	if md == nil && err == nil {
		return
	}
	for _, w := range waiters {
		w(md, err)
	}
}

// store shares what this VM fetched; the bodies go as the provider sent them, so that
// every VM parses the same bytes.
func (c *idpCache) store(md *metadata, disc, keys []byte) {
	err := sharedstate.PutMetadata(c.shared, c.keys.Metadata, sharedstate.Metadata{FetchedAt: md.fetchedAt, Discovery: disc, JWKS: keys})
	if err != nil {
		proxywasm.LogWarnf("entra-auth: cannot share the identity provider's metadata with the other workers: %v", err)
	}
	c.discBody = disc
}

// adoptShared takes the shared metadata when it is newer than this VM's, hands it to
// every waiter (it is newer than what any of them saw, including those waiting for an
// unknown kid), and reports whether it did.
func (c *idpCache) adoptShared() bool {
	shared, err := sharedstate.GetMetadata(c.shared, c.keys.Metadata)
	if err != nil || (c.current != nil && !shared.FetchedAt.After(c.current.fetchedAt)) {
		return false
	}
	disc, err := flow.ParseDiscovery(c.cfg, 200, shared.Discovery)
	if err != nil {
		return false
	}
	keys, err := flow.ParseKeys(200, shared.JWKS)
	if err != nil {
		return false
	}
	c.current = &metadata{fetchedAt: shared.FetchedAt, disc: disc, keys: keys, verifier: c.verifier(disc), access: c.accessVerifier(disc)}
	c.discBody = bytes.Clone(shared.Discovery)
	c.failures, c.lastErr, c.nextAttempt, c.forceKeys = 0, nil, time.Time{}, false
	c.resolve(c.current, nil)
	return true
}

// The fetch lease lets one VM fetch while the others wait for its result; it expires, so
// that a VM that dies mid-fetch does not block the rest. When shared data fails, this VM
// fetches without it: the cost is a fetch the others may repeat.

func (c *idpCache) takeLease(now time.Time) bool {
	err := sharedstate.TakeLease(c.shared, c.keys.Lease, c.instance, now, now.Add(3*c.cfg.IDPTimeout+time.Second))
	if sharedstate.IsCoordinationFault(err) {
		proxywasm.LogWarnf("entra-auth: cannot take the metadata fetch lease in shared data (fetching anyway): %v", err)
		return true
	}
	return err == nil
}

func (c *idpCache) releaseLease() {
	if err := sharedstate.ReleaseLease(c.shared, c.keys.Lease, c.instance); err != nil {
		// Not given back, the lease runs out at its expiry; the next fetch waits for that.
		proxywasm.LogDebugf("entra-auth: cannot give back the metadata fetch lease: %v", err)
	}
}
