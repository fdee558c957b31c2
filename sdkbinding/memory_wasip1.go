//go:build wasip1

package sdkbinding

import "unsafe"

// allocations holds the buffers handed to the host during the host call in progress.
// Holding them here keeps the collector from freeing memory the host is still writing
// into, or that the host has written an address of into a plain uint32; received turns
// that address back into a real Go pointer and lets the list go.
//
// A Go wasm module runs one thread, and the host allocates only while one of our
// imports is running, so a single list is enough.
var allocations [][]byte

// proxyOnMemoryAllocate gives the host size bytes of Go memory to copy a result into.
//
//go:wasmexport proxy_on_memory_allocate
func proxyOnMemoryAllocate(size uint32) *byte {
	buf := make([]byte, max(size, 1)) // a zero-size request still needs a valid address
	allocations = append(allocations, buf)
	return &buf[0]
}

// received returns, as a Go pointer and an int size (the SDK's types), the memory the host
// reported at addr with size bytes, and releases every allocation of the finished call.
// addr 0 is "nothing returned". An address the host did not get from
// proxyOnMemoryAllocate, or a size larger than what was allocated there, is a host bug
// that would otherwise corrupt memory, so it panics.
func received(addr, size uint32) (*byte, int) {
	defer releaseAllocations()
	if addr == 0 {
		return nil, 0
	}
	for _, buf := range allocations {
		if uint32(uintptr(unsafe.Pointer(&buf[0]))) != addr {
			continue
		}
		if uint64(size) > uint64(len(buf)) {
			panic("sdkbinding: host returned more bytes than it allocated")
		}
		return &buf[0], int(size)
	}
	panic("sdkbinding: host returned memory it did not get from proxy_on_memory_allocate")
}

func releaseAllocations() {
	clear(allocations)
	allocations = allocations[:0]
}
