// Package wasmstub makes a module built by the standard Go compiler run in every Envoy
// from 1.33 on, whatever its proxy-wasm-cpp-host answers: it replaces some imports with
// functions inside the module, and leaves everything else byte for byte as it was.
//
// Two kinds of import are replaced:
//
//   - Owned imports are replaced always, even when the host provides them, because what
//     the host answers differs between Envoy releases and one answer kills the module.
//     There is one: wasi_snapshot_preview1.poll_oneoff. proxy-wasm-cpp-host answers it
//     ENOSYS up to commit 94091cd (2026-04-06, which Envoy 1.33 to 1.38 predate), and
//     Go's runtime then throws "poll_oneoff failed". The runtime calls it whenever the
//     network poller is initialized, which package os does: startTheWorldWithSema polls
//     without waiting each time a garbage collection starts, and a collection starts
//     inside proxy_on_memory_allocate, where cpp-host before 94091cd also forbids every
//     import but proxy_log, fd_write and clock_time_get (WasmBase::allocMemory). The
//     module's own poll_oneoff answers as cpp-host from 94091cd does: no events, success.
//     Nothing a filter does waits on a file or socket, so no event is ever lost.
//   - Stubbable imports are replaced only when the host lacks them: WASI file functions
//     that Envoy 1.33 does not provide and that nothing calls. golang-jwt/jwt/v5 imports
//     crypto/x509, which links package net, whose package initialisation keeps
//     os.OpenFile reachable; on wasip1, os.OpenFile can reach os.Chmod (only when
//     creating a file with the sticky bit, which nothing in entra-auth does), and so the
//     module imports wasi_snapshot_preview1.path_filestat_get. A module with an import
//     the host lacks fails to load. Later cpp-host versions answer it with ENOTSUP, and
//     so does the stub.
//
// Any other import the host lacks is an error: it may be called, and a stub would hide a
// real incompatibility.
//
// How: the import is removed and a function of the same type is appended to the module's
// own functions; every function index after the import shifts down by one, so calls,
// ref.func, exports, the start function, element segments and the name section are
// rewritten. Code is decoded instruction by instruction (WebAssembly 2.0 core, with
// bulk memory, sign extension and saturating conversions; SIMD is refused).
package wasmstub

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
)

// Stubbable lists the imports that may be replaced, with the errno the stub returns:
// what proxy-wasm-cpp-host answers for them in releases after Envoy 1.33.
var Stubbable = map[string]uint32{
	"wasi_snapshot_preview1.path_filestat_get":     58, // ENOTSUP
	"wasi_snapshot_preview1.fd_filestat_get":       8,  // EBADF
	"wasi_snapshot_preview1.fd_readdir":            8,  // EBADF
	"wasi_snapshot_preview1.fd_pread":              8,  // EBADF
	"wasi_snapshot_preview1.fd_pwrite":             8,  // EBADF
	"wasi_snapshot_preview1.fd_tell":               8,  // EBADF
	"wasi_snapshot_preview1.fd_sync":               8,  // EBADF
	"wasi_snapshot_preview1.fd_datasync":           8,  // EBADF
	"wasi_snapshot_preview1.path_readlink":         58, // ENOTSUP
	"wasi_snapshot_preview1.path_unlink_file":      58, // ENOTSUP
	"wasi_snapshot_preview1.path_rename":           58, // ENOTSUP
	"wasi_snapshot_preview1.path_create_directory": 58, // ENOTSUP
	"wasi_snapshot_preview1.path_remove_directory": 58, // ENOTSUP
}

// Owned lists the imports replaced whatever the host provides, with the body each gets.
var Owned = map[string]Body{
	"wasi_snapshot_preview1.poll_oneoff": PollNoEvents,
}

// Body is what a replacement function does.
type Body int

const (
	// ReturnErrno returns a fixed errno and touches nothing.
	ReturnErrno Body = iota
	// PollNoEvents is poll_oneoff(in, out, nsubscriptions, nevents) as proxy-wasm-cpp-host
	// answers it from commit 94091cd on: it stores 0 at nevents and returns success.
	PollNoEvents
)

// ErrUnsupported reports a module this package cannot rewrite safely.
var ErrUnsupported = errors.New("wasmstub: cannot rewrite module")

// Stub replaces the module's Owned imports, and those that provided does not know (a
// "module.name" set), with local functions, and returns the rewritten module and the
// names replaced. A module that needs no replacement comes back unchanged.
func Stub(module []byte, provided map[string]bool) ([]byte, []string, error) {
	return StubOwning(module, provided, Owned)
}

// StubOwning is Stub with another set of owned imports: nil owns none, which builds a
// module as it was before it answered poll_oneoff itself (tests show what that costs).
func StubOwning(module []byte, provided map[string]bool, owned map[string]Body) ([]byte, []string, error) {
	m, err := parse(module)
	if err != nil {
		return nil, nil, err
	}
	imports, types, err := m.functionImports()
	if err != nil {
		return nil, nil, err
	}
	var missing []stubbed
	for i, im := range imports {
		s := stubbed{index: uint32(i), typ: im.typ, name: im.name}
		sig := types[im.typ]
		if body, ok := owned[im.name]; ok {
			if !bytes.Equal(sig.params, []byte{valI32, valI32, valI32, valI32}) || !bytes.Equal(sig.results, []byte{valI32}) {
				return nil, nil, fmt.Errorf("%w: %s does not have poll_oneoff's type (i32, i32, i32, i32) -> i32", ErrUnsupported, im.name)
			}
			s.body = body
			missing = append(missing, s)
			continue
		}
		if provided[im.name] {
			continue
		}
		code, ok := Stubbable[im.name]
		if !ok {
			return nil, nil, fmt.Errorf("%w: it imports %s, which the host does not provide and which cannot be replaced safely", ErrUnsupported, im.name)
		}
		if !bytes.Equal(sig.results, []byte{valI32}) {
			return nil, nil, fmt.Errorf("%w: %s does not return an errno", ErrUnsupported, im.name)
		}
		s.errno = code
		missing = append(missing, s)
	}
	if len(missing) == 0 {
		return module, nil, nil
	}
	defined, err := m.definedFunctions()
	if err != nil {
		return nil, nil, err
	}
	r := newRemap(uint32(len(imports)), defined, missing)
	out, err := m.rewrite(r)
	if err != nil {
		return nil, nil, err
	}
	names := make([]string, len(missing))
	for i, s := range missing {
		names[i] = s.name
	}
	sort.Strings(names)
	return out, names, nil
}

type stubbed struct {
	index uint32 // among function imports
	typ   uint32
	body  Body
	errno uint32 // for ReturnErrno
	name  string
}

// remap gives each old function index its new one: imports before a removed one keep
// theirs, later functions move down, and removed imports become the stubs appended
// after the defined functions.
type remap struct {
	removed []stubbed
	newOf   func(uint32) uint32
}

func newRemap(numImports, numDefined uint32, removed []stubbed) *remap {
	r := &remap{removed: removed}
	at := map[uint32]uint32{}
	for j, s := range removed {
		at[s.index] = numImports - uint32(len(removed)) + numDefined + uint32(j)
	}
	r.newOf = func(old uint32) uint32 {
		if n, ok := at[old]; ok {
			return n
		}
		shift := uint32(0)
		for _, s := range removed {
			if s.index < old {
				shift++
			}
		}
		return old - shift
	}
	return r
}
