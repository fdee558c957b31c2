//go:build wasip1

package sdkbinding

// These mirror the SDK's internal enum types (same names, same underlying type), so that
// host's methods have the shapes internal.ProxyWasmHost expects.
type (
	logLevel   uint32
	status     uint32
	mapType    uint32
	bufferType uint32
	streamType uint32
	metricType uint32
)

// hostABI has the method set of the SDK's internal.ProxyWasmHost (v0.24.0): the same
// names, parameters and results, with this package's mirror types. The SDK stores the
// interface value it is given and calls methods by their index in the sorted method
// list, which is the same for both. TestHostABIMatchesTheSDKsProxyWasmHost (natively)
// fails when the two lists differ.
type hostABI interface {
	ProxyLog(logLevel logLevel, messageData *byte, messageSize int) status
	ProxySetProperty(pathData *byte, pathSize int, valueData *byte, valueSize int) status
	ProxyGetProperty(pathData *byte, pathSize int, returnValueData **byte, returnValueSize *int) status
	ProxySendLocalResponse(statusCode uint32, statusCodeDetailData *byte, statusCodeDetailsSize int, bodyData *byte, bodySize int, headersData *byte, headersSize int, grpcStatus int32) status
	ProxyGetSharedData(keyData *byte, keySize int, returnValueData **byte, returnValueSize *int, returnCas *uint32) status
	ProxySetSharedData(keyData *byte, keySize int, valueData *byte, valueSize int, cas uint32) status
	ProxyRegisterSharedQueue(nameData *byte, nameSize int, returnID *uint32) status
	ProxyResolveSharedQueue(vmIDData *byte, vmIDSize int, nameData *byte, nameSize int, returnID *uint32) status
	ProxyDequeueSharedQueue(queueID uint32, returnValueData **byte, returnValueSize *int) status
	ProxyEnqueueSharedQueue(queueID uint32, valueData *byte, valueSize int) status
	ProxyGetHeaderMapValue(mapType mapType, keyData *byte, keySize int, returnValueData **byte, returnValueSize *int) status
	ProxyAddHeaderMapValue(mapType mapType, keyData *byte, keySize int, valueData *byte, valueSize int) status
	ProxyReplaceHeaderMapValue(mapType mapType, keyData *byte, keySize int, valueData *byte, valueSize int) status
	ProxyContinueStream(streamType streamType) status
	ProxyCloseStream(streamType streamType) status
	ProxyRemoveHeaderMapValue(mapType mapType, keyData *byte, keySize int) status
	ProxyGetHeaderMapPairs(mapType mapType, returnValueData **byte, returnValueSize *int) status
	ProxySetHeaderMapPairs(mapType mapType, mapData *byte, mapSize int) status
	ProxyGetBufferBytes(bufferType bufferType, start int, maxSize int, returnBufferData **byte, returnBufferSize *int) status
	ProxySetBufferBytes(bufferType bufferType, start int, maxSize int, bufferData *byte, bufferSize int) status
	ProxyHttpCall(upstreamData *byte, upstreamSize int, headerData *byte, headerSize int, bodyData *byte, bodySize int, trailersData *byte, trailersSize int, timeout uint32, calloutIDPtr *uint32) status
	ProxyCallForeignFunction(funcNamePtr *byte, funcNameSize int, paramPtr *byte, paramSize int, returnData **byte, returnSize *int) status
	ProxySetTickPeriodMilliseconds(period uint32) status
	ProxySetEffectiveContext(contextID uint32) status
	ProxyDone() status
	ProxyDefineMetric(metricType metricType, metricNameData *byte, metricNameSize int, returnMetricIDPtr *uint32) status
	ProxyIncrementMetric(metricID uint32, offset int64) status
	ProxyRecordMetric(metricID uint32, value uint64) status
	ProxyGetMetric(metricID uint32, returnMetricValue *uint64) status
}

// envoyHost forwards each SDK host call to the matching Envoy import.
type envoyHost struct{}

func init() {
	sdkRegisterHost(envoyHost{}) // never released: this host serves the module's whole life
	keepHostMethods(nil)
}

// keepHostMethods calls every hostABI method through the interface. It is never run with
// a host, but its calls tell the linker that methods with these signatures are used;
// without them the linker drops envoyHost's methods (the SDK calls them through an
// interface with differently named types) and the first host call dies with
// "unreachable method called".
//
//go:noinline
func keepHostMethods(h hostABI) {
	if h == nil {
		return
	}
	h.ProxyLog(0, nil, 0)
	h.ProxySetProperty(nil, 0, nil, 0)
	h.ProxyGetProperty(nil, 0, nil, nil)
	h.ProxySendLocalResponse(0, nil, 0, nil, 0, nil, 0, 0)
	h.ProxyGetSharedData(nil, 0, nil, nil, nil)
	h.ProxySetSharedData(nil, 0, nil, 0, 0)
	h.ProxyRegisterSharedQueue(nil, 0, nil)
	h.ProxyResolveSharedQueue(nil, 0, nil, 0, nil)
	h.ProxyDequeueSharedQueue(0, nil, nil)
	h.ProxyEnqueueSharedQueue(0, nil, 0)
	h.ProxyGetHeaderMapValue(0, nil, 0, nil, nil)
	h.ProxyAddHeaderMapValue(0, nil, 0, nil, 0)
	h.ProxyReplaceHeaderMapValue(0, nil, 0, nil, 0)
	h.ProxyContinueStream(0)
	h.ProxyCloseStream(0)
	h.ProxyRemoveHeaderMapValue(0, nil, 0)
	h.ProxyGetHeaderMapPairs(0, nil, nil)
	h.ProxySetHeaderMapPairs(0, nil, 0)
	h.ProxyGetBufferBytes(0, 0, 0, nil, nil)
	h.ProxySetBufferBytes(0, 0, 0, nil, 0)
	h.ProxyHttpCall(nil, 0, nil, 0, nil, 0, nil, 0, 0, nil)
	h.ProxyCallForeignFunction(nil, 0, nil, 0, nil, nil)
	h.ProxySetTickPeriodMilliseconds(0)
	h.ProxySetEffectiveContext(0)
	h.ProxyDone()
	h.ProxyDefineMetric(0, nil, 0, nil)
	h.ProxyIncrementMetric(0, 0)
	h.ProxyRecordMetric(0, 0)
	h.ProxyGetMetric(0, nil)
}

func (envoyHost) ProxyLog(level logLevel, message *byte, messageSize int) status {
	return status(proxyLog(uint32(level), message, uint32(messageSize)))
}

func (envoyHost) ProxySetProperty(path *byte, pathSize int, value *byte, valueSize int) status {
	return status(proxySetProperty(path, uint32(pathSize), value, uint32(valueSize)))
}

func (envoyHost) ProxyGetProperty(path *byte, pathSize int, returnValue **byte, returnValueSize *int) status {
	var addr, size uint32
	st := proxyGetProperty(path, uint32(pathSize), &addr, &size)
	*returnValue, *returnValueSize = received(addr, size)
	return status(st)
}

func (envoyHost) ProxySendLocalResponse(statusCode uint32, details *byte, detailsSize int, body *byte, bodySize int, headers *byte, headersSize int, grpcStatus int32) status {
	return status(proxySendLocalResponse(statusCode, details, uint32(detailsSize), body, uint32(bodySize), headers, uint32(headersSize), grpcStatus))
}

func (envoyHost) ProxyGetSharedData(key *byte, keySize int, returnValue **byte, returnValueSize *int, returnCas *uint32) status {
	var addr, size uint32
	st := proxyGetSharedData(key, uint32(keySize), &addr, &size, returnCas)
	*returnValue, *returnValueSize = received(addr, size)
	return status(st)
}

func (envoyHost) ProxySetSharedData(key *byte, keySize int, value *byte, valueSize int, cas uint32) status {
	return status(proxySetSharedData(key, uint32(keySize), value, uint32(valueSize), cas))
}

func (envoyHost) ProxyRegisterSharedQueue(name *byte, nameSize int, returnID *uint32) status {
	return status(proxyRegisterSharedQueue(name, uint32(nameSize), returnID))
}

func (envoyHost) ProxyResolveSharedQueue(vmID *byte, vmIDSize int, name *byte, nameSize int, returnID *uint32) status {
	return status(proxyResolveSharedQueue(vmID, uint32(vmIDSize), name, uint32(nameSize), returnID))
}

func (envoyHost) ProxyDequeueSharedQueue(queueID uint32, returnValue **byte, returnValueSize *int) status {
	var addr, size uint32
	st := proxyDequeueSharedQueue(queueID, &addr, &size)
	*returnValue, *returnValueSize = received(addr, size)
	return status(st)
}

func (envoyHost) ProxyEnqueueSharedQueue(queueID uint32, value *byte, valueSize int) status {
	return status(proxyEnqueueSharedQueue(queueID, value, uint32(valueSize)))
}

func (envoyHost) ProxyGetHeaderMapValue(m mapType, key *byte, keySize int, returnValue **byte, returnValueSize *int) status {
	var addr, size uint32
	st := proxyGetHeaderMapValue(uint32(m), key, uint32(keySize), &addr, &size)
	*returnValue, *returnValueSize = received(addr, size)
	return status(st)
}

func (envoyHost) ProxyAddHeaderMapValue(m mapType, key *byte, keySize int, value *byte, valueSize int) status {
	return status(proxyAddHeaderMapValue(uint32(m), key, uint32(keySize), value, uint32(valueSize)))
}

func (envoyHost) ProxyReplaceHeaderMapValue(m mapType, key *byte, keySize int, value *byte, valueSize int) status {
	return status(proxyReplaceHeaderMapValue(uint32(m), key, uint32(keySize), value, uint32(valueSize)))
}

func (envoyHost) ProxyContinueStream(s streamType) status {
	return status(proxyContinueStream(uint32(s)))
}

func (envoyHost) ProxyCloseStream(s streamType) status {
	return status(proxyCloseStream(uint32(s)))
}

func (envoyHost) ProxyRemoveHeaderMapValue(m mapType, key *byte, keySize int) status {
	return status(proxyRemoveHeaderMapValue(uint32(m), key, uint32(keySize)))
}

func (envoyHost) ProxyGetHeaderMapPairs(m mapType, returnValue **byte, returnValueSize *int) status {
	var addr, size uint32
	st := proxyGetHeaderMapPairs(uint32(m), &addr, &size)
	*returnValue, *returnValueSize = received(addr, size)
	return status(st)
}

func (envoyHost) ProxySetHeaderMapPairs(m mapType, pairs *byte, pairsSize int) status {
	return status(proxySetHeaderMapPairs(uint32(m), pairs, uint32(pairsSize)))
}

func (envoyHost) ProxyGetBufferBytes(b bufferType, start int, maxSize int, returnValue **byte, returnValueSize *int) status {
	var addr, size uint32
	st := proxyGetBufferBytes(uint32(b), uint32(start), uint32(maxSize), &addr, &size)
	*returnValue, *returnValueSize = received(addr, size)
	return status(st)
}

func (envoyHost) ProxySetBufferBytes(b bufferType, start int, maxSize int, value *byte, valueSize int) status {
	return status(proxySetBufferBytes(uint32(b), uint32(start), uint32(maxSize), value, uint32(valueSize)))
}

func (envoyHost) ProxyHttpCall(cluster *byte, clusterSize int, headers *byte, headersSize int, body *byte, bodySize int, trailers *byte, trailersSize int, timeout uint32, returnCalloutID *uint32) status {
	return status(proxyHTTPCall(cluster, uint32(clusterSize), headers, uint32(headersSize), body, uint32(bodySize), trailers, uint32(trailersSize), timeout, returnCalloutID))
}

func (envoyHost) ProxyCallForeignFunction(name *byte, nameSize int, arguments *byte, argumentsSize int, returnValue **byte, returnValueSize *int) status {
	var addr, size uint32
	st := proxyCallForeignFunction(name, uint32(nameSize), arguments, uint32(argumentsSize), &addr, &size)
	*returnValue, *returnValueSize = received(addr, size)
	return status(st)
}

func (envoyHost) ProxySetTickPeriodMilliseconds(period uint32) status {
	return status(proxySetTickPeriodMilliseconds(period))
}

func (envoyHost) ProxySetEffectiveContext(contextID uint32) status {
	return status(proxySetEffectiveContext(contextID))
}

func (envoyHost) ProxyDone() status {
	return status(proxyDone())
}

func (envoyHost) ProxyDefineMetric(m metricType, name *byte, nameSize int, returnMetricID *uint32) status {
	return status(proxyDefineMetric(uint32(m), name, uint32(nameSize), returnMetricID))
}

func (envoyHost) ProxyIncrementMetric(metricID uint32, offset int64) status {
	return status(proxyIncrementMetric(metricID, offset))
}

func (envoyHost) ProxyRecordMetric(metricID uint32, value uint64) status {
	return status(proxyRecordMetric(metricID, value))
}

func (envoyHost) ProxyGetMetric(metricID uint32, returnValue *uint64) status {
	return status(proxyGetMetric(metricID, returnValue))
}
