package sharedstate

import (
	"bytes"
	"errors"
	"sync"
)

// memory is shared data as Envoy keeps it (proxy-wasm-cpp-host src/shared_data.cc): Get
// of a missing key is NotFound; Set with cas 0 writes whatever is there, with another
// cas than the key's is CasMismatch (only for a key that exists); every write gets a
// new, never zero, cas.
type memory struct {
	mu      sync.Mutex
	values  map[string][]byte
	cas     map[string]uint32
	nextCas uint32

	// Faults, for tests: getErr and setErr answer every Get or Set of a key;
	// beforeSet runs before each Set, as another VM writing in between would.
	getErr, setErr map[string]error
	beforeSet      func(key string)
	gets, sets     int
}

func newMemory() *memory {
	return &memory{values: map[string][]byte{}, cas: map[string]uint32{}, nextCas: 1,
		getErr: map[string]error{}, setErr: map[string]error{}}
}

func (m *memory) Get(key string) ([]byte, uint32, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	if err := m.getErr[key]; err != nil {
		return nil, 0, err
	}
	v, ok := m.values[key]
	if !ok {
		return nil, 0, ErrNotFound
	}
	return bytes.Clone(v), m.cas[key], nil
}

func (m *memory) Set(key string, value []byte, cas uint32) error {
	if m.beforeSet != nil {
		m.beforeSet(key)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sets++
	if err := m.setErr[key]; err != nil {
		return err
	}
	return m.set(key, value, cas)
}

func (m *memory) set(key string, value []byte, cas uint32) error {
	if _, ok := m.values[key]; ok && cas != 0 && cas != m.cas[key] {
		return ErrConflict
	}
	m.values[key] = bytes.Clone(value)
	m.cas[key] = m.nextCas
	m.nextCas++
	return nil
}

// put writes value as another VM would, unconditionally.
func (m *memory) put(key string, value []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set(key, value, 0)
}

var errHost = errors.Join(ErrUnavailable, errors.New("BadArgument"))
