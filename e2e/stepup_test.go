package e2e

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// stepUpStack protects /admin/* with authentication context c1 and /profile with a sign-in
// of the last ten minutes, and accepts bearer tokens for the demo API.
func stepUpStack(t *testing.T) *stack {
	t.Helper()
	return newStack(t, stackOptions{config: map[string]any{"api_audiences": apiAudiences, "rules": []any{
		map[string]any{"path": "/admin/*", "auth_context": "c1"},
		map[string]any{"path": "/profile", "max_auth_age": "10m"},
		map[string]any{"path": "/api/admin/*", "auth_context": []string{"c1", "c2"}},
		map[string]any{"path": "/api/recent", "max_auth_age": "5m"},
	}}})
}

// Step-up to an authentication context: a signed-in browser opening /admin/ is sent to
// Entra asking for c1 and comes back to the page with it; the application learns it. A
// sign-in Entra does not satisfy leaves the page out of reach; another user at the step-up
// gets a session of their own, never a merged one.
func TestStepUpEndToEnd(t *testing.T) {
	s := stepUpStack(t)

	t.Run("to a context and back to the page", func(t *testing.T) {
		b := s.browser()
		b.signIn("/", "ada@contoso.example")
		step := b.get("/admin/users?tab=1")
		if step.status != 302 || !strings.HasPrefix(step.location.String(), s.mockURL) ||
			step.location.Query().Get("claims") != `{"id_token":{"acrs":{"essential":true,"value":"c1"}}}` {
			t.Fatalf("step-up: %d %s", step.status, step.location)
		}
		back := b.pickUser(step.location, "ada@contoso.example")
		if back.status != 302 || back.location.Path != "/admin/users" || back.location.RawQuery != "tab=1" {
			t.Fatalf("after the step-up: %d %s %.300s", back.status, back.location, back.body)
		}
		p := b.get("/admin/users?tab=1")
		got := p.echoed(t)
		if p.status != 200 || strings.Join(got.Headers["x-auth-request-acrs"], ",") != "c1" || strings.Join(got.Headers["x-auth-request-user"], ",") != "ada@contoso.example" {
			t.Fatalf("the page after the step-up: %d %v", p.status, got.Headers)
		}
		// A script of the page, before any step-up, gets a challenge, not a redirect.
		other := s.browser()
		other.signIn("/", "ada@contoso.example")
		xhr := other.get("/admin/data", "Accept", "application/json", "X-Requested-With", "XMLHttpRequest")
		if xhr.status != 401 || !strings.Contains(xhr.header.Get("WWW-Authenticate"), `error="insufficient_claims"`) {
			t.Errorf("a script's request: %d %s", xhr.status, xhr.header.Get("WWW-Authenticate"))
		}
	})

	t.Run("another user at the step-up", func(t *testing.T) {
		b := s.browser()
		b.signIn("/", "ada@contoso.example")
		step := b.get("/admin/users")
		back := b.pickUser(step.location, "grace@contoso.example")
		if back.status != 302 {
			t.Fatalf("after the step-up: %d %.300s", back.status, back.body)
		}
		got := b.get("/admin/users").echoed(t)
		if strings.Join(got.Headers["x-auth-request-user"], ",") != "grace@contoso.example" || strings.Join(got.Headers["x-auth-request-roles"], ",") != "" {
			t.Errorf("the session after another user stepped up: %v (Ada's roles must not carry over)", got.Headers)
		}
	})

	t.Run("Entra does not satisfy it", func(t *testing.T) {
		s.mock.SetFaults(mockentra.Faults{StepUpUnsatisfied: true})
		defer s.mock.SetFaults(mockentra.Faults{})
		b := s.browser()
		b.signIn("/", "ada@contoso.example")
		step := b.get("/admin/users")
		back := b.pickUser(step.location, "ada@contoso.example")
		if back.status != 403 || !strings.Contains(back.body, "authentication context c1") {
			t.Fatalf("an unsatisfied step-up: %d %.300s", back.status, back.body)
		}
		if p := b.get("/"); p.status != 200 {
			t.Errorf("the rest of the site after a refused step-up: %d", p.status)
		}
	})

	t.Run("a recent sign-in", func(t *testing.T) {
		s.mock.SetFaults(mockentra.Faults{AuthTimeAgo: time.Hour}) // Entra's session is an hour old
		defer s.mock.SetFaults(mockentra.Faults{})
		b := s.browser()
		b.signIn("/", "ada@contoso.example")
		step := b.get("/profile")
		if q := step.location.Query(); step.status != 302 || q.Get("max_age") != "600" || q.Get("prompt") != "login" {
			t.Fatalf("step-up for a recent sign-in: %d %s", step.status, step.location)
		}
		if back := b.pickUser(step.location, "ada@contoso.example"); back.status != 302 || back.location.Path != "/profile" {
			t.Fatalf("after signing in again: %d %s %.300s", back.status, back.location, back.body)
		}
		if got := b.get("/profile").echoed(t); !recentUnix(strings.Join(got.Headers["x-auth-request-auth-time"], "")) {
			t.Errorf("auth time upstream: %v", got.Headers["x-auth-request-auth-time"])
		}
	})
}

// Bearer callers lacking what the path asks get the challenges their clients act on:
// Entra's insufficient_claims with the claims request, RFC 9470's
// insufficient_user_authentication with max_age.
func TestStepUpBearerChallenges(t *testing.T) {
	s := stepUpStack(t)
	ada := s.mock.Users()[0]
	mint := func(claims map[string]any) string {
		tok, err := s.mock.MintAccessToken(mockentra.AccessToken{User: ada, ClientID: "b1c2d3e4-0000-4000-8000-000000000001",
			Audience: mockentra.DemoClientID, Scopes: []string{"access_as_user"}, IssuerBase: s.mockURL, Claims: claims})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	for _, tc := range []struct {
		name, path string
		claims     map[string]any
		want       int
		wantError  string
	}{
		{"no context", "/api/admin/x", nil, 401, `error="insufficient_claims"`},
		{"one of the contexts", "/api/admin/x", map[string]any{"acrs": []string{"c2"}}, 200, ""},
		{"an old sign-in", "/api/recent", map[string]any{"auth_time": time.Now().Add(-time.Hour).Unix()}, 401, "max_age=300"},
		{"a recent one", "/api/recent", map[string]any{"auth_time": time.Now().Unix()}, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := s.browser().get(tc.path, "Authorization", "Bearer "+mint(tc.claims), "Accept", "application/json")
			challenge := p.header.Get("WWW-Authenticate")
			if p.status != tc.want || !strings.Contains(challenge, tc.wantError) {
				t.Fatalf("%d %s, want %d %s", p.status, challenge, tc.want, tc.wantError)
			}
			if tc.want == 401 && strings.Contains(challenge, "insufficient_claims") {
				claims := challenge[strings.Index(challenge, `claims="`)+8:]
				claims = claims[:strings.Index(claims, `"`)]
				if raw, err := base64.StdEncoding.DecodeString(claims); err != nil || string(raw) != `{"id_token":{"acrs":{"essential":true,"values":["c1","c2"]}}}` {
					t.Errorf("the claims request: %q %v", raw, err)
				}
			}
		})
	}
}

// An application's claims challenge to a browser's page becomes a sign-in asking Entra for
// those claims, back to the page; an application that keeps asking gets one round per
// page, then its 401 reaches the browser. Without follow_claims_challenges the 401 passes.
func TestUpstreamClaimsChallenge(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{"follow_claims_challenges": true}})
	b := s.browser()
	b.signIn("/", "ada@contoso.example")

	step := b.get("/claims-challenge/report")
	if step.status != 302 || !strings.HasPrefix(step.location.String(), s.mockURL) ||
		step.location.Query().Get("claims") != `{"id_token":{"acrs":{"essential":true,"value":"c2"}}}` {
		t.Fatalf("the application's challenge: %d %s %.200s", step.status, step.location, step.body)
	}
	if back := b.pickUser(step.location, "ada@contoso.example"); back.status != 302 || back.location.Path != "/claims-challenge/report" {
		t.Fatalf("after the sign-in: %d %s", back.status, back.location)
	}
	if p := b.get("/claims-challenge/report"); p.status != 200 {
		t.Fatalf("the page after the sign-in: %d %.200s", p.status, p.body)
	}

	// An application that asks again and again: one round, then its 401.
	step = b.get("/claims-challenge-always/x")
	if step.status != 302 {
		t.Fatalf("the first challenge: %d", step.status)
	}
	b.pickUser(step.location, "ada@contoso.example")
	if p := b.get("/claims-challenge-always/x"); p.status != 401 || !strings.Contains(p.header.Get("WWW-Authenticate"), "insufficient_claims") {
		t.Fatalf("the second challenge within minutes: %d, want the application's 401", p.status)
	}

	off := newStack(t, stackOptions{})
	ob := off.browser()
	ob.signIn("/", "ada@contoso.example")
	if p := ob.get("/claims-challenge/report"); p.status != 401 {
		t.Errorf("without follow_claims_challenges: %d, want the application's 401", p.status)
	}
}
