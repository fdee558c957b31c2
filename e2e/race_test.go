//go:build race

package e2e

// raceEnabled: this test binary runs under the race detector, and so does the runner it
// builds, where the host's concurrency (workers, shared data, calls) lives.
const raceEnabled = true
