package filter

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name     string
		in       string
		wantKeys []string
		wantErr  string
	}{
		{name: "empty means defaults", in: ""},
		{name: "empty object", in: "{}"},
		{name: "keys listed sorted", in: `{"tenant_id": "t", "client_id": "c"}`, wantKeys: []string{"client_id", "tenant_id"}},
		{name: "broken JSON", in: `{"tenant_id": }`, wantErr: "not valid JSON"},
		{name: "array", in: `["a"]`, wantErr: "got an array"},
		{name: "string", in: `"config"`, wantErr: "got a string"},
		{name: "number", in: `42`, wantErr: "got a number"},
		{name: "null", in: `null`, wantErr: "got null"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrConfig) {
					t.Fatalf("error %v, want one wrapping ErrConfig that says %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Keys, tc.wantKeys) {
				t.Errorf("keys %q, want %q", cfg.Keys, tc.wantKeys)
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	for _, seed := range []string{"", "{}", `{"a":1}`, `[`, `{"a":{"b":[1,2,{"c":null}]}}`, "\xff"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig(data)
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Fatalf("error %v does not wrap ErrConfig", err)
		}
		if err == nil && !slices.IsSorted(cfg.Keys) {
			t.Fatalf("keys not sorted: %q", cfg.Keys)
		}
	})
}
