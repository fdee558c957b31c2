package envoyhost

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// hostFunc is one import the host provides.
type hostFunc struct {
	module, name    string
	params, results []api.ValueType
	fn              func(v *vm, stack []uint64)
}

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

func i32s(n int) []api.ValueType {
	out := make([]api.ValueType, n)
	for i := range out {
		out[i] = i32
	}
	return out
}

// provided is the set of "module.name" imports the host provides: Envoy 1.33's, no more.
var provided = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range hostFuncs() {
		m[f.module+"."+f.name] = true
	}
	return m
}()

func hostFuncs() []hostFunc { return append(envFuncs(), wasiFuncs()...) }

func (h *Host) instantiateHostModules(ctx context.Context) error {
	byModule := map[string][]hostFunc{}
	for _, f := range hostFuncs() {
		byModule[f.module] = append(byModule[f.module], f)
	}
	for module, funcs := range byModule {
		b := h.runtime.NewHostModuleBuilder(module)
		for _, f := range funcs {
			b.NewFunctionBuilder().
				WithGoModuleFunction(guard(f), f.params, f.results).
				WithName(f.name).
				Export(f.name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("host module %s: %w", module, err)
		}
	}
	return nil
}

// guard applies Envoy's restrictions before running a host function: during _initialize
// and inside the module's allocator, an import outside the allowed few traps the VM.
func guard(f hostFunc) api.GoModuleFunction {
	full := f.module + "." + f.name
	return api.GoModuleFunc(func(ctx context.Context, _ api.Module, stack []uint64) {
		v := vmFrom(ctx)
		release := v.host.cfg.Envoy
		if v.allocating && !release.allowedDuringAllocation(full) {
			panic(fmt.Errorf("%s called inside proxy_on_memory_allocate: Envoy %s traps the VM (restricted_callback: only proxy_log, fd_write and clock_time_get may be called while the host allocates)", full, release))
		}
		if v.starting && !release.allowedDuringStart(full) {
			panic(fmt.Errorf("%s called during _initialize: Envoy %s traps the VM (only logging, clocks, randomness, environment and arguments are allowed then)", full, release))
		}
		f.fn(v, stack)
	})
}

func u32(x uint64) uint32 { return uint32(x) }

func ret(stack []uint64, r result) { stack[0] = uint64(r) }

func envFuncs() []hostFunc {
	return []hostFunc{
		{"env", "proxy_log", i32s(3), i32s(1), hostLog},
		{"env", "proxy_get_log_level", i32s(1), i32s(1), func(v *vm, s []uint64) {
			if !v.writeU32(u32(s[0]), uint32(v.host.cfg.LogLevel)) {
				ret(s, resultInvalidMemoryAccess)
				return
			}
			ret(s, resultOk)
		}},
		{"env", "proxy_get_status", i32s(3), i32s(1), func(v *vm, s []uint64) {
			if !v.writeU32(u32(s[0]), v.status.code) {
				ret(s, resultInvalidMemoryAccess)
				return
			}
			ret(s, v.copyOut([]byte(v.status.message), u32(s[1]), u32(s[2])))
		}},
		{"env", "proxy_set_property", i32s(4), i32s(1), hostSetProperty},
		{"env", "proxy_get_property", i32s(4), i32s(1), hostGetProperty},
		{"env", "proxy_send_local_response", i32s(8), i32s(1), hostSendLocalResponse},
		{"env", "proxy_get_shared_data", i32s(5), i32s(1), hostGetSharedData},
		{"env", "proxy_set_shared_data", i32s(5), i32s(1), hostSetSharedData},
		{"env", "proxy_register_shared_queue", i32s(3), i32s(1), hostRegisterQueue},
		{"env", "proxy_resolve_shared_queue", i32s(5), i32s(1), hostResolveQueue},
		{"env", "proxy_dequeue_shared_queue", i32s(3), i32s(1), hostDequeue},
		{"env", "proxy_enqueue_shared_queue", i32s(3), i32s(1), hostEnqueue},
		{"env", "proxy_get_header_map_value", i32s(5), i32s(1), hostGetHeaderMapValue},
		{"env", "proxy_add_header_map_value", i32s(5), i32s(1), hostAddHeaderMapValue},
		{"env", "proxy_replace_header_map_value", i32s(5), i32s(1), hostReplaceHeaderMapValue},
		{"env", "proxy_remove_header_map_value", i32s(3), i32s(1), hostRemoveHeaderMapValue},
		{"env", "proxy_get_header_map_pairs", i32s(3), i32s(1), hostGetHeaderMapPairs},
		{"env", "proxy_set_header_map_pairs", i32s(3), i32s(1), hostSetHeaderMapPairs},
		{"env", "proxy_get_header_map_size", i32s(2), i32s(1), hostGetHeaderMapSize},
		{"env", "proxy_get_buffer_status", i32s(3), i32s(1), hostGetBufferStatus},
		{"env", "proxy_get_buffer_bytes", i32s(5), i32s(1), hostGetBufferBytes},
		{"env", "proxy_set_buffer_bytes", i32s(5), i32s(1), hostSetBufferBytes},
		{"env", "proxy_http_call", i32s(10), i32s(1), hostHTTPCall},
		// gRPC calls need protobuf service definitions and an HTTP/2 client; this host
		// does not emulate them and says so with Unimplemented.
		{"env", "proxy_grpc_call", i32s(12), i32s(1), unimplemented},
		{"env", "proxy_grpc_stream", i32s(9), i32s(1), unimplemented},
		{"env", "proxy_grpc_close", i32s(1), i32s(1), unimplemented},
		{"env", "proxy_grpc_cancel", i32s(1), i32s(1), unimplemented},
		{"env", "proxy_grpc_send", i32s(4), i32s(1), unimplemented},
		{"env", "proxy_set_tick_period_milliseconds", i32s(1), i32s(1), func(v *vm, s []uint64) {
			v.setTickPeriod(time.Duration(u32(s[0])) * time.Millisecond)
			ret(s, resultOk)
		}},
		{"env", "proxy_get_current_time_nanoseconds", i32s(1), i32s(1), func(v *vm, s []uint64) {
			if !v.writeU64(u32(s[0]), uint64(time.Now().UnixNano())) {
				ret(s, resultInvalidMemoryAccess)
				return
			}
			ret(s, resultOk)
		}},
		{"env", "proxy_define_metric", i32s(4), i32s(1), hostDefineMetric},
		{"env", "proxy_increment_metric", []api.ValueType{i32, i64}, i32s(1), hostIncrementMetric},
		{"env", "proxy_record_metric", []api.ValueType{i32, i64}, i32s(1), hostRecordMetric},
		{"env", "proxy_get_metric", i32s(2), i32s(1), hostGetMetric},
		{"env", "proxy_set_effective_context", i32s(1), i32s(1), func(v *vm, s []uint64) {
			id := u32(s[0])
			if _, ok := v.streams[id]; !ok && !v.isRoot(id) {
				ret(s, resultBadArgument)
				return
			}
			v.effectiveID = id
			ret(s, resultOk)
		}},
		{"env", "proxy_done", nil, i32s(1), func(v *vm, s []uint64) {
			if root := v.context(); v.retiring[root] {
				v.afterCall(func() { v.deleteRoot(root) })
				ret(s, resultOk)
				return
			}
			if !v.pendingDone {
				ret(s, resultNotFound)
				return
			}
			v.afterCall(v.finishShutdown)
			ret(s, resultOk)
		}},
		{"env", "proxy_call_foreign_function", i32s(6), i32s(1), func(_ *vm, s []uint64) {
			ret(s, resultNotFound) // no foreign functions are registered, as in a stock Envoy build for HTTP filters
		}},
		{"env", "proxy_continue_stream", i32s(1), i32s(1), hostContinueStream},
		{"env", "proxy_close_stream", i32s(1), i32s(1), hostCloseStream},
	}
}

func unimplemented(_ *vm, s []uint64) { ret(s, resultUnimplemented) }

func hostLog(v *vm, s []uint64) {
	level := LogLevel(u32(s[0]))
	if level > LogCritical {
		ret(s, resultBadArgument)
		return
	}
	msg, ok := v.readString(u32(s[1]), u32(s[2]))
	if !ok {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	v.moduleLog(level, msg)
	ret(s, resultOk)
}

// moduleLog records a line the module wrote with proxy_log.
func (v *vm) moduleLog(level LogLevel, msg string) {
	if v.startingUp && level >= LogWarn {
		v.startLog = append(v.startLog, msg)
		v.startLogOpen = false
	}
	v.host.log(v.index, level, msg)
}

// streamLog records what the module wrote to stdout or stderr. Envoy logs each write as
// a line; for the start error, writes that do not end a line (the Go runtime prints a
// panic in pieces) are joined back together.
func (v *vm) streamLog(level LogLevel, written string) {
	if v.startingUp && level >= LogWarn {
		if v.startLogOpen && len(v.startLog) > 0 {
			v.startLog[len(v.startLog)-1] += written
		} else {
			v.startLog = append(v.startLog, written)
		}
		v.startLogOpen = !strings.HasSuffix(written, "\n")
	}
	v.host.log(v.index, level, strings.TrimSuffix(written, "\n"))
}

func hostSendLocalResponse(v *vm, s []uint64) {
	details, ok1 := v.readString(u32(s[1]), u32(s[2]))
	body, ok2 := v.read(u32(s[3]), u32(s[4]))
	raw, ok3 := v.read(u32(s[5]), u32(s[6]))
	if !ok1 || !ok2 || !ok3 {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	headers, err := decodePairs(raw)
	if err != nil {
		ret(s, resultInvalidMemoryAccess) // PairsUtil::toPairs yields nothing usable; Envoy fails the call
		return
	}
	if st := v.stream(); st != nil {
		st.requestLocalReply(localReply{status: int(u32(s[0])), body: body, headers: headers, details: details})
	}
	ret(s, resultOk)
}

func hostContinueStream(v *vm, s []uint64) {
	kind := u32(s[0])
	if kind > streamUpstream {
		ret(s, resultBadArgument)
		return
	}
	if st := v.stream(); st != nil {
		switch kind {
		case streamRequest:
			st.req.headersOpen = false // Envoy forgets the request headers on continue
			v.afterCall(st.continueRequest)
		case streamResponse:
			v.afterCall(st.continueResponse)
		}
	}
	ret(s, resultOk)
}

func hostCloseStream(v *vm, s []uint64) {
	kind := u32(s[0])
	if kind > streamUpstream {
		ret(s, resultBadArgument)
		return
	}
	if st := v.stream(); st != nil && (kind == streamRequest || kind == streamResponse) {
		v.afterCall(st.reset)
	}
	ret(s, resultOk)
}

// Header maps.

// headerMapFor returns the map of that type in the current context, and whether the
// filter may change it. nil means the map is not available now (Envoy: BadArgument).
func (v *vm) headerMapFor(mapType uint32) (h *headerMap, writable bool) {
	if mapType == mapHTTPCallResponseHeaders || mapType == mapHTTPCallResponseTrailer {
		if v.callResponse == nil {
			return nil, false
		}
		if mapType == mapHTTPCallResponseHeaders {
			return &v.callResponse.headers, false
		}
		return &v.callResponse.trailers, false
	}
	st := v.stream()
	if st == nil {
		return nil, false
	}
	switch mapType {
	case mapRequestHeaders:
		if st.req.headersOpen {
			return &st.req.headers, true
		}
	case mapResponseHeaders:
		if st.resp.headersOpen {
			return &st.resp.headers, true
		}
	}
	return nil, false // trailers and gRPC metadata never reach this host's filters
}

func hostGetHeaderMapValue(v *vm, s []uint64) {
	if u32(s[0]) > mapTypeMax {
		ret(s, resultBadArgument)
		return
	}
	key, ok := v.readString(u32(s[1]), u32(s[2]))
	if !ok {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	h, _ := v.headerMapFor(u32(s[0]))
	if h == nil {
		ret(s, resultBadArgument)
		return
	}
	value, found := h.get(key)
	if !found {
		ret(s, resultNotFound)
		return
	}
	ret(s, v.copyOut([]byte(value), u32(s[3]), u32(s[4])))
}

// mutateHeaders is the shared frame of add, replace, remove and set-pairs.
func mutateHeaders(v *vm, s []uint64, change func(h *headerMap) result) {
	if u32(s[0]) > mapTypeMax {
		ret(s, resultBadArgument)
		return
	}
	h, writable := v.headerMapFor(u32(s[0]))
	if h == nil || !writable {
		ret(s, resultBadArgument)
		return
	}
	ret(s, change(h))
}

func hostAddHeaderMapValue(v *vm, s []uint64) { writeHeader(v, s, (*headerMap).add) }

func hostReplaceHeaderMapValue(v *vm, s []uint64) { writeHeader(v, s, (*headerMap).replace) }

// writeHeader reads the key and value of an add or replace and applies it.
func writeHeader(v *vm, s []uint64, apply func(h *headerMap, key, value string)) {
	mutateHeaders(v, s, func(h *headerMap) result {
		key, ok1 := v.readString(u32(s[1]), u32(s[2]))
		value, ok2 := v.readString(u32(s[3]), u32(s[4]))
		if !ok1 || !ok2 {
			return resultInvalidMemoryAccess
		}
		apply(h, key, value)
		return resultOk
	})
}

func hostRemoveHeaderMapValue(v *vm, s []uint64) {
	mutateHeaders(v, s, func(h *headerMap) result {
		key, ok := v.readString(u32(s[1]), u32(s[2]))
		if !ok {
			return resultInvalidMemoryAccess
		}
		h.remove(key)
		return resultOk
	})
}

func hostSetHeaderMapPairs(v *vm, s []uint64) {
	mutateHeaders(v, s, func(h *headerMap) result {
		raw, ok := v.read(u32(s[1]), u32(s[2]))
		if !ok {
			return resultInvalidMemoryAccess
		}
		pairs, err := decodePairs(raw)
		if err != nil {
			return resultInvalidMemoryAccess
		}
		*h = pairs
		return resultOk
	})
}

func hostGetHeaderMapPairs(v *vm, s []uint64) {
	if u32(s[0]) > mapTypeMax {
		ret(s, resultBadArgument)
		return
	}
	h, _ := v.headerMapFor(u32(s[0]))
	if h == nil || len(*h) == 0 {
		ret(s, v.copyOut(nil, u32(s[1]), u32(s[2]))) // Envoy answers an absent map with no pairs
		return
	}
	ret(s, v.copyOut(encodePairs(*h), u32(s[1]), u32(s[2])))
}

func hostGetHeaderMapSize(v *vm, s []uint64) {
	if u32(s[0]) > mapTypeMax {
		ret(s, resultBadArgument)
		return
	}
	h, writable := v.headerMapFor(u32(s[0]))
	if h == nil || !writable { // Envoy looks only at the stream's own maps here
		ret(s, resultBadArgument)
		return
	}
	if !v.writeU32(u32(s[1]), uint32(h.byteSize())) {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	ret(s, resultOk)
}

// Buffers.

// buffer returns the bytes of a buffer type in the current context and, for the bodies
// a filter may rewrite, where to store a change. ok is false when there is none now.
func (v *vm) buffer(bufferType uint32) (data []byte, set func([]byte), ok bool) {
	switch bufferType {
	case bufferVMConfiguration:
		return v.host.cfg.VMConfiguration, nil, true
	case bufferPluginConfiguration:
		if v.configuring {
			return v.configuration, nil, true
		}
	case bufferHTTPCallResponse:
		if v.callResponse != nil {
			return v.callResponse.body, nil, true
		}
	case bufferRequestBody:
		if st := v.stream(); st != nil && st.req.bodyOpen {
			return st.req.body, func(b []byte) { st.req.body = b }, true
		}
	case bufferResponseBody:
		if st := v.stream(); st != nil && st.resp.bodyOpen {
			return st.resp.body, func(b []byte) { st.resp.body = b }, true
		}
	}
	return nil, nil, false
}

func hostGetBufferStatus(v *vm, s []uint64) {
	if u32(s[0]) > bufferTypeMax {
		ret(s, resultBadArgument)
		return
	}
	data, _, ok := v.buffer(u32(s[0]))
	if !ok {
		ret(s, resultNotFound)
		return
	}
	if !v.writeU32(u32(s[1]), uint32(len(data))) || !v.writeU32(u32(s[2]), 0) {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	ret(s, resultOk)
}

func hostGetBufferBytes(v *vm, s []uint64) {
	if u32(s[0]) > bufferTypeMax {
		ret(s, resultBadArgument)
		return
	}
	data, _, ok := v.buffer(u32(s[0]))
	if !ok {
		ret(s, resultNotFound)
		return
	}
	start, length := uint64(u32(s[1])), uint64(u32(s[2]))
	size := uint64(len(data))
	switch {
	case start > size:
		length = 0
	case start+length > size:
		length = size - start
	}
	if length == 0 {
		ret(s, v.copyOut(nil, u32(s[3]), u32(s[4])))
		return
	}
	ret(s, v.copyOut(data[start:start+length], u32(s[3]), u32(s[4])))
}

// hostSetBufferBytes follows Envoy's rules for a body: start 0 and length 0 prepends,
// start 0 and a length covering the buffer replaces it, a start at or past the end
// appends; anything else is BadArgument, as is writing to a read-only buffer.
func hostSetBufferBytes(v *vm, s []uint64) {
	if u32(s[0]) > bufferTypeMax {
		ret(s, resultBadArgument)
		return
	}
	data, set, ok := v.buffer(u32(s[0]))
	if !ok {
		ret(s, resultNotFound)
		return
	}
	value, okRead := v.read(u32(s[3]), u32(s[4]))
	if !okRead {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	if set == nil {
		ret(s, resultBadArgument)
		return
	}
	start, length := uint64(u32(s[1])), uint64(u32(s[2]))
	size := uint64(len(data))
	switch {
	case start == 0 && length == 0:
		set(append(value, data...))
	case start == 0 && length >= size:
		set(value)
	case start >= size:
		set(append(data, value...))
	default:
		ret(s, resultBadArgument)
		return
	}
	ret(s, resultOk)
}

// readPath reads a property path: its parts separated by NUL bytes.
func readPath(v *vm, ptr, size uint32) ([]string, bool) {
	raw, ok := v.readString(ptr, size)
	if !ok {
		return nil, false
	}
	return strings.Split(raw, "\x00"), true
}
