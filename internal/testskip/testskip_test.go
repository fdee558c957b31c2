package testskip

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMissingSkipsAndLogs(t *testing.T) {
	log := filepath.Join(t.TempDir(), "skipped.txt")
	t.Setenv(LogVar, log)
	ran := false
	t.Run("needs a tool", func(t *testing.T) {
		Missing(t, "no frobnicator (apt-get install frobnicator)")
		ran = true
	})
	if ran {
		t.Fatal("the test went on after Missing")
	}
	got, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	want := "SKIPPED: TestMissingSkipsAndLogs/needs_a_tool: no frobnicator (apt-get install frobnicator)\n"
	if string(got) != want {
		t.Errorf("log %q, want %q", got, want)
	}
	t.Run("again", func(t *testing.T) { Missing(t, "still none") })
	if got, _ := os.ReadFile(log); strings.Count(string(got), "\n") != 2 {
		t.Errorf("a second skip did not append: %q", got)
	}
}
