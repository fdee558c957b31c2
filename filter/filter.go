package filter

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/flow"
	"github.com/entra-auth/entra-auth/internal/sharedstate"
)

// NewVMContext returns the root of the filter's context tree, for proxywasm.SetVMContext.
func NewVMContext() types.VMContext { return &vmContext{} }

type vmContext struct {
	types.DefaultVMContext
	// shared is the VM's shared data; nil is the host's (tests give others).
	shared sharedstate.Store
}

func (vc *vmContext) NewPluginContext(id uint32) types.PluginContext {
	shared := vc.shared
	if shared == nil {
		shared = hostStore{}
	}
	return &plugin{id: id, now: time.Now, shared: shared, refreshing: map[string][]refreshOutcome{}, renewed: newRenewedSessions(),
		peerWaits: map[string]peerWait{}, claimed: map[string]bool{}}
}

// plugin is the root context: one per plugin configuration and VM.
type plugin struct {
	types.DefaultPluginContext
	id      uint32
	now     func() time.Time
	shared  sharedstate.Store
	flow    *flow.Flow
	idp     *idpCache
	metrics metrics
	// refreshing holds, by session id, the requests waiting for a refresh in flight;
	// renewed the sessions refreshed lately; peerWaits the refreshes another VM makes that
	// requests here wait for; claimed the refreshes this VM holds the shared claim of.
	refreshing map[string][]refreshOutcome
	renewed    renewedSessions
	peerWaits  map[string]peerWait
	claimed    map[string]bool
}

func (p *plugin) OnPluginStart(configurationSize int) (status types.OnPluginStartStatus) {
	defer func() {
		if v := recover(); v != nil {
			logPanic("", "OnPluginStart", v)
			status = types.OnPluginStartStatusFailed
		}
	}()
	var data []byte
	if configurationSize > 0 {
		var err error
		if data, err = proxywasm.GetPluginConfiguration(); err != nil {
			proxywasm.LogCriticalf("entra-auth: cannot read the plugin configuration: %v", err)
			return types.OnPluginStartStatusFailed
		}
	}
	cfg, err := config.Parse(data, os.LookupEnv)
	if err != nil {
		logEach(err)
		return types.OnPluginStartStatusFailed
	}
	if p.flow, err = flow.New(cfg, rand.Reader, p.now); err != nil {
		logEach(err)
		return types.OnPluginStartStatusFailed
	}
	var id [6]byte
	_, _ = rand.Read(id[:])
	p.idp = newIDPCache(cfg, hex.EncodeToString(id[:]), p.now, p.shared)
	p.metrics = defineMetrics()
	proxywasm.LogInfof("entra-auth: started for tenant %s, client %s, identity provider %s through cluster %s",
		cfg.TenantID, cfg.ClientID, cfg.Authority, cfg.IDPCluster)
	if us := cfg.UserSync; us != nil {
		proxywasm.LogInfof("entra-auth: user sync to %s through cluster %s (timeout %v, on failure: %s)",
			us.URL, us.Cluster, us.Timeout, map[bool]string{true: "allow", false: "deny"}[us.AllowOnFailure])
	}
	p.createShared()
	// Fetch the provider's metadata on the first tick, not now: Envoy first runs this in
	// a canary VM that it destroys at once, cancelling its calls; a fetch started here
	// would leave the fetch lease with a VM that is gone, and every sign-in would wait
	// for the lease to run out (three IdP timeouts) after each start and push. A canary
	// never ticks.
	p.idp.setTick(busyTick)
	return types.OnPluginStartStatusOK
}

// logEach writes one critical line per configuration problem.
func logEach(err error) {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			proxywasm.LogCritical("entra-auth: " + e.Error())
		}
		return
	}
	proxywasm.LogCritical("entra-auth: " + err.Error())
}

func (p *plugin) OnTick() {
	enterRoot()
	defer func() {
		if v := recover(); v != nil {
			rootPanicked("OnTick", v)
		}
		leaveRoot()
	}()
	injectFault("tick")
	p.pollPeerRefreshes()
	p.idp.tick(len(p.peerWaits) > 0)
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext {
	return &stream{plugin: p, id: id}
}

// metrics are counters Envoy exports with its stats (prefixed by Envoy).
type metrics struct {
	signInsStarted, signInsCompleted, signInsFailed, userSyncFailures proxywasm.MetricCounter
	bearerVerified, bearerCacheHits, bearerRefused, forbidden         proxywasm.MetricCounter
}

func defineMetrics() metrics {
	return metrics{
		signInsStarted:   proxywasm.DefineCounterMetric("entra_auth_sign_ins_started"),
		signInsCompleted: proxywasm.DefineCounterMetric("entra_auth_sign_ins_completed"),
		signInsFailed:    proxywasm.DefineCounterMetric("entra_auth_sign_ins_failed"),
		userSyncFailures: proxywasm.DefineCounterMetric("entra_auth_user_sync_failures"),
		bearerVerified:   proxywasm.DefineCounterMetric("entra_auth_bearer_verified"),
		bearerCacheHits:  proxywasm.DefineCounterMetric("entra_auth_bearer_cache_hits"),
		bearerRefused:    proxywasm.DefineCounterMetric("entra_auth_bearer_refused"),
		forbidden:        proxywasm.DefineCounterMetric("entra_auth_forbidden"),
	}
}

var errNoHeaders = errors.New("filter: cannot read the request headers")
