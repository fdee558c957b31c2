package envoyhost

import (
	"fmt"
	"strings"
)

// Release says which Envoy the host answers as, where Envoy releases differ. The zero
// value is the oldest release entra-auth supports, so that a test passes only what that
// release would pass: a host kinder than Envoy hides crashes.
type Release int

const (
	// Envoy133 answers as Envoy 1.33 to 1.38, whose proxy-wasm-cpp-host predates commit
	// 94091cd (Envoy 1.33 ships c4d7bb0; Envoy's main branch stayed at beb8a4e until its
	// pull request 45756 of June 2026): poll_oneoff answers ENOSYS (src/exports.cc,
	// wasi_unstable_poll_oneoff); while _initialize runs, poll_oneoff is not among the
	// imports allowed (src/wasm.cc, WasmBase::startVm); while the host runs the module's
	// allocator, only proxy_log, fd_write and clock_time_get are
	// (include/proxy-wasm/wasm.h, WasmBase::allocMemory).
	Envoy133 Release = iota
	// EnvoyNewest answers as proxy-wasm-cpp-host from commit 94091cd (2026-04-06) on,
	// which Envoy took in June 2026 (cpp-host 09e5f8d), in time for 1.39:
	// poll_oneoff stores no events and answers success, and is allowed during _initialize
	// and inside the allocator ("go runtime gc sleep"). The import set stays Envoy
	// 1.33's: a module must still load on the oldest release.
	EnvoyNewest
)

// ParseRelease reads a release's name as the runner's -envoy flag gives it.
func ParseRelease(s string) (Release, error) {
	switch strings.ToLower(s) {
	case "1.33", "oldest":
		return Envoy133, nil
	case "newest":
		return EnvoyNewest, nil
	}
	return 0, fmt.Errorf("envoy release %q: want 1.33 (or oldest) or newest", s)
}

func (r Release) String() string {
	if r == EnvoyNewest {
		return "newest"
	}
	return "1.33"
}

// allowedDuringStart lists the imports a module may call while it runs _initialize
// (WasmBase::startVm); anything else traps the VM.
func (r Release) allowedDuringStart(name string) bool {
	switch name {
	case "env.proxy_log",
		"wasi_snapshot_preview1.fd_write",
		"wasi_snapshot_preview1.args_sizes_get",
		"wasi_snapshot_preview1.args_get",
		"wasi_snapshot_preview1.environ_sizes_get",
		"wasi_snapshot_preview1.environ_get",
		"wasi_snapshot_preview1.clock_time_get",
		"wasi_snapshot_preview1.random_get",
		"wasi_snapshot_preview1.fd_fdstat_get",
		"wasi_snapshot_preview1.fd_fdstat_set_flags",
		"wasi_snapshot_preview1.fd_prestat_get",
		"wasi_snapshot_preview1.fd_prestat_dir_name":
		return true
	case "wasi_snapshot_preview1.poll_oneoff":
		return r == EnvoyNewest
	}
	return false
}

// allowedDuringAllocation lists the imports a module may call while the host runs its
// allocator, proxy_on_memory_allocate (WasmBase::allocMemory); anything else traps the
// VM with "restricted_callback". A garbage collection that starts inside the allocator
// is held to the same rule.
func (r Release) allowedDuringAllocation(name string) bool {
	switch name {
	case "env.proxy_log", "wasi_snapshot_preview1.fd_write", "wasi_snapshot_preview1.clock_time_get":
		return true
	case "wasi_snapshot_preview1.poll_oneoff":
		return r == EnvoyNewest
	}
	return false
}

// FailurePolicy is a plugin's failure_policy (envoy.extensions.wasm.v3.FailurePolicy):
// what Envoy does with requests once the plugin's VM has failed. Envoy's
// PluginConfig::createContext applies it to each new stream.
type FailurePolicy int

const (
	// FailClosed answers every request on the failed VM 503 until Envoy restarts.
	FailClosed FailurePolicy = iota
	// FailOpen skips the filter: requests go on as if it were not there.
	FailOpen
	// FailReload starts a new VM for the worker on a later request, at most once per
	// backoff interval, and answers 503 meanwhile.
	FailReload
)

// ParseFailurePolicy reads a policy's name as Envoy's configuration spells it.
func ParseFailurePolicy(s string) (FailurePolicy, error) {
	switch strings.ToUpper(s) {
	case "FAIL_CLOSED", "":
		return FailClosed, nil
	case "FAIL_OPEN":
		return FailOpen, nil
	case "FAIL_RELOAD":
		return FailReload, nil
	}
	return 0, fmt.Errorf("failure policy %q: want FAIL_CLOSED, FAIL_OPEN or FAIL_RELOAD", s)
}

func (p FailurePolicy) String() string {
	switch p {
	case FailOpen:
		return "FAIL_OPEN"
	case FailReload:
		return "FAIL_RELOAD"
	}
	return "FAIL_CLOSED"
}
