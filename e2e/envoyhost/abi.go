package envoyhost

// Proxy-Wasm ABI 0.2.1 values, as Envoy and proxy-wasm-cpp-host define them.

// result is a WasmResult returned by a host function.
type result uint32

const (
	resultOk                  result = 0
	resultNotFound            result = 1
	resultBadArgument         result = 2
	resultSerializationFailed result = 3
	resultParseFailure        result = 4
	resultInvalidMemoryAccess result = 6
	resultEmpty               result = 7
	resultCasMismatch         result = 8
	resultInternalFailure     result = 10
	resultBrokenConnection    result = 11
	resultUnimplemented       result = 12
)

// Header map types.
const (
	mapRequestHeaders          = 0
	mapRequestTrailers         = 1
	mapResponseHeaders         = 2
	mapResponseTrailers        = 3
	mapGrpcInitialMetadata     = 4
	mapGrpcTrailingMetadata    = 5
	mapHTTPCallResponseHeaders = 6
	mapHTTPCallResponseTrailer = 7
	mapTypeMax                 = 7
)

// Buffer types.
const (
	bufferRequestBody         = 0
	bufferResponseBody        = 1
	bufferDownstreamData      = 2
	bufferUpstreamData        = 3
	bufferHTTPCallResponse    = 4
	bufferGrpcReceive         = 5
	bufferVMConfiguration     = 6
	bufferPluginConfiguration = 7
	bufferCallData            = 8
	bufferTypeMax             = 8
)

// Stream types for proxy_continue_stream and proxy_close_stream.
const (
	streamRequest    = 0
	streamResponse   = 1
	streamDownstream = 2
	streamUpstream   = 3
)

// Filter statuses returned by proxy_on_request_headers and friends, as Envoy converts
// them: for headers 0 Continue, 1 StopIteration, 3 StopAllIterationAndBuffer,
// 4 StopAllIterationAndWatermark; for bodies 0 Continue, 1 StopIterationAndBuffer,
// 2 StopIterationAndWatermark, 3 StopIterationNoBuffer.
const (
	actionContinue = 0
	actionPause    = 1
)

// Metric types and the id layout Envoy uses: the low two bits of an id are its type.
const (
	metricCounter   = 0
	metricGauge     = 1
	metricHistogram = 2
	metricTypeMask  = 0x3
	metricIDStep    = 0x4
)

// LogLevel is a Proxy-Wasm log level.
type LogLevel uint32

// Log levels, in the order of the ABI.
const (
	LogTrace LogLevel = iota
	LogDebug
	LogInfo
	LogWarn
	LogError
	LogCritical
)

func (l LogLevel) String() string {
	switch l {
	case LogTrace:
		return "trace"
	case LogDebug:
		return "debug"
	case LogInfo:
		return "info"
	case LogWarn:
		return "warning"
	case LogError:
		return "error"
	case LogCritical:
		return "critical"
	}
	return "unknown"
}

// ParseLogLevel reads a level name (trace, debug, info, warn, error, critical).
func ParseLogLevel(s string) (LogLevel, bool) {
	for l := LogTrace; l <= LogCritical; l++ {
		if s == l.String() || (l == LogWarn && s == "warn") {
			return l, true
		}
	}
	return 0, false
}

// WASI errno values used by Envoy's implementations.
const (
	errnoSuccess = 0
	errnoBadf    = 8
	errnoFault   = 21
	errnoInval   = 28
	errnoNoent   = 44
	errnoNosys   = 52
	errnoNotsup  = 58
)

// maxRandomGet is Envoy's limit on one random_get call.
const maxRandomGet = 64 << 10
