package envoyhost

import (
	"crypto/rand"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// wasiFuncs are the wasi_snapshot_preview1 functions Envoy 1.33 provides, answering as
// proxy-wasm-cpp-host's src/exports.cc does: no files, stdout and stderr into the log,
// the VM's environment variables, real clocks and randomness, and a poll_oneoff that
// answers ENOSYS (Envoy 1.33 to 1.38) or returns at once with no events (cpp-host from
// 94091cd on), so that a module can never sleep.
func wasiFuncs() []hostFunc {
	const w = "wasi_snapshot_preview1"
	return []hostFunc{
		{w, "fd_write", i32s(4), i32s(1), wasiFdWrite},
		{w, "fd_read", i32s(4), i32s(1), errno(errnoNosys)},
		{w, "fd_seek", []api.ValueType{i32, i64, i32, i32}, i32s(1), errno(errnoSuccess)},
		{w, "fd_close", i32s(1), i32s(1), errno(errnoSuccess)},
		{w, "fd_fdstat_get", i32s(2), i32s(1), wasiFdstatGet},
		{w, "fd_fdstat_set_flags", i32s(2), i32s(1), errno(errnoNosys)},
		{w, "environ_get", i32s(2), i32s(1), wasiEnvironGet},
		{w, "environ_sizes_get", i32s(2), i32s(1), wasiEnvironSizesGet},
		{w, "args_get", i32s(2), i32s(1), errno(errnoSuccess)},
		{w, "args_sizes_get", i32s(2), i32s(1), func(v *vm, s []uint64) {
			if !v.writeU32(u32(s[0]), 0) || !v.writeU32(u32(s[1]), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		}},
		{w, "clock_time_get", []api.ValueType{i32, i64, i32}, i32s(1), wasiClockTimeGet},
		{w, "random_get", i32s(2), i32s(1), wasiRandomGet},
		{w, "sched_yield", nil, i32s(1), errno(errnoSuccess)},
		{w, "poll_oneoff", i32s(4), i32s(1), func(v *vm, s []uint64) {
			if v.host.cfg.Envoy < EnvoyNewest {
				s[0] = errnoNosys
				return
			}
			if !v.writeU32(u32(s[3]), 0) {
				s[0] = errnoFault
				return
			}
			s[0] = errnoSuccess
		}},
		{w, "proc_exit", i32s(1), nil, func(v *vm, s []uint64) {
			// Envoy logs this and returns; the module then traps on its way out. Stopping
			// the call here ends in the same place: a failed VM.
			panic(procExit(u32(s[0])))
		}},
		{w, "path_open", []api.ValueType{i32, i32, i32, i32, i32, i64, i64, i32, i32}, i32s(1), errno(errnoNoent)},
		{w, "fd_prestat_get", i32s(2), i32s(1), errno(errnoBadf)},
		{w, "fd_prestat_dir_name", i32s(3), i32s(1), errno(errnoNosys)},
	}
}

type procExit uint32

func (c procExit) Error() string {
	return "module called proc_exit(" + strconv.FormatUint(uint64(c), 10) + ")"
}

func errno(code uint64) func(*vm, []uint64) {
	return func(_ *vm, s []uint64) { s[0] = code }
}

// wasiFdWrite sends stdout to the log at info and stderr at error, one line per call
// without its trailing newline; other descriptors are EBADF.
func wasiFdWrite(v *vm, s []uint64) {
	fd, iovs, iovsLen, nwritten := u32(s[0]), u32(s[1]), u32(s[2]), u32(s[3])
	var level LogLevel
	switch fd {
	case 1:
		level = LogInfo
	case 2:
		level = LogError
	default:
		s[0] = errnoBadf
		return
	}
	var msg strings.Builder
	for i := uint32(0); i < iovsLen; i++ {
		iov, ok := v.mod.Memory().Read(iovs+8*i, 8)
		if !ok {
			s[0] = errnoFault
			return
		}
		buf, ok := v.mod.Memory().Read(le32(iov), le32(iov[4:]))
		if !ok {
			s[0] = errnoFault
			return
		}
		msg.Write(buf)
	}
	written := msg.Len()
	if written > 0 {
		v.streamLog(level, msg.String())
	}
	if !v.writeU32(nwritten, uint32(written)) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

// wasiFdstatGet describes stdout and stderr as writable descriptors of unknown type.
func wasiFdstatGet(v *vm, s []uint64) {
	fd, out := u32(s[0]), u32(s[1])
	if fd != 1 && fd != 2 {
		s[0] = errnoBadf
		return
	}
	const rightFdWrite = 64
	if !v.writeU64(out, 0) || !v.writeU64(out+8, rightFdWrite) || !v.writeU64(out+16, 0) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

// environ lists KEY=VALUE entries in a stable order.
func (h *Host) environ() []string {
	out := make([]string, 0, len(h.cfg.Env))
	for k, val := range h.cfg.Env {
		out = append(out, k+"="+val)
	}
	sort.Strings(out)
	return out
}

func wasiEnvironSizesGet(v *vm, s []uint64) {
	env := v.host.environ()
	size := 0
	for _, e := range env {
		size += len(e) + 1
	}
	if !v.writeU32(u32(s[0]), uint32(len(env))) || !v.writeU32(u32(s[1]), uint32(size)) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func wasiEnvironGet(v *vm, s []uint64) {
	array, buf := u32(s[0]), u32(s[1])
	for _, e := range v.host.environ() {
		if !v.writeU32(array, buf) || !v.mod.Memory().Write(buf, append([]byte(e), 0)) {
			s[0] = errnoFault
			return
		}
		array += 4
		buf += uint32(len(e)) + 1
	}
	s[0] = errnoSuccess
}

// monotonicBase anchors the monotonic clock.
var monotonicBase = time.Now()

func wasiClockTimeGet(v *vm, s []uint64) {
	var now uint64
	switch u32(s[0]) {
	case 0: // realtime
		now = uint64(time.Now().UnixNano())
	case 1: // monotonic
		now = uint64(time.Since(monotonicBase).Nanoseconds()) + 1
	default:
		s[0] = errnoNotsup
		return
	}
	if !v.writeU64(u32(s[2]), now) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}

func wasiRandomGet(v *vm, s []uint64) {
	ptr, size := u32(s[0]), u32(s[1])
	if size > maxRandomGet {
		s[0] = errnoInval
		return
	}
	buf := make([]byte, size)
	_, _ = rand.Read(buf)
	if !v.mod.Memory().Write(ptr, buf) {
		s[0] = errnoFault
		return
	}
	s[0] = errnoSuccess
}
