package envoyhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
)

// Config is what an Envoy bootstrap would say about the filter: the module, its VM and
// plugin configuration, the clusters it may call, and how many workers run it.
type Config struct {
	// Module is the compiled .wasm file.
	Module []byte
	// PluginName, RootID and VMID are the plugin's name, root_id and vm_id; they are
	// readable as the plugin_name, plugin_root_id and plugin_vm_id properties, and
	// VMID scopes shared data and queues as in Envoy.
	PluginName, RootID, VMID string
	// VMConfiguration is vm_config.configuration; PluginConfiguration is configuration.
	VMConfiguration, PluginConfiguration []byte
	// Env is vm_config.environment_variables, as the module's WASI environment.
	Env map[string]string
	// Clusters maps cluster names to base URLs (scheme://host:port, no path): where
	// proxy_http_call sends a call to that cluster.
	Clusters map[string]string
	// Upstream is the base URL of the route's cluster: where requests the filter lets
	// through go.
	Upstream string
	// Concurrency is the number of workers, each with its own VM (Envoy's --concurrency).
	// Default 1.
	Concurrency int
	// LogLevel is the lowest level written (Envoy's --component-log-level wasm:LEVEL).
	// The zero value is trace; use LogInfo for Envoy's default.
	LogLevel LogLevel
	// Log receives log lines (the module's and the host's). Default: standard error.
	Log func(Log)
	// RequestBodyLimit bounds a request body the host reads before running the filter;
	// a larger one is answered 413. Default 8 MiB.
	RequestBodyLimit int64
	// CallResponseLimit bounds the body of a dispatched call's answer; a larger one fails
	// the call, as Envoy's buffer limit does. Default 8 MiB.
	CallResponseLimit int64
	// RouteTimeout bounds an upstream exchange (Envoy's route timeout, 15 s by default).
	// Negative means none.
	RouteTimeout time.Duration
	// Transport carries upstream requests and dispatched calls. Default: a clone of
	// http.DefaultTransport.
	Transport http.RoundTripper
	// StreamIdleTimeout is the connection manager's stream_idle_timeout: a stream with
	// no activity for that long, until its response starts, is answered 408. Default 5
	// minutes, as Envoy's; negative means none.
	StreamIdleTimeout time.Duration
	// UseRemoteAddress is the connection manager's use_remote_address, as an edge proxy
	// sets it: the peer is appended to x-forwarded-for, and the client's
	// x-forwarded-proto is replaced by the connection's scheme unless
	// XFFNumTrustedHops (xff_num_trusted_hops) says a trusted proxy set it.
	UseRemoteAddress  bool
	XFFNumTrustedHops int
	// FailurePolicy is the plugin's failure_policy: what happens to requests once a VM
	// has failed (a trap, a Go panic). The zero value is FAIL_CLOSED, Envoy's default.
	FailurePolicy FailurePolicy
	// ReloadBackoff is reload_config.backoff.base_interval for FAIL_RELOAD: a failed
	// VM is replaced at most this often. Default 1 s, as Envoy's.
	ReloadBackoff time.Duration
	// Envoy is the release whose answers the host gives where releases differ; the zero
	// value is the oldest supported (Envoy133).
	Envoy Release
	// CompilationCacheDir, if set, keeps compiled code across runs.
	CompilationCacheDir string
}

// Log is one log line.
type Log struct {
	Time    time.Time
	VM      int // worker index, -1 for the host itself
	Level   LogLevel
	Message string
}

// Host is a proxy-wasm host that behaves as Envoy's (1.33+) does for one HTTP filter:
// the same imports, the same WASI answers, one single-threaded VM per worker with many
// streams in flight, shared data and queues across VMs, dispatched calls to named
// clusters. It serves HTTP: each request runs through a VM, then to the upstream.
type Host struct {
	cfg       Config
	compiled  wazero.CompiledModule
	main      *vm   // the VM on Envoy's main thread: ticks and calls, no streams
	vms       []*vm // one per worker; vmMu guards the slots, which FAIL_RELOAD refills
	vmMu      sync.RWMutex
	loadedAt  []time.Time // when each worker's VM was last started, for the reload backoff
	runtime   wazero.Runtime
	clusters  map[string]*url.URL
	upstream  *url.URL
	transport http.RoundTripper
	next      atomic.Uint32
	shared    sharedData
	queues    sharedQueues
	metrics   metricStore
	logMu     sync.Mutex
	// reconfigureMu keeps configuration pushes one at a time; configMu guards
	// cfg.PluginConfiguration, which pushes change.
	reconfigureMu sync.Mutex
	configMu      sync.Mutex
	vmNanos       atomic.Int64 // time spent inside callbacks, all VMs
}

// New compiles the module, checks that it imports only what Envoy provides, and starts
// Concurrency VMs through Envoy's start sequence. A plugin that fails to start is an
// error that carries what the module logged about it.
func New(ctx context.Context, cfg Config) (*Host, error) {
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 1
	}
	if cfg.RequestBodyLimit <= 0 {
		cfg.RequestBodyLimit = 8 << 20
	}
	if cfg.CallResponseLimit <= 0 {
		cfg.CallResponseLimit = 8 << 20
	}
	if cfg.RouteTimeout == 0 {
		cfg.RouteTimeout = 15 * time.Second
	}
	if cfg.ReloadBackoff <= 0 {
		cfg.ReloadBackoff = time.Second
	}
	if cfg.StreamIdleTimeout == 0 {
		cfg.StreamIdleTimeout = 5 * time.Minute
	}
	h := &Host{cfg: cfg, clusters: map[string]*url.URL{}, transport: cfg.Transport}
	if h.transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.DisableCompression = true // pass content-encoding through untouched, as a proxy must
		// Keep connections to the upstream and the clusters open for reuse, as Envoy's
		// connection pools do: net/http keeps 2 per host by default, so under concurrent
		// load most requests paid for a new connection (10% of the runner's CPU).
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 1024, 1024
		h.transport = t
	}
	h.shared.init()
	h.queues.init()
	h.metrics.init()
	for name, raw := range cfg.Clusters {
		u, err := parseBaseURL(raw)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", name, err)
		}
		h.clusters[name] = u
	}
	if cfg.Upstream != "" {
		u, err := parseBaseURL(cfg.Upstream)
		if err != nil {
			return nil, fmt.Errorf("upstream: %w", err)
		}
		h.upstream = u
	}

	rc := wazero.NewRuntimeConfig().WithMemoryLimitPages(maxMemoryPages)
	if cfg.CompilationCacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CompilationCacheDir)
		if err != nil {
			return nil, fmt.Errorf("compilation cache: %w", err)
		}
		rc = rc.WithCompilationCache(cache)
	}
	h.runtime = wazero.NewRuntimeWithConfig(ctx, rc)
	compiled, err := h.runtime.CompileModule(ctx, cfg.Module)
	if err != nil {
		h.runtime.Close(ctx)
		return nil, fmt.Errorf("compile module: %w", err)
	}
	if err := checkModule(compiled); err != nil {
		h.runtime.Close(ctx)
		return nil, err
	}
	if err := h.instantiateHostModules(ctx); err != nil {
		h.runtime.Close(ctx)
		return nil, err
	}
	h.compiled = compiled
	// Envoy's order (proxy-wasm-cpp-host createWasm and WasmHandleBase::canary; Envoy's
	// PluginConfig, whose thread-local slot starts the plugin on every thread): a canary
	// VM runs the start sequence and is destroyed, then the main thread's VM and each
	// worker's start.
	if err := h.canary(cfg.PluginConfiguration); err != nil {
		h.runtime.Close(ctx)
		return nil, err
	}
	h.main = newVM(h, MainThreadVM)
	var startErr error
	if h.main.run(func() { startErr = h.main.start(compiled, cfg.PluginConfiguration) }); startErr != nil {
		h.Close(ctx)
		return nil, fmt.Errorf("wasm VM on the main thread: %w", startErr)
	}
	for i := 0; i < cfg.Concurrency; i++ {
		v := newVM(h, i)
		h.vms = append(h.vms, v)
		h.loadedAt = append(h.loadedAt, time.Now())
		v.run(func() { startErr = v.start(compiled, cfg.PluginConfiguration) })
		if startErr != nil {
			h.Close(ctx)
			return nil, fmt.Errorf("wasm VM %d: %w", i, startErr)
		}
	}
	return h, nil
}

// canary starts the plugin with configuration in a VM of its own and destroys it, as
// Envoy does before it starts a plugin anywhere else, at start and at each
// configuration push (WasmHandleBase::canary): proxy_on_done and proxy_on_delete are
// never called, and its dispatched calls never answer. What it wrote to shared data
// stays.
func (h *Host) canary(configuration []byte) error {
	v := newVM(h, CanaryVM)
	var err error
	v.run(func() {
		err = v.start(h.compiled, configuration)
		v.kill()
	})
	v.stop()
	if v.mod != nil {
		v.mod.Close(context.Background())
	}
	if err != nil {
		return fmt.Errorf("wasm VM canary: %w", err)
	}
	return nil
}

// Reconfigure pushes a new plugin configuration, as an xDS update of the filter's
// configuration does in Envoy: a canary VM tries it first, and a configuration it
// refuses changes nothing (the error says why); then every VM, the main thread's and
// each worker's, starts a root context with it, and the old root contexts are shut down.
func (h *Host) Reconfigure(configuration []byte) error {
	h.reconfigureMu.Lock()
	defer h.reconfigureMu.Unlock()
	if err := h.canary(configuration); err != nil {
		return err
	}
	h.configMu.Lock()
	h.cfg.PluginConfiguration = configuration
	h.configMu.Unlock()
	var errs []error
	for _, v := range h.allVMs() {
		var err error
		v.run(func() { err = v.reconfigure(configuration) })
		if err != nil {
			errs = append(errs, fmt.Errorf("wasm VM %s: %w", strings.TrimPrefix(vmName(v.index), "vm "), err))
		}
	}
	return errors.Join(errs...)
}

// allVMs are the VMs that live on: the main thread's, then the workers'.
func (h *Host) allVMs() []*vm {
	h.vmMu.RLock()
	defer h.vmMu.RUnlock()
	if h.main == nil {
		return slices.Clone(h.vms)
	}
	return append([]*vm{h.main}, h.vms...)
}

// worker returns worker i's VM for a new stream. Under FAIL_RELOAD a failed VM is
// replaced by a new one, started with the current configuration, at most once per
// ReloadBackoff (Envoy's PluginConfig::maybeReloadHandleIfNeeded); until then, and if
// the new one fails to start, the failed VM answers.
func (h *Host) worker(i int) *vm {
	h.vmMu.RLock()
	v := h.vms[i]
	h.vmMu.RUnlock()
	if h.cfg.FailurePolicy != FailReload || !v.hasFailed.Load() {
		return v
	}
	h.vmMu.Lock()
	defer h.vmMu.Unlock()
	if v != h.vms[i] || time.Since(h.loadedAt[i]) < h.cfg.ReloadBackoff {
		return h.vms[i]
	}
	h.loadedAt[i] = time.Now()
	fresh := newVM(h, i)
	var err error
	fresh.run(func() { err = fresh.start(h.compiled, h.configuration()) })
	if err != nil {
		h.log(i, LogError, "reloading the failed VM: "+err.Error())
		fresh.stop()
		return v
	}
	h.log(i, LogInfo, "the failed VM was replaced (failure_policy FAIL_RELOAD)")
	h.vms[i] = fresh
	go func() { v.run(v.shutdown); v.stop() }()
	return fresh
}

// maxMemoryPages is Envoy's limit on a module's memory: 1 GiB of 64 KiB pages.
const maxMemoryPages = 1 << 14

// checkModule refuses what Envoy would refuse to load: an import Envoy does not provide,
// a missing or unknown ABI version export.
func checkModule(m wazero.CompiledModule) error {
	var problems []string
	for _, f := range m.ImportedFunctions() {
		module, name, _ := f.Import()
		if !provided[module+"."+name] {
			problems = append(problems, fmt.Sprintf("imports %s.%s, which Envoy does not provide", module, name))
		}
	}
	if len(m.ImportedMemories()) > 0 {
		problems = append(problems, "imports a memory; Envoy provides none (the module must export its own)")
	}
	exports := m.ExportedFunctions()
	_, v020 := exports["proxy_abi_version_0_2_0"]
	_, v021 := exports["proxy_abi_version_0_2_1"]
	if !v020 && !v021 {
		problems = append(problems, "exports no proxy_abi_version_0_2_0 or proxy_abi_version_0_2_1 (missing or unknown Proxy-Wasm ABI version)")
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("module refused: %s", strings.Join(problems, "; "))
	}
	return nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%q: want http://host:port or https://host:port", raw)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return nil, fmt.Errorf("%q: a cluster is a host and port; the path comes from each request", raw)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

// Close shuts every VM down as Envoy does on drain (proxy_on_done, then proxy_on_delete,
// waiting for proxy_done when the module asks for time) and releases the runtime.
func (h *Host) Close(ctx context.Context) error {
	for _, v := range h.allVMs() {
		if v.mod != nil {
			v.run(v.shutdown)
			select {
			case <-v.done:
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
				h.log(v.index, LogWarn, "proxy_done was not called within 5s of proxy_on_done; deleting the root context anyway")
				v.run(v.finishShutdown)
			}
		}
		v.stop()
	}
	return h.runtime.Close(ctx)
}

// ConnContext pins each connection to one worker, as Envoy does; use it as
// http.Server.ConnContext. Without it each request picks a worker in turn.
func (h *Host) ConnContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, workerKey{}, connInfo{worker: h.pickWorker(), id: connIDs.Add(1)})
}

type workerKey struct{}

func (h *Host) pickWorker() int { return int(h.next.Add(1)-1) % len(h.vms) }

func (h *Host) log(vmIndex int, level LogLevel, msg string) {
	if level < h.cfg.LogLevel {
		return
	}
	entry := Log{Time: time.Now(), VM: vmIndex, Level: level, Message: msg}
	if h.cfg.Log != nil {
		h.cfg.Log(entry)
		return
	}
	h.logMu.Lock()
	defer h.logMu.Unlock()
	writeLog(os.Stderr, entry)
}

// writeLog formats a line as Envoy does for its wasm component.
func writeLog(w io.Writer, l Log) {
	who := vmName(l.VM)
	fmt.Fprintf(w, "[%s][%s][wasm] %s: %s\n", l.Time.Format("2006-01-02 15:04:05.000"), l.Level, who, l.Message)
}

// configuration is the plugin configuration now in force.
func (h *Host) configuration() []byte {
	h.configMu.Lock()
	defer h.configMu.Unlock()
	return h.cfg.PluginConfiguration
}

// vmName names a VM in logs and errors.
func vmName(index int) string {
	switch index {
	case -1:
		return "host"
	case MainThreadVM:
		return "main thread"
	case CanaryVM:
		return "canary"
	}
	return fmt.Sprintf("vm %d", index)
}

// VMTime is the total time spent inside the module's callbacks (host functions they
// called included), over all VMs: the filter's own cost, without this host's plumbing.
func (h *Host) VMTime() time.Duration { return time.Duration(h.vmNanos.Load()) }

// MemorySizes returns the size in bytes of each VM's linear memory, for tests that watch
// the module's memory over many requests.
func (h *Host) MemorySizes() []uint32 {
	h.vmMu.RLock()
	workers := slices.Clone(h.vms)
	h.vmMu.RUnlock()
	sizes := make([]uint32, len(workers))
	for i, v := range workers {
		v.run(func() { sizes[i] = v.mod.Memory().Size() })
	}
	return sizes
}
