package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// parser collects every problem, so that one start-up log names them all.
type parser struct {
	root     gjson.Result
	prefix   string // of keys in a nested block, such as "user_sync."
	getenv   func(string) (string, bool)
	problems []error
}

func (p *parser) fail(key, format string, args ...any) {
	p.problems = append(p.problems, fmt.Errorf("%w: %q: %s", ErrConfig, p.prefix+key, fmt.Sprintf(format, args...)))
}

func (p *parser) string(key, def string) string {
	v := p.root.Get(key)
	if !v.Exists() {
		return def
	}
	if v.Type != gjson.String {
		p.fail(key, "must be a string")
		return def
	}
	return strings.TrimSpace(v.String())
}

func (p *parser) required(key string) string {
	v := p.root.Get(key)
	switch {
	case !v.Exists():
		p.fail(key, "is required")
	case v.Type != gjson.String:
		p.fail(key, "must be a string")
	case strings.TrimSpace(v.String()) == "":
		p.fail(key, "must not be empty")
	default:
		return strings.TrimSpace(v.String())
	}
	return ""
}

// strings reads a list of strings; a single string is split on spaces and commas when
// split is true.
func (p *parser) strings(key string, split bool) []string {
	v := p.root.Get(key)
	switch {
	case !v.Exists():
		return nil
	case v.Type == gjson.String && split:
		return strings.FieldsFunc(v.String(), func(r rune) bool { return r == ' ' || r == ',' })
	case v.IsArray():
		var out []string
		v.ForEach(func(_, item gjson.Result) bool {
			if item.Type != gjson.String || strings.TrimSpace(item.String()) == "" {
				p.fail(key, "must be a list of non-empty strings")
				return false
			}
			out = append(out, strings.TrimSpace(item.String()))
			return true
		})
		return out
	}
	p.fail(key, "must be a list of strings")
	return nil
}

// duration reads a number of seconds or a Go duration string ("90s", "8h").
func (p *parser) duration(key string, def, lowest, highest time.Duration) time.Duration {
	v := p.root.Get(key)
	var d time.Duration
	switch {
	case !v.Exists():
		return def
	case v.Type == gjson.Number:
		d = time.Duration(v.Float() * float64(time.Second))
	case v.Type == gjson.String:
		var err error
		if d, err = time.ParseDuration(v.String()); err != nil {
			p.fail(key, "is not a duration: use seconds (3600) or a duration such as \"1h\" or \"90s\"")
			return def
		}
	default:
		p.fail(key, "must be a number of seconds or a duration string such as \"1h\"")
		return def
	}
	if d < lowest || d > highest {
		p.fail(key, "must be between %v and %v, got %v", lowest, highest, d)
		return def
	}
	return d
}

// secret reads a value given either inline (key) or through a VM environment variable
// (key_env), exactly one of the two.
func (p *parser) secret(key string, required bool) (value string, ok bool) {
	envKey := key + "_env"
	inline, hasInline := p.root.Get(key), p.root.Get(envKey).Exists()
	switch {
	case inline.Exists() && hasInline:
		p.fail(key, "give either %q or %q, not both", key, envKey)
		return "", false
	case hasInline:
		name := p.string(envKey, "")
		if name == "" {
			p.fail(envKey, "must name an environment variable of the VM")
			return "", false
		}
		v, found := p.getenv(name)
		if !found || strings.TrimSpace(v) == "" {
			p.fail(envKey, "environment variable %s is not set in the VM (Envoy: vm_config.environment_variables; Istio: WasmPlugin vmConfig.env)", name)
			return "", false
		}
		return strings.TrimSpace(v), true
	case inline.Exists():
		if inline.Type == gjson.String {
			return strings.TrimSpace(inline.String()), true
		}
		return inline.Raw, true // a list form, parsed by the caller
	case required:
		p.fail(key, "is required: give %q, or %q naming a VM environment variable", key, envKey)
	}
	return "", false
}

func (p *parser) path(key, def string) string {
	v := p.string(key, def)
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "?# ") || strings.HasPrefix(v, "//") {
		p.fail(key, "must be a path starting with / (no query), such as %s", def)
		return def
	}
	return v
}

// boolean reads true or false.
func (p *parser) boolean(key string, def bool) bool {
	v := p.root.Get(key)
	switch {
	case !v.Exists():
		return def
	case v.Type != gjson.True && v.Type != gjson.False:
		p.fail(key, "must be true or false")
		return def
	}
	return v.Bool()
}

// sub is a parser for the nested block at key (its problems are reported as key.name).
func (p *parser) sub(block gjson.Result, prefix string) *parser {
	return &parser{root: block, prefix: prefix, getenv: p.getenv}
}

// known reports each key of block that is not among keys (unknownKey).
func (p *parser) known(block gjson.Result, keys ...string) {
	block.ForEach(func(k, _ gjson.Result) bool {
		if !slices.Contains(keys, k.String()) {
			p.unknownKey(k.String(), keys)
		}
		return true
	})
}

// unknownKey reports key, not among keys: with the nearest of them when one is close
// enough to be the key meant, else with the whole list.
func (p *parser) unknownKey(key string, keys []string) {
	if near := nearest(key, keys); near != "" {
		p.fail(key, "unknown key (did you mean %q?)", near)
		return
	}
	sorted := slices.Clone(keys)
	slices.Sort(sorted)
	p.fail(key, "unknown key; the keys are: %s", strings.Join(sorted, ", "))
}

// nearest returns the key of keys that key most likely misspells, or "" when none is
// close: the same but for case, "-" and "_", or within an edit distance of a quarter of
// its length (at least 1, at most 3), letters swapped counting as one edit.
func nearest(key string, keys []string) string {
	fold := func(s string) string {
		return strings.ReplaceAll(strings.ReplaceAll(strings.ToLower(s), "-", ""), "_", "")
	}
	best, bestDist := "", 0
	for _, k := range keys {
		if fold(k) == fold(key) {
			return k
		}
		d := editDistance(strings.ToLower(key), k)
		if best == "" || d < bestDist {
			best, bestDist = k, d
		}
	}
	if bestDist > min(max(len(key)/4, 1), 3) {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b: the insertions,
// deletions, substitutions and swaps of adjacent bytes that turn a into b.
func editDistance(a, b string) int {
	// d[i][j] is the distance between a[:i] and b[:j]; three rows are enough.
	prev2, prev, cur := make([]int, len(b)+1), make([]int, len(b)+1), make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// isGUID reports whether s is a GUID in its usual form (8-4-4-4-12 hex digits).
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// IsDomain reports whether s is a DNS name of two labels or more (a tenant's verified
// domain).
func IsDomain(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 || len(s) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return false
		}
	}
	return true
}
