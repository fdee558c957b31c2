package filter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/flow"
	"github.com/entra-auth/entra-auth/jwks"
)

// Shared data keys. Shared data is per vm_id and per Envoy process: what one worker's VM
// fetched, the others read. The metadata and its fetch lease are kept per discovery URL
// (idpKeys): shared data outlives a configuration push, and a push that changes
// authority or tenant_id must not adopt the metadata fetched for the old one.
const (
	sharedMetadataKey   = "entra-auth/idp-metadata/v1"
	sharedLeaseKey      = "entra-auth/idp-fetch-lease"
	sharedKidRefreshKey = "entra-auth/jwks-unknown-kid-refresh"
	sharedUsedStatesKey = "entra-auth/used-states"
)

// idpKeys are the shared data keys of the metadata and of its fetch lease for the
// provider at discoveryURL.
func idpKeys(discoveryURL string) (metadata, lease string) {
	h := fnv.New64a()
	h.Write([]byte(discoveryURL))
	suffix := "/" + strconv.FormatUint(h.Sum64(), 16)
	return sharedMetadataKey + suffix, sharedLeaseKey + suffix
}

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
	cfg      *flow.Config
	instance string // this VM, in the fetch lease
	now      func() time.Time
	// metadataKey and leaseKey are the shared data keys for this provider (idpKeys).
	metadataKey, leaseKey string

	current       *metadata
	sharedBody    []byte // current, as stored in shared data
	fetching      bool
	fetchDeadline time.Time
	forceKeys     bool // a token named an unknown kid: fetch the JWKS again
	waiters       []waiter
	failures      int
	nextAttempt   time.Time
	lastErr       error
	tickPeriod    time.Duration
}

func newIDPCache(cfg *flow.Config, instance string, now func() time.Time) *idpCache {
	c := &idpCache{cfg: cfg, instance: instance, now: now}
	c.metadataKey, c.leaseKey = idpKeys(cfg.DiscoveryURL())
	return c
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
// at most once per jwks.MinUnknownKeyRefresh, with a compare-and-swap on shared data.
func (c *idpCache) claimUnknownKidRefresh() bool {
	now := c.now()
	value, cas, err := proxywasm.GetSharedData(sharedKidRefreshKey)
	var last time.Time
	if err == nil && len(value) == 8 {
		last = time.Unix(0, int64(binary.LittleEndian.Uint64(value)))
	}
	if !jwks.RefreshAllowed(last, now) {
		return false
	}
	stamp := binary.LittleEndian.AppendUint64(nil, uint64(now.UnixNano()))
	return proxywasm.SetSharedData(sharedKidRefreshKey, stamp, cas) == nil
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
		getKeys(c.currentDiscoveryBody(), c.current.disc)
		return
	}
	req, err := c.cfg.DiscoveryRequest()
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

// The shared copy: fetch time, then the discovery document's and the JWKS's bodies as the
// provider sent them, so that every VM parses the same bytes.

func (c *idpCache) store(md *metadata, disc, keys []byte) {
	value := binary.LittleEndian.AppendUint64(nil, uint64(md.fetchedAt.UnixNano()))
	value = binary.LittleEndian.AppendUint32(value, uint32(len(disc)))
	value = append(append(value, disc...), keys...)
	if err := proxywasm.SetSharedData(c.metadataKey, value, 0); err != nil {
		proxywasm.LogWarnf("entra-auth: cannot share the identity provider's metadata with the other workers: %v", err)
	}
	c.sharedBody = value
}

func (c *idpCache) currentDiscoveryBody() []byte {
	if len(c.sharedBody) < 12 {
		return nil
	}
	n := binary.LittleEndian.Uint32(c.sharedBody[8:])
	return c.sharedBody[12 : 12+n]
}

// adoptShared takes the shared metadata when it is newer than this VM's, hands it to
// every waiter (it is newer than what any of them saw, including those waiting for an
// unknown kid), and reports whether it did.
func (c *idpCache) adoptShared() bool {
	value, _, err := proxywasm.GetSharedData(c.metadataKey)
	if err != nil || len(value) < 12 {
		return false
	}
	fetchedAt := time.Unix(0, int64(binary.LittleEndian.Uint64(value)))
	if c.current != nil && !fetchedAt.After(c.current.fetchedAt) {
		return false
	}
	n := binary.LittleEndian.Uint32(value[8:])
	if uint64(n) > uint64(len(value)-12) {
		return false
	}
	discBody, keysBody := value[12:12+n], value[12+n:]
	disc, err := flow.ParseDiscovery(c.cfg, 200, discBody)
	if err != nil {
		return false
	}
	keys, err := flow.ParseKeys(200, keysBody)
	if err != nil {
		return false
	}
	c.current = &metadata{fetchedAt: fetchedAt, disc: disc, keys: keys, verifier: c.verifier(disc), access: c.accessVerifier(disc)}
	c.sharedBody = bytes.Clone(value)
	c.failures, c.lastErr, c.nextAttempt, c.forceKeys = 0, nil, time.Time{}, false
	c.resolve(c.current, nil)
	return true
}

// The fetch lease lets one VM fetch while the others wait for its result. It expires, so
// a VM that dies mid-fetch does not block the rest. Shared data's compare-and-swap only
// guards keys that exist; the first lease is written blind and read back, and in the
// rare race where two VMs both see no lease, both fetch once.

func (c *idpCache) takeLease(now time.Time) bool {
	value, cas, err := proxywasm.GetSharedData(c.leaseKey)
	found := err == nil
	if found {
		holder, until, ok := strings.Cut(string(value), "|")
		expiry, _ := strconv.ParseInt(until, 10, 64)
		if ok && holder != c.instance && now.UnixNano() < expiry {
			return false
		}
	}
	mine := []byte(c.instance + "|" + strconv.FormatInt(now.Add(3*c.cfg.IDPTimeout+time.Second).UnixNano(), 10))
	if !found {
		if proxywasm.SetSharedData(c.leaseKey, mine, 0) != nil {
			return false
		}
		back, _, err := proxywasm.GetSharedData(c.leaseKey)
		return err == nil && bytes.Equal(back, mine)
	}
	return proxywasm.SetSharedData(c.leaseKey, mine, cas) == nil
}

func (c *idpCache) releaseLease() {
	value, cas, err := proxywasm.GetSharedData(c.leaseKey)
	if err != nil || !strings.HasPrefix(string(value), c.instance+"|") {
		return
	}
	if err := proxywasm.SetSharedData(c.leaseKey, []byte(c.instance+"|0"), cas); err != nil {
		// Not given back, the lease runs out at its expiry; the next fetch waits for that.
		proxywasm.LogDebugf("entra-auth: cannot give back the metadata fetch lease: %v", err)
	}
}
