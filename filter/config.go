package filter

import (
	"errors"
	"fmt"
	"sort"

	"github.com/tidwall/gjson"
)

// Config is the plugin configuration (Envoy's `configuration`, Istio's `pluginConfig`).
// At this stage the filter only passes requests through, so the configuration carries no
// settings yet; it must still be a JSON object, so that a broken file fails at start
// rather than when settings are added.
type Config struct {
	// Keys are the top-level keys present, sorted, for the start-up log line.
	Keys []string
}

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("filter: invalid plugin configuration")

// ParseConfig parses the plugin configuration. Empty input means all defaults.
func ParseConfig(data []byte) (Config, error) {
	if len(data) == 0 {
		return Config{}, nil
	}
	if !gjson.ValidBytes(data) {
		return Config{}, fmt.Errorf("%w: not valid JSON; check the quoting and commas of the configuration value", ErrConfig)
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return Config{}, fmt.Errorf("%w: must be a JSON object ({...}), got %s", ErrConfig, kindOf(root))
	}
	var cfg Config
	root.ForEach(func(key, _ gjson.Result) bool {
		cfg.Keys = append(cfg.Keys, key.String())
		return true
	})
	sort.Strings(cfg.Keys)
	return cfg, nil
}

func kindOf(r gjson.Result) string {
	switch {
	case r.IsArray():
		return "an array"
	case r.Type == gjson.String:
		return "a string"
	case r.Type == gjson.Number:
		return "a number"
	case r.Type == gjson.True || r.Type == gjson.False:
		return "a boolean"
	default:
		return "null"
	}
}
