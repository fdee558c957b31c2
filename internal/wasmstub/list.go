package wasmstub

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// ReadImportList reads a list of a host's imports, one "module<TAB>name" per line, with
// # comments, as testdata/envoy-host-abi.txt has them. It returns the "module.name" set.
func ReadImportList(r io.Reader) (map[string]bool, error) {
	set := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		module, name, ok := strings.Cut(line, "\t")
		if !ok || module == "" || name == "" {
			return nil, fmt.Errorf("import list line %d: want module<TAB>name, got %q", n, line)
		}
		set[module+"."+name] = true
	}
	return set, sc.Err()
}
