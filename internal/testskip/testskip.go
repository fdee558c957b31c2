// Package testskip skips a test that needs a tool the machine lacks, and says so where
// `make test` shows it: go test prints nothing of a passing package's skips without -v,
// so each such skip is also appended to the file named by $ENTRA_AUTH_SKIP_LOG, which
// the Makefile prints once the tests have run.
package testskip

import (
	"os"
	"testing"
)

// LogVar names the environment variable that holds the skip log's path.
const LogVar = "ENTRA_AUTH_SKIP_LOG"

// Missing skips tb because the machine lacks what it needs (say what, and how to get it).
func Missing(tb testing.TB, what string) {
	tb.Helper()
	line := "SKIPPED: " + tb.Name() + ": " + what
	if path := os.Getenv(LogVar); path != "" {
		// One write of one line: appends from parallel test binaries do not interleave.
		if f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			f.WriteString(line + "\n")
			f.Close()
		}
	}
	tb.Skip(line)
}
