package e2e

import (
	"net/http"
	"testing"
)

// Paths are judged as the upstream will read them: dot segments (plain or encoded) and
// repeated slashes cannot carry a request past skip_paths or a rule, encoded slashes
// and backslashes are refused, and the upstream gets the path that was judged.
func TestPathsAreJudgedAsTheUpstreamReadsThem(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{
		"skip_paths": []string{"/healthz", "/public/*"},
		"rules":      []map[string]any{{"path": "/admin/*", "roles": []string{"NoOneHasThis"}}},
	}})
	anon := s.browser()
	send := func(b *browser, rawPath string) *page {
		t.Helper()
		req, _ := http.NewRequest("GET", s.base+"/", nil)
		req.URL.Opaque = rawPath // sent exactly as written (it must not start with //)
		req.Header.Set("Accept", "text/html")
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		p := &page{status: resp.StatusCode, header: resp.Header}
		buf := make([]byte, 64<<10)
		n, _ := resp.Body.Read(buf)
		p.body = string(buf[:n])
		return p
	}
	for _, tc := range []struct {
		name, path string
		status     int
		upstream   string // the path the upstream received, when it answered
	}{
		{"a skip path", "/public/logo.png", 200, "/public/logo.png"},
		{"out of a skip path with ..", "/public/../admin/users", 302, ""},
		{"out of a skip path with encoded dots", "/public/%2e%2e/admin/users", 302, ""},
		{"out of a skip path with mixed dots", "/public/.%2E/admin/users", 302, ""},
		{"repeated slashes", "/public//logo.png", 200, "/public/logo.png"},
		{"a dot segment kept from the upstream", "/public/./logo.png", 200, "/public/logo.png"},
		{"an encoded slash", "/public%2f..%2fadmin/users", 400, ""},
		{"an encoded backslash", "/public/..%5cadmin/users", 400, ""},
		{"a double encoding", "/public/%252e%252e/admin/users", 400, ""},
		{"an encoded unreserved character", "/%70ublic/logo.png", 200, "/public/logo.png"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := send(anon, tc.path)
			if p.status != tc.status {
				t.Fatalf("GET %s: %d, want %d: %.200s", tc.path, p.status, tc.status, p.body)
			}
			if tc.upstream != "" {
				if got := p.echoed(t).Path; got != tc.upstream {
					t.Errorf("the upstream got %q, want %q", got, tc.upstream)
				}
			}
		})
	}
	t.Run("a rule reached through dot segments", func(t *testing.T) {
		b := s.browser()
		b.signIn("/", "ada@contoso.example")
		for _, path := range []string{"/admin/users", "/app/../admin/users", "/app/%2e%2e/admin/users", "/app//..//admin//users"} {
			if p := send(b, path); p.status != 403 {
				t.Errorf("GET %s signed in without the role: %d, want 403", path, p.status)
			}
		}
	})
}
