package envoyhost

import "sync"

// metricStore holds the module's metrics for the whole process, by type and name, as
// Envoy's stats scope does; ids are per VM.
type metricStore struct {
	mu     sync.Mutex
	values map[metricKey]*metricValue
}

type metricKey struct {
	kind uint32
	name string
}

type metricValue struct {
	value   int64 // counter or gauge
	count   uint64
	sum     uint64 // histogram
	samples []uint64
}

func (m *metricStore) init() { m.values = map[metricKey]*metricValue{} }

// MetricValue is a metric as the host recorded it.
type MetricValue struct {
	Kind    string // "counter", "gauge" or "histogram"
	Value   int64  // counters and gauges
	Samples []uint64
}

// Metric returns the metric the module defined under name, if any.
func (h *Host) Metric(name string) (MetricValue, bool) {
	h.metrics.mu.Lock()
	defer h.metrics.mu.Unlock()
	for kind, label := range []string{"counter", "gauge", "histogram"} {
		if v, ok := h.metrics.values[metricKey{uint32(kind), name}]; ok {
			return MetricValue{Kind: label, Value: v.value, Samples: append([]uint64(nil), v.samples...)}, true
		}
	}
	return MetricValue{}, false
}

func hostDefineMetric(v *vm, s []uint64) {
	kind := u32(s[0])
	if kind > metricHistogram {
		ret(s, resultBadArgument)
		return
	}
	name, ok := v.readString(u32(s[1]), u32(s[2]))
	if !ok {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	m := &v.host.metrics
	m.mu.Lock()
	if _, exists := m.values[metricKey{kind, name}]; !exists {
		m.values[metricKey{kind, name}] = &metricValue{}
	}
	m.mu.Unlock()
	id := v.nextMetricIDs[kind]
	v.nextMetricIDs[kind] += metricIDStep
	v.metricNames[id] = name
	if !v.writeU32(u32(s[3]), id) {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	ret(s, resultOk)
}

// metric finds the value behind an id of this VM; the id's low bits are its type.
func (v *vm) metric(id uint32) (*metricValue, uint32, bool) {
	name, ok := v.metricNames[id]
	if !ok {
		return nil, 0, false
	}
	kind := id & metricTypeMask
	return v.host.metrics.values[metricKey{kind, name}], kind, true
}

func hostIncrementMetric(v *vm, s []uint64) {
	offset := int64(s[1])
	m := &v.host.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	val, kind, ok := v.metric(u32(s[0]))
	switch {
	case !ok && u32(s[0])&metricTypeMask == metricHistogram:
		ret(s, resultBadArgument)
	case !ok:
		ret(s, resultNotFound)
	case kind == metricCounter && offset <= 0:
		ret(s, resultBadArgument) // counters only go up
	case kind == metricHistogram:
		ret(s, resultBadArgument)
	default:
		val.value += offset
		ret(s, resultOk)
	}
}

func hostRecordMetric(v *vm, s []uint64) {
	value := s[1]
	m := &v.host.metrics
	m.mu.Lock()
	defer m.mu.Unlock()
	val, kind, ok := v.metric(u32(s[0]))
	if !ok {
		ret(s, resultNotFound)
		return
	}
	switch kind {
	case metricCounter:
		val.value += int64(value)
	case metricGauge:
		val.value = int64(value)
	case metricHistogram:
		val.count++
		val.sum += value
		if len(val.samples) < 10000 {
			val.samples = append(val.samples, value)
		}
	}
	ret(s, resultOk)
}

func hostGetMetric(v *vm, s []uint64) {
	m := &v.host.metrics
	m.mu.Lock()
	val, kind, ok := v.metric(u32(s[0]))
	var value uint64
	if ok {
		value = uint64(val.value)
	}
	m.mu.Unlock()
	switch {
	case !ok && u32(s[0])&metricTypeMask == metricHistogram, ok && kind == metricHistogram:
		ret(s, resultBadArgument)
	case !ok:
		ret(s, resultNotFound)
	case !v.writeU64(u32(s[1]), value):
		ret(s, resultInvalidMemoryAccess)
	default:
		ret(s, resultOk)
	}
}
