package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/internal/testskip"
)

// make help lists every target the Makefile declares, each with its purpose: a newcomer
// learns what there is to run from it.
func TestMakeHelpListsEveryTarget(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		testskip.Missing(t, "no make (apt-get install make)")
	}
	makefile, err := os.ReadFile("Makefile")
	if err != nil {
		t.Fatal(err)
	}
	var targets []string
	for line := range strings.SplitSeq(string(makefile), "\n") {
		if phony, ok := strings.CutPrefix(line, ".PHONY:"); ok {
			targets = append(targets, strings.Fields(phony)...)
		}
	}
	if len(targets) < 5 {
		t.Fatalf("found %d targets in .PHONY: %v", len(targets), targets)
	}
	cmd := exec.Command("make", "--no-print-directory", "-s", "help")
	// Run as a newcomer would, not as a sub-make of make test (whose flags would add lines).
	for _, v := range os.Environ() {
		if name, _, _ := strings.Cut(v, "="); name != "MAKEFLAGS" && name != "MAKELEVEL" && name != "MFLAGS" {
			cmd.Env = append(cmd.Env, v)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	purpose := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "  ") {
			t.Errorf("make help printed %q, not a target and its purpose", sc.Text())
			continue
		}
		name, text, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		purpose[name] = strings.TrimSpace(text)
	}
	for _, target := range targets {
		if len(purpose[target]) < 15 {
			t.Errorf("make help says of %s: %q; want its purpose (a '## %s: ...' line above it)", target, purpose[target], target)
		}
	}
	if len(purpose) != len(targets) {
		t.Errorf("make help lists %d targets, the Makefile declares %d: %v", len(purpose), len(targets), targets)
	}
}
