package envoyhost

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// vm is one Wasm VM: one module instance, owned by one goroutine (its loop), as an Envoy
// worker thread owns its VM. Everything below the loop's fields is touched only on that
// goroutine: by tasks, and by host functions the module calls while a task runs.
type vm struct {
	host  *Host
	index int
	mod   api.Module
	ctx   context.Context // carries the vm to host functions

	tasks   chan func()
	stopped chan struct{}
	// closed is set, under closeMu, when tasks is closed: a post after that is dropped.
	// Posts hold the read lock while they send, so a send never races the close.
	closeMu sync.RWMutex
	closed  bool

	exports struct {
		malloc, onContextCreate, onVMStart, onConfigure, onRequestHeaders, onRequestBody,
		onResponseHeaders, onResponseBody, onHTTPCallResponse, onTick, onQueueReady,
		onDone, onLog, onDelete api.Function
	}

	rootID        uint32          // the plugin's root context: streams, ticks and calls belong to it
	retiring      map[uint32]bool // root contexts of replaced configurations waiting for proxy_done
	nextContextID uint32
	currentID     uint32 // context of the callback in progress
	effectiveID   uint32 // set by proxy_set_effective_context for the rest of that callback
	streams       map[uint32]*stream
	starting      bool   // in _initialize: Envoy restricts which imports may be called
	allocating    bool   // in proxy_on_memory_allocate: so it does, more strictly
	configuring   bool   // in proxy_on_configure: the plugin configuration is readable
	configuration []byte // the plugin configuration being applied
	failed        error
	hasFailed     atomic.Bool // failed != nil, readable from any goroutine
	after         []func()    // Envoy's "after VM call" actions, run when the task ends
	draining      bool
	status        struct {
		code    uint32
		message string
	}

	calls        map[uint32]*pendingCall
	nextCallID   uint32
	callResponse *callResponse // during proxy_on_http_call_response

	tickStop    chan struct{}
	tickPending atomic.Bool

	metricNames   map[uint32]string
	nextMetricIDs [3]uint32

	startingUp   bool // in start: warnings and errors are kept for the start error
	startLog     []string
	startLogOpen bool // the last startLog entry is a stderr write that did not end its line
	pendingDone  bool // proxy_on_done answered false; waiting for proxy_done
	done         chan struct{}
}

type vmKey struct{}

func vmFrom(ctx context.Context) *vm { return ctx.Value(vmKey{}).(*vm) }

func newVM(h *Host, index int) *vm {
	v := &vm{
		host:          h,
		index:         index,
		tasks:         make(chan func(), 256),
		stopped:       make(chan struct{}),
		streams:       map[uint32]*stream{},
		calls:         map[uint32]*pendingCall{},
		retiring:      map[uint32]bool{},
		metricNames:   map[uint32]string{},
		nextContextID: 1,
		nextCallID:    1,
		done:          make(chan struct{}),
	}
	v.nextMetricIDs = [3]uint32{metricCounter, metricGauge, metricHistogram}
	v.ctx = context.WithValue(context.Background(), vmKey{}, v)
	go v.loop()
	return v
}

func (v *vm) loop() {
	defer close(v.stopped)
	for task := range v.tasks {
		task()
		v.drainAfter()
	}
}

// post queues fn to run on the VM's goroutine. It must not be called from that goroutine.
// Once the VM is stopped, fn is dropped: it would have nothing to act on (an upstream
// answer arriving after the host closed, say).
func (v *vm) post(fn func()) {
	v.closeMu.RLock()
	defer v.closeMu.RUnlock()
	if !v.closed {
		v.tasks <- fn
	}
}

// run runs fn on the VM's goroutine and waits for it (and the actions it queued).
func (v *vm) run(fn func()) {
	finished := make(chan struct{})
	v.post(func() {
		defer close(finished)
		fn()
		v.drainAfter()
	})
	select {
	case <-finished:
	case <-v.stopped:
	}
}

func (v *vm) stop() {
	v.closeMu.Lock()
	if !v.closed {
		v.closed = true
		close(v.tasks)
	}
	v.closeMu.Unlock()
	<-v.stopped
}

// afterCall queues an action to run once the current callback has returned, as Envoy
// defers continue, local replies and http-call deliveries made from inside the VM.
func (v *vm) afterCall(fn func()) { v.after = append(v.after, fn) }

func (v *vm) drainAfter() {
	if v.draining {
		return
	}
	v.draining = true
	defer func() { v.draining = false }()
	for len(v.after) > 0 {
		fn := v.after[0]
		v.after = v.after[1:]
		fn()
	}
}

// start instantiates the module and runs Envoy's start sequence: _initialize, then the
// root context's proxy_on_context_create, proxy_on_vm_start and proxy_on_configure.
func (v *vm) start(compiled wazero.CompiledModule, configuration []byte) error {
	v.startingUp = true
	defer func() { v.startingUp, v.startLog = false, nil }()
	cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
	mod, err := v.host.runtime.InstantiateModule(v.ctx, compiled, cfg)
	if err != nil {
		return fmt.Errorf("instantiate module: %w", err)
	}
	v.mod = mod
	e := &v.exports
	e.malloc = mod.ExportedFunction("malloc")
	if e.malloc == nil {
		e.malloc = mod.ExportedFunction("proxy_on_memory_allocate")
	}
	if e.malloc == nil {
		return errors.New("Wasm module is missing malloc function (export proxy_on_memory_allocate)")
	}
	for name, fn := range map[string]*api.Function{
		"proxy_on_context_create":     &e.onContextCreate,
		"proxy_on_vm_start":           &e.onVMStart,
		"proxy_on_configure":          &e.onConfigure,
		"proxy_on_request_headers":    &e.onRequestHeaders,
		"proxy_on_request_body":       &e.onRequestBody,
		"proxy_on_response_headers":   &e.onResponseHeaders,
		"proxy_on_response_body":      &e.onResponseBody,
		"proxy_on_http_call_response": &e.onHTTPCallResponse,
		"proxy_on_tick":               &e.onTick,
		"proxy_on_queue_ready":        &e.onQueueReady,
		"proxy_on_done":               &e.onDone,
		"proxy_on_log":                &e.onLog,
		"proxy_on_delete":             &e.onDelete,
	} {
		*fn = mod.ExportedFunction(name)
	}

	if init := mod.ExportedFunction("_initialize"); init != nil {
		v.starting = true
		_, err := init.Call(v.ctx)
		v.starting = false
		if err != nil {
			return fmt.Errorf("_initialize: %w", err)
		}
	} else if start := mod.ExportedFunction("_start"); start != nil {
		if _, err := start.Call(v.ctx); err != nil {
			return fmt.Errorf("_start: %w", err)
		}
	}
	_, err = v.startRoot(configuration)
	return err
}

// startRoot creates a root context for the plugin with configuration, as
// proxy-wasm-cpp-host's WasmBase::start and configure do for each plugin (each
// configuration a plugin is pushed with): proxy_on_context_create, proxy_on_vm_start,
// then proxy_on_configure.
func (v *vm) startRoot(configuration []byte) (uint32, error) {
	e := &v.exports
	root := v.newContextID()
	v.rootID = root
	v.callback(e.onContextCreate, root, uint64(root), 0)
	if v.failed != nil {
		return root, v.startError("proxy_on_context_create")
	}
	if ok, called := v.callback(e.onVMStart, root, uint64(root), uint64(len(v.host.cfg.VMConfiguration))); v.failed != nil || (called && ok == 0) {
		return root, v.startError("VM start (proxy_on_vm_start returned false)")
	}
	v.configuring, v.configuration = true, configuration
	ok, called := v.callback(e.onConfigure, root, uint64(root), uint64(len(configuration)))
	v.configuring, v.configuration = false, nil
	if v.failed != nil || (called && ok == 0) {
		return root, v.startError("plugin configuration (proxy_on_configure returned false)")
	}
	return root, nil
}

// reconfigure gives the VM a plugin with a new configuration, as Envoy does on a
// configuration push: a new root context starts and takes the new streams; the old one
// gets proxy_on_done and, once it is done, proxy_on_delete, and its calls are cancelled.
func (v *vm) reconfigure(configuration []byte) error {
	v.startingUp = true
	defer func() { v.startingUp, v.startLog = false, nil }()
	old := v.rootID
	if _, err := v.startRoot(configuration); err != nil {
		v.rootID = old // the old configuration goes on
		return err
	}
	v.retire(old)
	return nil
}

// retire ends a root context that is no longer the plugin's.
func (v *vm) retire(root uint32) {
	if res, called := v.callback(v.exports.onDone, root, uint64(root)); called && res == 0 {
		v.retiring[root] = true // proxy_done will finish it
		return
	}
	v.deleteRoot(root)
}

func (v *vm) deleteRoot(root uint32) {
	delete(v.retiring, root)
	v.callback(v.exports.onDelete, root, uint64(root))
	for token, c := range v.calls {
		if c.root == root {
			c.cancel()
			delete(v.calls, token)
		}
	}
}

// kill destroys the VM as Envoy destroys its canary: no proxy_on_done or
// proxy_on_delete, its dispatched calls cancelled, its ticks stopped.
func (v *vm) kill() {
	v.setTickPeriod(0)
	for token, c := range v.calls {
		c.cancel()
		delete(v.calls, token)
	}
	close(v.done)
}

func (v *vm) startError(step string) error {
	msg := "failed " + step
	if v.failed != nil {
		msg += ": " + v.failed.Error()
	}
	if len(v.startLog) > 0 {
		msg += "; the module logged: " + strings.TrimSpace(strings.Join(v.startLog, "\n"))
	}
	return errors.New(msg)
}

func (v *vm) newContextID() uint32 {
	id := v.nextContextID
	v.nextContextID++
	return id
}

// callback calls a module export on behalf of contextID. called is false when the
// module does not export fn or the VM has failed. A trap fails the VM, as in Envoy.
func (v *vm) callback(fn api.Function, contextID uint32, args ...uint64) (res uint64, called bool) {
	if fn == nil || v.failed != nil {
		return 0, false
	}
	prevCurrent, prevEffective := v.currentID, v.effectiveID
	v.currentID, v.effectiveID = contextID, 0
	start := time.Now()
	out, err := fn.Call(v.ctx, args...)
	v.host.vmNanos.Add(int64(time.Since(start)))
	v.currentID, v.effectiveID = prevCurrent, prevEffective
	if err != nil {
		v.fail(contextID, fmt.Errorf("%s: %w", fn.Definition().ExportNames()[0], err))
		return 0, false
	}
	if len(out) > 0 {
		res = out[0]
	}
	return res, true
}

// fail marks the VM failed, as Envoy does after a trap in the callback of context
// trapped: no more calls go into it. The stream whose callback trapped is answered 503 (FAIL_CLOSED, FAIL_RELOAD) or goes on
// as if the filter had answered Continue (FAIL_OPEN), as cpp-host's CHECK_FAIL_HTTP
// decides; every other stream on the VM is answered 503 (Envoy leaves paused ones to
// their timeouts; failing them at once keeps tests fast and is no more lenient).
func (v *vm) fail(trapped uint32, err error) {
	if v.failed != nil {
		return
	}
	v.failed = err
	v.hasFailed.Store(true)
	v.logf(LogCritical, "wasm VM %s failed: %v", strings.TrimPrefix(vmName(v.index), "vm "), err)
	for id, s := range v.streams {
		if id == trapped && v.host.cfg.FailurePolicy == FailOpen {
			v.afterCall(s.failOpen)
			continue
		}
		s.failStream()
	}
}

// context returns the id host calls act on: the effective context if one was set and
// still exists, else the one whose callback is running.
func (v *vm) context() uint32 {
	if v.effectiveID != 0 {
		if _, ok := v.streams[v.effectiveID]; ok || v.isRoot(v.effectiveID) {
			return v.effectiveID
		}
	}
	return v.currentID
}

// currentRoot is the root context of the context host calls act on: itself for a root
// context, its plugin's for a stream. Dispatched calls and queues belong to it.
func (v *vm) currentRoot() uint32 {
	id := v.context()
	if s, ok := v.streams[id]; ok {
		return s.root
	}
	return id
}

// isRoot reports whether id is a root context of this VM that has not been deleted.
func (v *vm) isRoot(id uint32) bool { return id == v.rootID || v.retiring[id] }

// stream returns the stream host calls act on, or nil in a root context.
func (v *vm) stream() *stream { return v.streams[v.context()] }

// The log's name for VMs that serve no streams: the one that runs on Envoy's main
// thread, and the canary Envoy starts and destroys before the others.
const (
	MainThreadVM = -2
	CanaryVM     = -3
)

func (v *vm) logf(level LogLevel, format string, args ...any) {
	v.host.log(v.index, level, fmt.Sprintf(format, args...))
}

// Memory access for host functions. Reads copy: the module's memory can move as soon
// as it runs again.

func (v *vm) read(ptr, size uint32) ([]byte, bool) {
	b, ok := v.mod.Memory().Read(ptr, size)
	if !ok {
		return nil, false
	}
	return append([]byte(nil), b...), true
}

func (v *vm) readString(ptr, size uint32) (string, bool) {
	b, ok := v.mod.Memory().Read(ptr, size)
	return string(b), ok
}

func (v *vm) writeU32(ptr, value uint32) bool { return v.mod.Memory().WriteUint32Le(ptr, value) }

func (v *vm) writeU64(ptr uint32, value uint64) bool {
	return v.mod.Memory().WriteUint64Le(ptr, value)
}

// copyOut hands data to the module the way Envoy does: memory from the module's own
// allocator, its address and size written at ptrPtr and sizePtr. Empty data is address 0.
func (v *vm) copyOut(data []byte, ptrPtr, sizePtr uint32) result {
	var addr uint32
	if len(data) > 0 {
		stack := []uint64{uint64(len(data))}
		v.allocating = true
		err := v.exports.malloc.CallWithStack(v.ctx, stack)
		v.allocating = false
		if err != nil {
			panic(fmt.Errorf("module allocator: %w", err))
		}
		addr = uint32(stack[0])
		if addr == 0 || !v.mod.Memory().Write(addr, data) {
			return resultInvalidMemoryAccess
		}
	}
	if !v.writeU32(ptrPtr, addr) || !v.writeU32(sizePtr, uint32(len(data))) {
		return resultInvalidMemoryAccess
	}
	return resultOk
}

// Ticks: one timer per VM, for the root context, as Envoy keeps one per worker.

func (v *vm) setTickPeriod(period time.Duration) {
	if v.tickStop != nil {
		close(v.tickStop)
		v.tickStop = nil
	}
	if period <= 0 {
		return
	}
	stop := make(chan struct{})
	v.tickStop = stop
	go func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if v.tickPending.Swap(true) {
					continue // the previous tick has not run yet: Envoy's timer does not pile up
				}
				v.post(func() {
					v.tickPending.Store(false)
					v.callback(v.exports.onTick, v.rootID, uint64(v.rootID))
				})
			}
		}
	}()
}

// shutdown runs Envoy's plugin shutdown: streams are reset, then proxy_on_done on the
// root context, then proxy_on_delete, at once or after the module calls proxy_done (its
// ticks and calls keep running until then, so it can finish what it started).
func (v *vm) shutdown() {
	for _, s := range v.streams {
		s.reset()
	}
	res, called := v.callback(v.exports.onDone, v.rootID, uint64(v.rootID))
	if called && res == 0 {
		v.pendingDone = true
		return
	}
	v.finishShutdown()
}

func (v *vm) finishShutdown() {
	select {
	case <-v.done:
		return // already deleted
	default:
	}
	v.pendingDone = false
	v.setTickPeriod(0)
	v.deleteRoot(v.rootID)
	for root := range v.retiring {
		v.deleteRoot(root)
	}
	close(v.done)
}

// le32 reads a little-endian uint32 (for iovecs).
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
