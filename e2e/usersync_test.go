package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
	"github.com/entra-auth/entra-auth/e2e/usersync"
)

const (
	syncSecret = "e2e-user-sync-secret"
	// Ada's two groups in the demo tenant, and one she is added to.
	groupOne, groupTwo, groupThree = "a4f7c0d2-1111-4a5b-9c3d-000000000001", "a4f7c0d2-1111-4a5b-9c3d-000000000002", "a4f7c0d2-1111-4a5b-9c3d-000000000003"
)

// syncService is the reference user-sync service on loopback, behind switches that make
// it slow or answer a status of their choosing instead of syncing.
type syncService struct {
	*usersync.Service
	srv   *httptest.Server
	calls atomic.Int32
	// delay holds each call this long; status, when set, is answered instead.
	delay  atomic.Int64
	status atomic.Int32
	// failFirst calls are answered 503 before the service works.
	failFirst atomic.Int32
}

func newSyncService(t *testing.T, opts usersync.Options) *syncService {
	t.Helper()
	if opts.Secret == "" {
		opts.Secret = syncSecret
	}
	svc, err := usersync.Open(":memory:", opts)
	if err != nil {
		t.Fatal(err)
	}
	s := &syncService{Service: svc}
	h := svc.Handler()
	stop := make(chan struct{}) // ends held calls when the test does
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := s.calls.Add(1)
		select {
		case <-time.After(time.Duration(s.delay.Load())):
		case <-r.Context().Done():
			return
		case <-stop:
			return
		}
		if n <= s.failFirst.Load() {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		if code := s.status.Load(); code != 0 {
			http.Error(w, `{"error":"switched"}`, int(code))
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(stop); s.srv.Close(); svc.Close() })
	return s
}

func (s *syncService) users(t *testing.T) []usersync.Stored {
	t.Helper()
	users, err := s.Users()
	if err != nil {
		t.Fatal(err)
	}
	return users
}

// userSyncStack is a stack whose filter syncs users to the service at serviceURL (""
// leaves the cluster undefined), with the given secret in the VM and more user_sync keys.
func userSyncStack(t *testing.T, serviceURL, secret string, keys map[string]any) *stack {
	t.Helper()
	block := map[string]any{
		"url": "http://users.internal/sync", "cluster": "users", "secret_env": "USER_SYNC_SECRET",
		"flags": map[string]any{"is_staff": map[string]any{"groups": []string{groupTwo}}, "is_superuser": map[string]any{"roles": []string{"Admin"}}},
	}
	for k, v := range keys {
		block[k] = v
	}
	clusters := map[string]string{"users": serviceURL}
	if serviceURL == "" {
		clusters = nil
	}
	return newStack(t, stackOptions{
		config:   map[string]any{"user_sync": block},
		clusters: clusters,
		env:      map[string]string{"USER_SYNC_SECRET": secret},
	})
}

func hasSession(b *browser) bool {
	_, ok := b.cookies()["__Host-entra-auth"]
	return ok
}

func TestUserSyncKeepsTheDirectoryCurrent(t *testing.T) {
	svc := newSyncService(t, usersync.Options{})
	s := userSyncStack(t, svc.srv.URL, syncSecret, nil)

	// First sign-in creates the user, with groups and flags; the upstream learns its id.
	ada := s.browser()
	if done := ada.signIn("/app", "ada@contoso.example"); done.status != 302 || done.location.Path != "/app" {
		t.Fatalf("sign-in: %d %s %.300s", done.status, done.location, done.body)
	}
	users := svc.users(t)
	if len(users) != 1 {
		t.Fatalf("%d users after the first sign-in", len(users))
	}
	first := users[0]
	if first.Name != "Ada Lovelace" || first.Username != "ada@contoso.example" || first.TenantID != mockentra.DemoTenant ||
		first.ObjectID != "00000000-0000-0000-0000-00000000ada1" || strings.Join(first.Groups, ",") != groupOne+","+groupTwo ||
		!first.Flags["is_staff"] || !first.Flags["is_superuser"] {
		t.Fatalf("stored %+v", first)
	}
	userID := strconv.FormatInt(first.ID, 10)
	got := ada.get("/app/page", "X-Auth-Request-User-Id", "999").echoed(t) // forged: replaced
	if v := got.Headers["x-auth-request-user-id"]; len(v) != 1 || v[0] != userID {
		t.Fatalf("x-auth-request-user-id upstream = %v, want [%s]", v, userID)
	}
	if me := ada.get("/.auth/me", "Accept", "application/json"); !strings.Contains(me.body, `"user_id":"`+userID+`"`) {
		t.Errorf("/.auth/me lacks the user id: %s", me.body)
	}

	// Another user: another row, flags of their own.
	grace := s.browser()
	grace.signIn("/", "grace@contoso.example")
	if users := svc.users(t); len(users) != 2 || users[0].Username != "grace@contoso.example" || !users[0].Flags["is_staff"] || users[0].Flags["is_superuser"] {
		t.Fatalf("after Grace: %+v", users)
	}

	// The same sign-in again changes nothing but last_login.
	again := s.browser()
	again.signIn("/", "ada@contoso.example")
	same := storedUser(t, svc, first.ObjectID)
	if !same.LastLogin.After(first.LastLogin) || !same.UpdatedAt.Equal(first.UpdatedAt) || same.Name != first.Name ||
		strings.Join(same.Groups, ",") != strings.Join(first.Groups, ",") {
		t.Fatalf("a repeated sign-in changed more than last_login:\nbefore %+v\nafter  %+v", first, same)
	}

	// Entra renames Ada and moves her groups: the next sign-in updates and mirrors.
	s.mock.UpdateUser("ada@contoso.example", func(u *mockentra.User) {
		u.Name = "Ada King"
		u.Groups = []string{groupThree}
		u.Roles = nil
	})
	changed := s.browser()
	changed.signIn("/", "ada@contoso.example")
	after := storedUser(t, svc, first.ObjectID)
	if after.ID != first.ID || after.Name != "Ada King" || strings.Join(after.Groups, ",") != groupThree ||
		after.Flags["is_staff"] || after.Flags["is_superuser"] || !after.UpdatedAt.After(first.UpdatedAt) {
		t.Fatalf("after the change: %+v", after)
	}
	if v := changed.get("/").echoed(t).Headers["x-auth-request-user-id"]; len(v) != 1 || v[0] != userID {
		t.Errorf("user id after the change: %v, want [%s]", v, userID)
	}
}

func storedUser(t *testing.T, svc *syncService, objectID string) usersync.Stored {
	t.Helper()
	for _, u := range svc.users(t) {
		if u.ObjectID == objectID {
			return u
		}
	}
	t.Fatalf("no stored user %s", objectID)
	return usersync.Stored{}
}

func TestUserSyncFailures(t *testing.T) {
	for _, tc := range []struct {
		name    string
		secret  string
		opts    usersync.Options
		keys    map[string]any
		prepare func(*syncService)
		down    bool
		// noCluster leaves user_sync.cluster undefined in the proxy; wantLog is then said.
		noCluster bool
		wantLog   string
		// wantStatus is the callback's answer; wantCalls how many calls the service saw.
		wantStatus int
		wantCalls  int32
		wantInPage string
	}{
		{name: "wrong secret", secret: "not-the-secret", wantStatus: 403, wantCalls: 1, wantInPage: "not set up to reach its user directory"},
		{name: "tenant refused by the application", opts: usersync.Options{AllowedTenants: []string{mockentra.DemoOtherTenant}},
			keys: map[string]any{"on_failure": "allow"}, wantStatus: 403, wantCalls: 1},
		{name: "400 is not retried", prepare: func(s *syncService) { s.status.Store(400) }, wantStatus: 403, wantCalls: 1},
		{name: "one 503 is retried", prepare: func(s *syncService) { s.failFirst.Store(1) }, wantStatus: 302, wantCalls: 2},
		{name: "503 twice, deny", prepare: func(s *syncService) { s.status.Store(503) }, wantStatus: 503, wantCalls: 2, wantInPage: "user directory could not be reached"},
		{name: "503 twice, allow", keys: map[string]any{"on_failure": "allow"}, prepare: func(s *syncService) { s.status.Store(503) }, wantStatus: 302, wantCalls: 2},
		{name: "down, deny", down: true, wantStatus: 503},
		{name: "down, allow", down: true, keys: map[string]any{"on_failure": "allow"}, wantStatus: 302},
		{name: "cluster not defined", noCluster: true, wantStatus: 503, wantLog: `cannot call cluster "users": is it defined in Envoy's configuration?`},
		{name: "slow, deny", keys: map[string]any{"timeout_ms": 300}, prepare: func(s *syncService) { s.delay.Store(int64(3 * time.Second)) },
			wantStatus: 503, wantCalls: 1},
		{name: "slow, allow", keys: map[string]any{"timeout_ms": 300, "on_failure": "allow"}, prepare: func(s *syncService) { s.delay.Store(int64(3 * time.Second)) },
			wantStatus: 302, wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := newSyncService(t, tc.opts)
			if tc.prepare != nil {
				tc.prepare(svc)
			}
			url := svc.srv.URL
			if tc.down {
				svc.srv.Close() // nothing listens there any more
			}
			if tc.noCluster {
				url = ""
			}
			secret := tc.secret
			if secret == "" {
				secret = syncSecret
			}
			s := userSyncStack(t, url, secret, tc.keys)
			b := s.browser()
			started := time.Now()
			done := b.signIn("/app", "ada@contoso.example")
			took := time.Since(started)
			if done.status != tc.wantStatus || !strings.Contains(done.body, tc.wantInPage) {
				t.Fatalf("callback: %d %.400s, want %d with %q", done.status, done.body, tc.wantStatus, tc.wantInPage)
			}
			if tc.wantLog != "" && !s.runner.stderr.waitFor(tc.wantLog) {
				t.Errorf("the log lacks %q:\n%s", tc.wantLog, s.runner.stderr)
			}
			if !tc.down && svc.calls.Load() != tc.wantCalls {
				t.Errorf("the service saw %d calls, want %d", svc.calls.Load(), tc.wantCalls)
			}
			if took > 2*time.Second {
				t.Errorf("the sign-in took %v: user_sync.timeout_ms was not enforced", took)
			}
			if strings.Contains(s.runner.stderr.String(), secret) {
				t.Error("the user-sync secret is in the log")
			}
			if tc.wantStatus != 302 {
				if hasSession(b) {
					t.Fatal("a failed user sync left a session")
				}
				if p := b.get("/app"); p.status != 302 || !strings.HasPrefix(p.location.String(), s.mockURL) {
					t.Fatalf("after a failed sign-in /app answered %d %s, want a new sign-in", p.status, p.location)
				}
				return
			}
			got := b.get("/app", "X-Auth-Request-User-Id", "999").echoed(t) // forged: removed
			userIDs := got.Headers["x-auth-request-user-id"]
			synced := tc.prepare != nil && svc.failFirst.Load() > 0
			switch {
			case synced && (len(userIDs) != 1 || userIDs[0] != strconv.FormatInt(storedUser(t, svc, "00000000-0000-0000-0000-00000000ada1").ID, 10)):
				t.Errorf("user id upstream %v after a retried sync", userIDs)
			case !synced && len(userIDs) != 0:
				t.Errorf("user id upstream %v although the sync failed (on_failure: allow)", userIDs)
			}
			if got.Headers["x-auth-request-oid"] == nil {
				t.Error("signed in without identity headers")
			}
		})
	}
}

// usersyncProgram is the e2e/cmd/usersync binary, built once when a test needs it.
var usersyncProgram = sync.OnceValues(func() (string, error) {
	file := filepath.Join(filepath.Dir(runnerFile), "usersync")
	cmd := exec.Command("go", "build", "-o", file, "./e2e/cmd/usersync")
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./e2e/cmd/usersync: %v\n%s", err, out)
	}
	return file, nil
})

// The configuration `make run` uses, with the user-sync program as a separate process:
// what a newcomer sees locally is what this test signs in through.
func TestLocalExampleWithTheUserSyncProgram(t *testing.T) {
	program, err := usersyncProgram()
	if err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(t.TempDir(), "users.db")
	svc := startProcess(t, program, []string{"USER_SYNC_SECRET=" + syncSecret}, "-listen", "127.0.0.1:0", "-db", db)

	raw, err := os.ReadFile("../examples/local/plugin.json")
	if err != nil {
		t.Fatal(err)
	}
	var example map[string]any
	if err := json.Unmarshal(raw, &example); err != nil {
		t.Fatalf("examples/local/plugin.json: %v", err)
	}
	delete(example, "authority") // the stack's mock, not the one make run starts
	example["cookie_secret"] = nil
	s := newStack(t, stackOptions{
		config:   example,
		clusters: map[string]string{"users": "http://" + svc.addr},
		env:      map[string]string{"USER_SYNC_SECRET": syncSecret, "ENTRA_COOKIE_SECRET": newCookieSecret()},
	})
	for _, user := range []string{"ada@contoso.example", "grace@contoso.example"} {
		if done := s.browser().signIn("/", user); done.status != 302 {
			t.Fatalf("%s: %d %.300s", user, done.status, done.body)
		}
	}

	resp, err := http.Get("http://" + svc.addr + "/users")
	if err != nil {
		t.Fatal(err)
	}
	var users []usersync.Stored
	err = json.NewDecoder(resp.Body).Decode(&users)
	resp.Body.Close()
	if err != nil || len(users) != 2 {
		t.Fatalf("GET /users: %+v %v", users, err)
	}
	flags := map[string]map[string]bool{}
	for _, u := range users {
		flags[u.Username] = u.Flags
	}
	if !flags["ada@contoso.example"]["is_superuser"] || !flags["grace@contoso.example"]["is_staff"] || flags["grace@contoso.example"]["is_superuser"] {
		t.Errorf("flags %v", flags)
	}
	resp, err = http.Get("http://" + svc.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "Grace Hopper") || !strings.Contains(string(page), "Ada Lovelace") {
		t.Errorf("the users page lacks a user:\n%s", page)
	}
}
