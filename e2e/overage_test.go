package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
	"github.com/entra-auth/entra-auth/e2e/usersync"
)

// overageStack is a mock whose tokens carry at most three groups, with Ada in five (so
// her tokens point to Graph instead).
func overageStack(t *testing.T, config map[string]any, more func(*stackOptions)) (*stack, []string) {
	t.Helper()
	opts := mockentra.DemoOptions()
	opts.GroupsLimit = 3
	groups := []string{groupTwo}
	for i := range 4 {
		groups = append(groups, fmt.Sprintf("a4f7c0d2-2222-4a5b-9c3d-00000000000%d", i))
	}
	opts.Users[0].Groups = groups
	o := stackOptions{mock: &opts, config: config}
	if more != nil {
		more(&o)
	}
	return newStack(t, o), groups
}

func TestGroupsOverageReadFromGraph(t *testing.T) {
	svc := newSyncService(t, usersync.Options{})
	s, groups := overageStack(t, map[string]any{
		"graph_cluster":  "graph",
		"allowed_groups": []string{groupTwo},
		"user_sync":      map[string]any{"url": "http://users.internal/sync", "cluster": "users", "secret_env": "USER_SYNC_SECRET"},
	}, func(o *stackOptions) {
		o.clusters = map[string]string{"users": svc.srv.URL, "graph": mockCluster}
		o.env = map[string]string{"USER_SYNC_SECRET": syncSecret}
	})
	b := s.browser()
	if done := b.signIn("/", "ada@contoso.example"); done.status != 302 {
		t.Fatalf("sign-in: %d %.300s", done.status, done.body)
	}
	if n := s.mock.GraphRequests.Load(); n != 1 {
		t.Fatalf("%d Graph calls, want 1", n)
	}
	p := b.get("/")
	if p.status != 200 {
		t.Fatalf("allowed_groups with the groups from Graph: %d %.200s", p.status, p.body)
	}
	if got := p.echoed(t).Headers["x-auth-request-groups"]; len(got) != 1 || got[0] != strings.Join(groups, ",") {
		t.Fatalf("groups upstream %v, want %v", got, groups)
	}
	if stored := storedUser(t, svc, "00000000-0000-0000-0000-00000000ada1"); len(stored.Groups) != len(groups) {
		t.Fatalf("the directory got groups %v", stored.Groups)
	}
	if strings.Contains(s.runner.stderr.String(), "evil.example") {
		t.Error("the URL the token named was used")
	}
}

// Graph refusing (no consent), or no graph_cluster: no session, a page that says why,
// never "no groups".
func TestGroupsOverageFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]any
		faults mockentra.Faults
		log    string
	}{
		{"Graph refuses", map[string]any{"graph_cluster": "graph"}, mockentra.Faults{Status: map[string]int{"graph": 403}}, "GroupMember.Read.All"},
		{"no graph_cluster", map[string]any{}, mockentra.Faults{}, "graph_cluster is not set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := overageStack(t, tc.config, func(o *stackOptions) {
				o.clusters = map[string]string{"graph": mockCluster}
				o.faults = tc.faults
			})
			b := s.browser()
			done := b.signIn("/", "ada@contoso.example")
			if done.status != 503 || !strings.Contains(done.body, "group memberships could not be read") || hasSession(b) {
				t.Fatalf("%d %.300s (session: %v)", done.status, done.body, hasSession(b))
			}
			if !s.runner.stderr.waitFor(tc.log) {
				t.Errorf("the log does not say %q", tc.log)
			}
		})
	}
}
