// Package expcache is a bounded map whose entries expire: what a filter VM remembers
// between requests (opened sessions, verified bearer tokens, on-behalf-of tokens,
// sessions it renewed), each entry kept until its own expiry and never more than a
// fixed number of entries (and, optionally, bytes) at once.
//
// The clock is passed in as a function and read only when an answer depends on it: in
// a Wasm VM every read of the time is a host call. A Cache is not safe for concurrent
// use; a VM runs one thread.
package expcache

import "time"

// Cache maps keys to values, each until its expiry.
type Cache[K comparable, V any] struct {
	maxEntries int
	maxBytes   int
	size       func(V) int
	bytes      int
	entries    map[K]entry[V]
}

type entry[V any] struct {
	value   V
	expires time.Time
	size    int
}

// New returns a cache of at most maxEntries entries (at least 1).
func New[K comparable, V any](maxEntries int) *Cache[K, V] {
	return &Cache[K, V]{maxEntries: max(maxEntries, 1), entries: map[K]entry[V]{}}
}

// NewSized returns a cache of at most maxEntries entries whose values, as size measures
// them, add up to at most maxBytes; a value larger than maxBytes is not kept.
func NewSized[K comparable, V any](maxEntries, maxBytes int, size func(V) int) *Cache[K, V] {
	c := New[K, V](maxEntries)
	c.maxBytes, c.size = maxBytes, size
	return c
}

// Get returns the value for key when there is one and now (read only then) is before its
// expiry; an expired entry is removed.
func (c *Cache[K, V]) Get(key K, now func() time.Time) (V, bool) {
	e, ok := c.entries[key]
	if !ok {
		var zero V
		return zero, false
	}
	if !now().Before(e.expires) {
		c.Delete(key)
		var zero V
		return zero, false
	}
	return e.value, true
}

// Put keeps value for key until expires, replacing what key had. When the cache is full
// it reads now once and drops the expired entries; if that is not enough, arbitrary ones
// until a tenth of the room is free: Go's map order is random, so no client can choose
// which entries go. A value larger than the byte bound is not kept, nor one already
// expired when room is made.
func (c *Cache[K, V]) Put(key K, value V, expires time.Time, now func() time.Time) {
	c.Delete(key)
	size := 0
	if c.size != nil {
		if size = c.size(value); size > c.maxBytes {
			return
		}
	}
	if c.full(size) {
		t := now()
		if !t.Before(expires) {
			return
		}
		for k, e := range c.entries {
			if !t.Before(e.expires) {
				c.Delete(k)
			}
		}
		// Still full: drop arbitrary entries until a tenth of the room is free, so that
		// the scan above runs once per tenth of the bound, not on every put.
		target := c.maxEntries - max(c.maxEntries/10, 1)
		for k := range c.entries {
			if len(c.entries) <= target && !c.full(size) {
				break
			}
			c.Delete(k)
		}
	}
	c.entries[key] = entry[V]{value: value, expires: expires, size: size}
	c.bytes += size
}

// full reports whether an entry of size bytes does not fit.
func (c *Cache[K, V]) full(size int) bool {
	return len(c.entries) >= c.maxEntries || (c.size != nil && c.bytes+size > c.maxBytes)
}

// Delete removes key's entry, if any.
func (c *Cache[K, V]) Delete(key K) {
	if e, ok := c.entries[key]; ok {
		c.bytes -= e.size
		delete(c.entries, key)
	}
}

// Clear removes every entry.
func (c *Cache[K, V]) Clear() {
	clear(c.entries)
	c.bytes = 0
}

// Len is the number of entries, expired ones not yet dropped included.
func (c *Cache[K, V]) Len() int { return len(c.entries) }

// Bytes is the size of the values kept, for a cache made by NewSized.
func (c *Cache[K, V]) Bytes() int { return c.bytes }
