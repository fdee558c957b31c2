package envoyhost

import "sync"

// sharedData is Envoy's process-wide key-value store, scoped by vm_id and shared by the
// VMs of all workers. Every successful write gets a new, never-zero CAS value; a write
// with a non-zero CAS that no longer matches fails with CasMismatch. As in
// proxy-wasm-cpp-host, a write to a key that does not exist yet succeeds whatever CAS it
// carries.
type sharedData struct {
	mu      sync.Mutex
	data    map[string]map[string]sharedValue
	lastCas uint32
}

type sharedValue struct {
	value []byte
	cas   uint32
}

func (d *sharedData) init() { d.data = map[string]map[string]sharedValue{} }

func (d *sharedData) get(vmID, key string) (sharedValue, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	v, ok := d.data[vmID][key]
	return v, ok
}

func (d *sharedData) set(vmID, key string, value []byte, cas uint32) result {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.data[vmID]
	if m == nil {
		m = map[string]sharedValue{}
		d.data[vmID] = m
	}
	if old, ok := m[key]; ok && cas != 0 && cas != old.cas {
		return resultCasMismatch
	}
	d.lastCas++
	if d.lastCas == 0 {
		d.lastCas++
	}
	m[key] = sharedValue{value: value, cas: d.lastCas}
	return resultOk
}

func hostGetSharedData(v *vm, s []uint64) {
	key, ok := v.readString(u32(s[0]), u32(s[1]))
	if !ok {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	value, found := v.host.shared.get(v.host.cfg.VMID, key)
	if !found {
		ret(s, resultNotFound)
		return
	}
	if r := v.copyOut(value.value, u32(s[2]), u32(s[3])); r != resultOk {
		ret(s, r)
		return
	}
	if !v.writeU32(u32(s[4]), value.cas) {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	ret(s, resultOk)
}

func hostSetSharedData(v *vm, s []uint64) {
	key, ok1 := v.readString(u32(s[0]), u32(s[1]))
	value, ok2 := v.read(u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	ret(s, v.host.shared.set(v.host.cfg.VMID, key, value, u32(s[4])))
}

// sharedQueues are Envoy's shared queues: registered by name within a vm_id, readable by
// any VM, and signalled (proxy_on_queue_ready) to the root context of the VM that
// registered the queue last.
type sharedQueues struct {
	mu     sync.Mutex
	tokens map[[2]string]uint32 // (vm_id, name) -> token
	queues map[uint32]*sharedQueue
	last   uint32
}

type sharedQueue struct {
	items   [][]byte
	owner   *vm
	context uint32
}

func (q *sharedQueues) init() {
	q.tokens = map[[2]string]uint32{}
	q.queues = map[uint32]*sharedQueue{}
}

func hostRegisterQueue(v *vm, s []uint64) {
	name, ok := v.readString(u32(s[0]), u32(s[1]))
	if !ok {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	q := &v.host.queues
	q.mu.Lock()
	key := [2]string{v.host.cfg.VMID, name}
	token, exists := q.tokens[key]
	if !exists {
		q.last++
		token = q.last
		q.tokens[key] = token
		q.queues[token] = &sharedQueue{}
	}
	// The queue now signals this VM's root context (a stream's root, for a stream).
	q.queues[token].owner, q.queues[token].context = v, v.currentRoot()
	q.mu.Unlock()
	if !v.writeU32(u32(s[2]), token) {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	ret(s, resultOk)
}

func hostResolveQueue(v *vm, s []uint64) {
	vmID, ok1 := v.readString(u32(s[0]), u32(s[1]))
	name, ok2 := v.readString(u32(s[2]), u32(s[3]))
	if !ok1 || !ok2 {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	if vmID == "" {
		vmID = v.host.cfg.VMID
	}
	q := &v.host.queues
	q.mu.Lock()
	token, found := q.tokens[[2]string{vmID, name}]
	q.mu.Unlock()
	if !found {
		ret(s, resultNotFound)
		return
	}
	if !v.writeU32(u32(s[4]), token) {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	ret(s, resultOk)
}

func hostDequeue(v *vm, s []uint64) {
	q := &v.host.queues
	q.mu.Lock()
	queue, found := q.queues[u32(s[0])]
	var item []byte
	empty := true
	if found && len(queue.items) > 0 {
		item, queue.items, empty = queue.items[0], queue.items[1:], false
	}
	q.mu.Unlock()
	switch {
	case !found:
		ret(s, resultNotFound)
	case empty:
		ret(s, resultEmpty)
	default:
		ret(s, v.copyOut(item, u32(s[1]), u32(s[2])))
	}
}

func hostEnqueue(v *vm, s []uint64) {
	value, ok := v.read(u32(s[1]), u32(s[2]))
	if !ok {
		ret(s, resultInvalidMemoryAccess)
		return
	}
	token := u32(s[0])
	q := &v.host.queues
	q.mu.Lock()
	queue, found := q.queues[token]
	var owner *vm
	var context uint32
	if found {
		queue.items = append(queue.items, value)
		owner, context = queue.owner, queue.context
	}
	q.mu.Unlock()
	if !found {
		ret(s, resultNotFound)
		return
	}
	notify := func() { owner.callback(owner.exports.onQueueReady, context, uint64(context), uint64(token)) }
	if owner == v {
		v.afterCall(notify) // Envoy posts to the owning thread; on this one, after this call
	} else {
		go owner.post(notify)
	}
	ret(s, resultOk)
}
