package flow

import (
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		refused  bool
	}{
		{"/", "/", false},
		{"/app/page?x=1", "/app/page?x=1", false},
		{"/app//page", "/app/page", false},
		{"//healthz", "/healthz", false},
		{"/healthz/../admin", "/admin", false},
		{"/healthz/%2e%2e/admin", "/admin", false},
		{"/healthz/%2E%2E/admin", "/admin", false},
		{"/healthz/.%2e/admin", "/admin", false},
		{"/a/./b/.", "/a/b/", false},
		{"/a/b/..", "/a/", false},
		{"/../../etc/passwd", "/etc/passwd", false},
		{"/%61pp", "/app", false},
		{"/a%7eb", "/a~b", false},
		{"/caf%c3%a9", "/caf%C3%A9", false},
		{"/a%20b", "/a%20b", false},
		{"/app?next=/../admin", "/app?next=/../admin", false}, // the query is the application's
		{"/healthz%2f..%2fadmin", "", true},
		{"/healthz%2F..%2Fadmin", "", true},
		{"/healthz%5c..%5cadmin", "", true},
		{`/healthz\..\admin`, "", true},
		{"/a%00b", "", true},
		{"/a\x01b", "", true},
		{"/a%", "", true},
		{"/a%2", "", true},
		{"/a%zz", "", true},
		{"/healthz/%252e%252e/admin", "", true},
		{"/a#frag", "", true},
		{"app", "", true},
		{"*", "", true},
	} {
		got, err := NormalizePath(tc.in)
		if tc.refused {
			if !errors.Is(err, ErrPath) {
				t.Errorf("NormalizePath(%q) = %q, %v; want ErrPath", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// Whatever the path, a normalized one is stable, starts with one slash, holds no
// repeated slash and no dot segment, and none appears when an upstream decodes it once.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/", "/a/../b", "/%2e%2e/x", "//x//y", "/a%2fb", "/a/./b?c=../d", "/%25%32%65", "/caf%c3%a9/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		got, err := NormalizePath(target)
		if err != nil {
			if !errors.Is(err, ErrPath) {
				t.Fatalf("%q: %v is not ErrPath", target, err)
			}
			return
		}
		again, err := NormalizePath(got)
		if err != nil || again != got {
			t.Fatalf("%q -> %q -> %q, %v: not stable", target, got, again, err)
		}
		path, _, _ := strings.Cut(got, "?")
		decoded, err := url.PathUnescape(path)
		if err != nil {
			t.Fatalf("%q -> %q does not decode: %v", target, path, err)
		}
		for _, p := range []string{path, decoded} {
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "//") || strings.Contains(p, `\`) {
				t.Fatalf("%q -> %q (%q)", target, path, p)
			}
			for _, seg := range strings.Split(p, "/") {
				if seg == "." || seg == ".." {
					t.Fatalf("%q -> %q has a dot segment once decoded (%q)", target, path, p)
				}
			}
		}
	})
}
