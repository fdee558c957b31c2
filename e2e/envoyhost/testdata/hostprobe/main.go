// Command hostprobe is a Proxy-Wasm module for testing the host: each request path under
// /probe/ exercises some host functions and answers with what it saw, mostly as JSON in
// a local reply. Other paths pass through; every response gets x-probe-* headers from
// the response callbacks. It is built by the host tests; it is not part of entra-auth.
package main

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"
	"github.com/tidwall/gjson"

	_ "github.com/entra-auth/entra-auth/sdkbinding"
	_ "github.com/entra-auth/entra-auth/sdkbinding/optional"
)

// Imports the SDK does not wrap.

//go:wasmimport env proxy_get_log_level
func proxyGetLogLevel(level *uint32) uint32

//go:wasmimport env proxy_get_status
func proxyGetStatus(code *uint32, message *uint32, messageSize *uint32) uint32

//go:wasmimport env proxy_get_current_time_nanoseconds
func proxyGetCurrentTimeNanoseconds(nanos *uint64) uint32

//go:wasmimport env proxy_get_header_map_size
func proxyGetHeaderMapSize(mapType uint32, size *uint32) uint32

//go:wasmimport env proxy_get_buffer_status
func proxyGetBufferStatus(bufferType uint32, length *uint32, flags *uint32) uint32

//go:wasmimport env proxy_grpc_call
func proxyGrpcCall(a *byte, b uint32, c *byte, d uint32, e *byte, f uint32, g *byte, h uint32, i *byte, j uint32, timeout uint32, token *uint32) uint32

//go:wasmimport env proxy_close_stream
func proxyCloseStream(streamType uint32) uint32

//go:wasmimport env proxy_done
func proxyDone() uint32

//go:wasmimport env proxy_set_effective_context
func proxySetEffectiveContext(id uint32) uint32

//go:wasmimport env proxy_increment_metric
func proxyIncrementMetric(id uint32, offset int64) uint32

//go:wasmimport env proxy_get_metric
func proxyGetMetric(id uint32, value *uint64) uint32

func main() {}

func init() { proxywasm.SetVMContext(&vmContext{}) }

type vmContext struct {
	types.DefaultVMContext
	vmConfig string
	vmName   string
}

func (v *vmContext) OnVMStart(int) types.OnVMStartStatus {
	cfg, _ := proxywasm.GetVMConfiguration()
	v.vmConfig = string(cfg)
	var b [6]byte
	_, _ = rand.Read(b[:])
	v.vmName = "vm-" + hex.EncodeToString(b[:])
	return types.OnVMStartStatus(!gjson.Get(v.vmConfig, "fail_vm_start").Bool())
}

func (v *vmContext) NewPluginContext(id uint32) types.PluginContext {
	return &plugin{vm: v, id: id}
}

type plugin struct {
	types.DefaultPluginContext
	vm         *vmContext
	id         uint32
	config     gjson.Result
	queue      uint32
	requests   proxywasm.MetricCounter
	gauge      proxywasm.MetricGauge
	histogram  proxywasm.MetricHistogram
	ticks      int
	delayDone  bool
	doneCalled bool
}

func (p *plugin) OnPluginStart(size int) types.OnPluginStartStatus {
	raw, err := proxywasm.GetPluginConfiguration()
	if err != nil && size > 0 {
		proxywasm.LogCriticalf("probe: cannot read configuration: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.config = gjson.ParseBytes(raw)
	if p.config.Get("panic_start").Bool() {
		panic("probe: told to panic at start")
	}
	if p.config.Get("fail_start").Bool() {
		proxywasm.LogCritical("probe: told to fail: fail_start is true")
		return types.OnPluginStartStatusFailed
	}
	if ms := p.config.Get("tick_ms").Uint(); ms > 0 {
		if err := proxywasm.SetTickPeriodMilliSeconds(uint32(ms)); err != nil {
			proxywasm.LogCriticalf("probe: tick: %v", err)
			return types.OnPluginStartStatusFailed
		}
	}
	p.delayDone = p.config.Get("delay_done").Bool()
	if p.queue, err = proxywasm.RegisterSharedQueue("probe"); err != nil {
		proxywasm.LogCriticalf("probe: queue: %v", err)
		return types.OnPluginStartStatusFailed
	}
	p.requests = proxywasm.DefineCounterMetric("probe_requests")
	p.gauge = proxywasm.DefineGaugeMetric("probe_gauge")
	p.histogram = proxywasm.DefineHistogramMetric("probe_sizes")
	proxywasm.LogInfof("probe: started on %s", p.vm.vmName)
	return types.OnPluginStartStatusOK
}

// OnTick counts ticks in shared data with a CAS loop, so that VMs racing on the same key
// all get counted.
func (p *plugin) OnTick() {
	p.ticks++
	if p.doneCalled {
		proxywasm.PluginDone()
		return
	}
	for {
		value, cas, err := proxywasm.GetSharedData("ticks")
		n := 0
		if err == nil {
			n, _ = strconv.Atoi(string(value))
		}
		err = proxywasm.SetSharedData("ticks", []byte(strconv.Itoa(n+1)), cas)
		if err == nil {
			break
		}
		if err != types.ErrorStatusCasMismatch {
			proxywasm.LogErrorf("probe: tick: %v", err)
			break
		}
	}
}

func (p *plugin) OnQueueReady(queueID uint32) {
	for {
		item, err := proxywasm.DequeueSharedQueue(queueID)
		if err != nil {
			return
		}
		_ = proxywasm.SetSharedData("queue-last", []byte(string(item)+"@"+p.vm.vmName), 0)
	}
}

func (p *plugin) OnPluginDone() bool {
	if p.delayDone {
		p.doneCalled = true
		proxywasm.LogInfo("probe: done later, on the next tick")
		return false
	}
	return true
}

func (p *plugin) NewHttpContext(id uint32) types.HttpContext {
	return &stream{plugin: p, id: id}
}

type stream struct {
	types.DefaultHttpContext
	plugin  *plugin
	id      uint32
	path    string
	query   url.Values
	resumed bool
}

func reply(status uint32, v any) types.Action {
	body, _ := json.Marshal(v)
	if err := proxywasm.SendHttpResponse(status, [][2]string{{"content-type", "application/json"}, {"x-probe-local", "1"}}, body, -1); err != nil {
		proxywasm.LogErrorf("probe: local reply: %v", err)
	}
	return types.ActionPause
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return strings.TrimPrefix(err.Error(), "error status returned by host: ")
}

func (s *stream) OnHttpRequestHeaders(numHeaders int, endOfStream bool) types.Action {
	s.plugin.requests.Increment(1)
	raw, _ := proxywasm.GetHttpRequestHeader(":path")
	u, _ := url.Parse(raw)
	s.path, s.query = u.Path, u.Query()
	_ = proxywasm.AddHttpRequestHeader("x-probe-vm", s.plugin.vm.vmName)
	_ = proxywasm.AddHttpRequestHeader("x-probe-context", strconv.Itoa(int(s.id)))
	q := s.query.Get
	switch s.path {
	case "/probe/headers":
		headers, err := proxywasm.GetHttpRequestHeaders()
		return reply(200, map[string]any{"headers": headers, "count": numHeaders, "end_of_stream": endOfStream, "err": errString(err)})
	case "/probe/rewrite":
		_ = proxywasm.ReplaceHttpRequestHeader("x-dup", "replaced")
		_ = proxywasm.RemoveHttpRequestHeader("x-remove")
		_ = proxywasm.AddHttpRequestHeader("x-added", "yes")
		_ = proxywasm.ReplaceHttpRequestHeader(":path", "/rewritten?by=probe")
		return types.ActionContinue
	case "/probe/local":
		status, _ := strconv.Atoi(q("status"))
		err := proxywasm.SendHttpResponse(uint32(status), [][2]string{{"x-probe-local", "1"}}, []byte(q("body")), -1)
		if err != nil {
			proxywasm.LogErrorf("probe: %v", err)
		}
		return types.ActionPause
	case "/probe/dispatch":
		return s.dispatch()
	case "/probe/shared":
		return s.shared()
	case "/probe/queue":
		id, err := proxywasm.ResolveSharedQueue("", "probe")
		if err == nil {
			err = proxywasm.EnqueueSharedQueue(id, []byte(q("value")))
		}
		_, errMissing := proxywasm.ResolveSharedQueue("", "no-such-queue")
		return reply(200, map[string]string{"enqueue": errString(err), "missing": errString(errMissing)})
	case "/probe/metrics":
		return s.metrics()
	case "/probe/props":
		return s.props()
	case "/probe/env":
		return reply(200, map[string]any{"value": os.Getenv(q("key")), "environ": os.Environ()})
	case "/probe/vm":
		return reply(200, map[string]any{"vm": s.plugin.vm.vmName, "vm_config": s.plugin.vm.vmConfig, "ticks": s.plugin.ticks})
	case "/probe/abi":
		return s.abi()
	case "/probe/log":
		proxywasm.LogTrace("probe: trace line")
		proxywasm.LogDebug("probe: debug line")
		proxywasm.LogWarn("probe: warn line")
		fmt.Println("probe: stdout line")
		fmt.Fprintln(os.Stderr, "probe: stderr line")
		return reply(200, "logged")
	case "/probe/clock":
		var b [32]byte
		_, err := rand.Read(b[:])
		return reply(200, map[string]any{"now": time.Now().UnixNano(), "random": hex.EncodeToString(b[:]), "err": errString(err)})
	case "/probe/panic":
		panic("probe: told to panic")
	case "/probe/close":
		proxyCloseStream(0)
		return types.ActionPause
	case "/probe/pause":
		// StopIteration on headers: the body still reaches OnHttpRequestBody, whose
		// Continue releases both.
		return types.ActionPause
	case "/probe/pause-all":
		return 3 // StopAllIterationAndBuffer: nothing moves until continue
	case "/probe/pause-response":
		return types.ActionContinue
	}
	return types.ActionContinue
}

func (s *stream) dispatch() types.Action {
	q := s.query.Get
	timeout, _ := strconv.Atoi(q("timeout"))
	headers := [][2]string{{":method", "GET"}, {":path", q("path")}, {":authority", q("authority")}}
	if q("omit") != "" {
		headers = slicesDelete(headers, q("omit"))
	}
	_, err := proxywasm.DispatchHttpCall(q("cluster"), headers, []byte(q("body")), nil, uint32(timeout), func(numHeaders, bodySize, numTrailers int) {
		respHeaders, _ := proxywasm.GetHttpCallResponseHeaders()
		body, _ := proxywasm.GetHttpCallResponseBody(0, bodySize)
		status := ""
		for _, h := range respHeaders {
			if h[0] == ":status" {
				status = h[1]
			}
		}
		var code, msgPtr, msgSize uint32
		proxyGetStatus(&code, &msgPtr, &msgSize)
		switch q("then") {
		case "continue":
			_ = proxywasm.AddHttpRequestHeader("x-probe-call-status", status)
			if err := proxywasm.ResumeHttpRequest(); err != nil {
				proxywasm.LogErrorf("probe: resume: %v", err)
			}
		default:
			reply(200, map[string]any{"status": status, "body": string(body), "num_headers": numHeaders,
				"body_size": bodySize, "headers": respHeaders, "proxy_status": code})
		}
	})
	if err != nil {
		return reply(500, map[string]string{"dispatch": err.Error()})
	}
	if q("then") == "continue" && s.query.Get("continue_now") != "" {
		return types.ActionContinue
	}
	return types.ActionPause
}

func slicesDelete(h [][2]string, key string) [][2]string {
	var out [][2]string
	for _, p := range h {
		if p[0] != key {
			out = append(out, p)
		}
	}
	return out
}

func (s *stream) shared() types.Action {
	q := s.query.Get
	switch q("op") {
	case "set":
		cas, _ := strconv.ParseUint(q("cas"), 10, 32)
		err := proxywasm.SetSharedData(q("key"), []byte(q("value")), uint32(cas))
		return reply(200, map[string]string{"set": errString(err), "vm": s.plugin.vm.vmName})
	default:
		value, cas, err := proxywasm.GetSharedData(q("key"))
		return reply(200, map[string]any{"value": string(value), "cas": cas, "get": errString(err), "vm": s.plugin.vm.vmName})
	}
}

func (s *stream) metrics() types.Action {
	p := s.plugin
	p.gauge.Add(5)
	p.gauge.Add(-2)
	p.histogram.Record(42)
	var v uint64
	badIncrement := proxyIncrementMetric(uint32(p.requests), 0)
	histogramGet := proxyGetMetric(uint32(p.histogram), &v)
	unknown := proxyGetMetric(4000, &v)
	return reply(200, map[string]any{
		"requests": p.requests.Value(), "gauge": p.gauge.Value(),
		"increment_counter_by_zero": badIncrement, "get_histogram": histogramGet, "get_unknown": unknown,
	})
}

func (s *stream) props() types.Action {
	str := func(path ...string) string {
		b, err := proxywasm.GetProperty(path)
		if err != nil {
			return "error: " + errString(err)
		}
		return string(b)
	}
	num := func(path ...string) int64 {
		b, err := proxywasm.GetProperty(path)
		if err != nil || len(b) != 8 {
			return -1
		}
		return int64(binary.LittleEndian.Uint64(b))
	}
	headers, err := proxywasm.GetPropertyMap([]string{"request", "headers"})
	setErr := proxywasm.SetProperty([]string{"probe_state"}, []byte("kept"))
	return reply(200, map[string]any{
		"plugin_name": str("plugin_name"), "plugin_root_id": str("plugin_root_id"), "plugin_vm_id": str("plugin_vm_id"),
		"path": str("request", "path"), "url_path": str("request", "url_path"), "method": str("request", "method"),
		"host": str("request", "host"), "scheme": str("request", "scheme"), "id": str("request", "id"),
		"protocol": str("request", "protocol"), "source": str("source", "address"), "destination_port": num("destination", "port"),
		"time": num("request", "time"), "headers": headers, "headers_err": errString(err), "unknown": str("no", "such"),
		"set": errString(setErr), "state": str("probe_state"),
	})
}

func (s *stream) abi() types.Action {
	var level, size, length, flags, token uint32
	var now uint64
	logStatus := proxyGetLogLevel(&level)
	timeStatus := proxyGetCurrentTimeNanoseconds(&now)
	sizeStatus := proxyGetHeaderMapSize(0, &size)
	callSizeStatus := proxyGetHeaderMapSize(6, &size)
	bufferStatus := proxyGetBufferStatus(6, &length, &flags)
	pluginBufferStatus := proxyGetBufferStatus(7, &length, &flags)
	grpc := proxyGrpcCall(nil, 0, nil, 0, nil, 0, nil, 0, nil, 0, 1000, &token)
	_, foreignErr := proxywasm.CallForeignFunction("nope", nil)
	done := proxyDone()
	effective := proxySetEffectiveContext(9999)
	_, responseErr := proxywasm.GetHttpResponseHeader(":status")
	_, callErr := proxywasm.GetHttpCallResponseBody(0, 10)
	return reply(200, map[string]any{
		"log_level": level, "log_level_status": logStatus, "now": now, "now_status": timeStatus,
		"request_headers_size_status": sizeStatus, "call_headers_size_status": callSizeStatus,
		"vm_config_buffer_status": bufferStatus, "vm_config_length": length,
		"plugin_config_buffer_status": pluginBufferStatus, "grpc_call": grpc, "foreign": errString(foreignErr),
		"proxy_done": done, "set_effective_context": effective, "response_headers_now": errString(responseErr),
		"call_body_now": errString(callErr),
	})
}

func (s *stream) OnHttpRequestBody(bodySize int, endOfStream bool) types.Action {
	switch s.path {
	case "/probe/body", "/probe/pause", "/probe/pause-all":
		body, err := proxywasm.GetHttpRequestBody(0, bodySize)
		if err != nil {
			return reply(500, map[string]string{"body": err.Error()})
		}
		if err := proxywasm.ReplaceHttpRequestBody([]byte(strings.ToUpper(string(body)))); err != nil {
			return reply(500, map[string]string{"replace": err.Error()})
		}
		_ = proxywasm.AppendHttpRequestBody([]byte("!"))
	case "/probe/body-local":
		body, _ := proxywasm.GetHttpRequestBody(0, bodySize)
		return reply(200, map[string]any{"size": bodySize, "end_of_stream": endOfStream, "body": string(body)})
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseHeaders(numHeaders int, endOfStream bool) types.Action {
	_ = proxywasm.AddHttpResponseHeader("x-probe-response", "seen")
	if _, err := proxywasm.GetHttpRequestHeader(":path"); err != nil {
		_ = proxywasm.AddHttpResponseHeader("x-probe-request-headers", "unavailable")
	} else {
		_ = proxywasm.AddHttpResponseHeader("x-probe-request-headers", "available")
	}
	switch s.path {
	case "/probe/pause-response", "/probe/pause-response-leaky":
		// Hold the response until a dispatched call answers.
		_, err := proxywasm.DispatchHttpCall(s.query.Get("cluster"), [][2]string{{":method", "GET"}, {":path", "/"}, {":authority", "x"}}, nil, nil, 5000,
			func(int, int, int) {
				s.resumed = true
				_ = proxywasm.AddHttpResponseHeader("x-probe-resumed", "yes")
				_ = proxywasm.ResumeHttpResponse()
			})
		if err != nil {
			proxywasm.LogErrorf("probe: %v", err)
			return types.ActionContinue
		}
		return types.ActionPause
	case "/probe/replace-response":
		return reply(418, "replaced by the filter")
	}
	return types.ActionContinue
}

func (s *stream) OnHttpResponseBody(bodySize int, endOfStream bool) types.Action {
	if s.path == "/probe/pause-response" && !s.resumed {
		// Headers held with StopIteration are released by a body answered Continue,
		// so the body must be held too (the -leaky path shows what happens if not).
		return types.ActionPause
	}
	if s.path != "/probe/wrap-body" {
		return types.ActionContinue
	}
	if !endOfStream {
		return types.ActionPause // buffer until the whole body is here
	}
	body, err := proxywasm.GetHttpResponseBody(0, bodySize)
	if err != nil {
		proxywasm.LogErrorf("probe: %v", err)
		return types.ActionContinue
	}
	_ = proxywasm.ReplaceHttpResponseBody([]byte(fmt.Sprintf("wrapped(%d:%s)", len(body), body)))
	return types.ActionContinue
}

func (s *stream) OnHttpStreamDone() {
	_ = proxywasm.SetSharedData("last-done", []byte(strconv.Itoa(int(s.id))+" "+s.path), 0)
}
