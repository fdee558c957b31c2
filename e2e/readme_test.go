package e2e

import (
	"os"
	"strings"
	"testing"
)

// The README's Django and Python excerpts are the project's files as they are: what a
// Django team copies is what TestDjangoBehindTheFilter runs.
func TestREADMEShowsTheDjangoProjectAsItIs(t *testing.T) {
	onceAcrossPasses(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{"accounts/models.py", "accounts/views.py", "accounts/signature.py"} {
		code, err := os.ReadFile("../examples/django/" + file)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(readme), "```python\n"+string(code)+"```\n") {
			t.Errorf("README.md does not show examples/django/%s as it is: copy the file into its code block", file)
		}
	}
}
