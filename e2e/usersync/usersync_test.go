package usersync

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const secret = "sync-s3cret"

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	svc   *Service
	srv   *httptest.Server
	clock *clock
}

func newFixture(t *testing.T, path string, opts Options) *fixture {
	t.Helper()
	c := &clock{now: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}
	opts.Secret, opts.Now = secret, c.Now
	svc, err := Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(func() { srv.Close(); svc.Close() })
	return &fixture{svc: svc, srv: srv, clock: c}
}

func ada() User {
	return User{
		TenantID: "tid-1", ObjectID: "oid-1", Subject: "sub-1", Issuer: "https://login.microsoftonline.com/tid-1/v2.0",
		Username: "ada@contoso.com", Email: "ada@contoso.com", Name: "Ada Lovelace", GivenName: "Ada", FamilyName: "Lovelace",
		Groups: []string{"g1", "g2"}, Roles: []string{"Admin"}, MirrorGroups: true,
		Flags:  map[string]bool{"is_staff": true, "is_superuser": false},
		Claims: json.RawMessage(`{"oid":"oid-1","iat":1}`),
	}
}

// post sends u as the filter would, with the given bearer secret.
func (f *fixture) post(t *testing.T, bearer string, body any) (int, map[string]string) {
	t.Helper()
	var b []byte
	switch v := body.(type) {
	case string:
		b = []byte(v)
	default:
		b, _ = json.Marshal(v)
	}
	req, _ := http.NewRequest("POST", f.srv.URL+"/sync", bytes.NewReader(b))
	req.Header.Set("content-type", "application/json")
	if bearer != "" {
		req.Header.Set("authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err) // not Fatal: post runs on other goroutines too
		return 0, nil
	}
	defer resp.Body.Close()
	var answer map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&answer)
	return resp.StatusCode, answer
}

func (f *fixture) users(t *testing.T) []Stored {
	t.Helper()
	users, err := f.svc.Users()
	if err != nil {
		t.Fatal(err)
	}
	return users
}

func TestSyncCreatesThenOnlyTouchesLastLogin(t *testing.T) {
	f := newFixture(t, ":memory:", Options{})
	status, first := f.post(t, secret, ada())
	if status != 200 || first["user_id"] == "" {
		t.Fatalf("first sync: %d %v", status, first)
	}
	created := f.users(t)
	if len(created) != 1 {
		t.Fatalf("%d users", len(created))
	}
	u := created[0]
	if u.Username != "ada@contoso.com" || u.GivenName != "Ada" || u.FamilyName != "Lovelace" || strings.Join(u.Groups, ",") != "g1,g2" ||
		!u.Flags["is_staff"] || u.Flags["is_superuser"] || !u.CreatedAt.Equal(f.clock.Now()) {
		t.Fatalf("stored %+v", u)
	}

	f.clock.advance(time.Hour)
	again := ada()
	again.Claims = json.RawMessage(`{"oid":"oid-1","iat":2}`) // a new token: only its times differ
	if status, second := f.post(t, secret, again); status != 200 || second["user_id"] != first["user_id"] {
		t.Fatalf("second sync: %d %v, want the same user id %s", status, second, first["user_id"])
	}
	after := f.users(t)
	if len(after) != 1 {
		t.Fatalf("%d users after the same sign-in twice", len(after))
	}
	want := u
	want.LastLogin = f.clock.Now()
	if !equalStored(after[0], want) {
		t.Fatalf("the same sign-in changed more than last_login:\n got %+v\nwant %+v", after[0], want)
	}
}

func equalStored(a, b Stored) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestSyncUpdatesChangedFieldsGroupsAndFlags(t *testing.T) {
	f := newFixture(t, ":memory:", Options{})
	f.post(t, secret, ada())
	f.clock.advance(time.Minute)

	changed := ada()
	changed.Name, changed.FamilyName = "Ada King", "King"
	changed.Groups = []string{"g2", "g3"}
	changed.Flags = map[string]bool{"is_staff": false, "is_superuser": true}
	if status, _ := f.post(t, secret, changed); status != 200 {
		t.Fatal(status)
	}
	u := f.users(t)[0]
	if u.Name != "Ada King" || u.FamilyName != "King" || strings.Join(u.Groups, ",") != "g2,g3" || u.Flags["is_staff"] || !u.Flags["is_superuser"] ||
		!u.UpdatedAt.Equal(f.clock.Now()) || u.CreatedAt.Equal(f.clock.Now()) {
		t.Fatalf("after a changed sign-in: %+v", u)
	}

	// Without mirror_groups the groups sent are added, none removed.
	f.clock.advance(time.Minute)
	merged := changed
	merged.Groups, merged.MirrorGroups = []string{"g4"}, false
	f.post(t, secret, merged)
	if u := f.users(t)[0]; strings.Join(u.Groups, ",") != "g2,g3,g4" {
		t.Fatalf("merged groups %v", u.Groups)
	}

	// Only the groups changed: updated_at moves too.
	f.clock.advance(time.Minute)
	mirrored := changed
	mirrored.Groups = nil
	f.post(t, secret, mirrored)
	if u := f.users(t)[0]; len(u.Groups) != 0 || !u.UpdatedAt.Equal(f.clock.Now()) {
		t.Fatalf("mirrored empty groups: %+v", u)
	}
}

func TestSyncKeysUsersByTenantAndObject(t *testing.T) {
	f := newFixture(t, ":memory:", Options{})
	a, b, c := ada(), ada(), ada()
	b.TenantID = "tid-2" // same object id in another tenant: another user
	c.ObjectID = "oid-2"
	ids := map[string]bool{}
	for _, u := range []User{a, b, c, a} {
		_, answer := f.post(t, secret, u)
		ids[answer["user_id"]] = true
	}
	if len(ids) != 3 || len(f.users(t)) != 3 {
		t.Fatalf("ids %v, %d users", ids, len(f.users(t)))
	}
}

func TestSyncRefusals(t *testing.T) {
	f := newFixture(t, ":memory:", Options{AllowedTenants: []string{"tid-1"}})
	other := ada()
	other.TenantID = "tid-9"
	noIDs := ada()
	noIDs.ObjectID = ""
	for _, tc := range []struct {
		name   string
		bearer string
		body   any
		want   int
	}{
		{"no secret", "", ada(), 401},
		{"wrong secret", "sync-s3cre", ada(), 401},
		{"longer secret", secret + "x", ada(), 401},
		{"not JSON", secret, `{"tenant_id":`, 400},
		{"not a user", secret, `[1,2]`, 400},
		{"no object id", secret, noIDs, 400},
		{"tenant not accepted", secret, other, 403},
	} {
		if status, answer := f.post(t, tc.bearer, tc.body); status != tc.want || answer["message"] == "" {
			t.Errorf("%s: %d %v, want %d with a message", tc.name, status, answer, tc.want)
		}
	}
	if n := len(f.users(t)); n != 0 {
		t.Fatalf("refused syncs stored %d users", n)
	}
}

func TestUsersSurviveARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	f := newFixture(t, path, Options{})
	_, first := f.post(t, secret, ada())
	f.srv.Close()
	f.svc.Close()

	g := newFixture(t, path, Options{})
	if users := g.users(t); len(users) != 1 || users[0].Username != "ada@contoso.com" {
		t.Fatalf("after reopening: %+v", users)
	}
	if _, again := g.post(t, secret, ada()); again["user_id"] != first["user_id"] {
		t.Fatalf("user id %s became %s", first["user_id"], again["user_id"])
	}
}

// Many first sign-ins of one user at once (several proxies, a double click) make one row.
func TestConcurrentSyncsOfOneUser(t *testing.T) {
	f := newFixture(t, filepath.Join(t.TempDir(), "users.db"), Options{})
	var wg sync.WaitGroup
	ids := make([]string, 16)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, answer := f.post(t, secret, ada())
			ids[i] = answer["user_id"]
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id == "" || id != ids[0] {
			t.Fatalf("user ids %v", ids)
		}
	}
	if n := len(f.users(t)); n != 1 {
		t.Fatalf("%d rows", n)
	}
}

func TestPagesListUsersEscaped(t *testing.T) {
	f := newFixture(t, ":memory:", Options{})
	evil := ada()
	evil.Name = `<script>alert(1)</script>`
	f.post(t, secret, evil)
	resp, err := http.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), "&lt;script&gt;") || strings.Contains(string(page), "<script>") || !strings.Contains(string(page), "is_staff") {
		t.Fatalf("page:\n%s", page)
	}
	resp, err = http.Get(f.srv.URL + "/users")
	if err != nil {
		t.Fatal(err)
	}
	var listed []Stored
	err = json.NewDecoder(resp.Body).Decode(&listed)
	resp.Body.Close()
	if err != nil || len(listed) != 1 || listed[0].ObjectID != "oid-1" {
		t.Fatalf("/users: %+v %v", listed, err)
	}
}

func TestOpenRequiresASecret(t *testing.T) {
	if _, err := Open(":memory:", Options{}); err == nil {
		t.Fatal("opened without a secret")
	}
}

// Two services on one database file (two replicas of the application) racing on the first
// sign-in of one user make one row: transactions take the write lock when they begin.
func TestTwoServicesShareOneDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "users.db")
	a, b := newFixture(t, path, Options{}), newFixture(t, path, Options{})
	for round := range 20 {
		u := ada()
		u.ObjectID = "oid-" + strings.Repeat("x", round)
		var wg sync.WaitGroup
		ids := make([]string, 2)
		statuses := make([]int, 2)
		for i, f := range []*fixture{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var answer map[string]string
				statuses[i], answer = f.post(t, secret, u)
				ids[i] = answer["user_id"]
			}()
		}
		wg.Wait()
		if statuses[0] != 200 || statuses[1] != 200 || ids[0] != ids[1] {
			t.Fatalf("round %d: statuses %v, ids %v", round, statuses, ids)
		}
	}
	if n := len(a.users(t)); n != 20 {
		t.Fatalf("%d rows for 20 users", n)
	}
}

// The service implements the contract in docs/user-sync.openapi.json: its example body is
// stored, and the answer has the documented shape.
func TestServiceAcceptsTheDocumentedExample(t *testing.T) {
	raw, err := os.ReadFile("../../docs/user-sync.openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Examples map[string]struct {
				Value json.RawMessage `json:"value"`
			} `json:"examples"`
		} `json:"components"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, ":memory:", Options{})
	status, answer := f.post(t, secret, string(doc.Components.Examples["ada"].Value))
	if status != 200 || answer["user_id"] == "" {
		t.Fatalf("%d %v", status, answer)
	}
	if u := f.users(t); len(u) != 1 || u[0].GivenName != "Ada" || !u[0].Flags["is_superuser"] || len(u[0].Groups) != 2 {
		t.Fatalf("stored %+v", u)
	}
}

// BenchmarkSync is one sign-in's sync as the service sees it: a POST over loopback, a
// transaction on a database file, the answer.
func BenchmarkSync(b *testing.B) {
	c := &clock{now: time.Now()}
	svc, err := Open(filepath.Join(b.TempDir(), "users.db"), Options{Secret: secret, Now: c.Now})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	b.Cleanup(func() { srv.Close(); svc.Close() })
	body, _ := json.Marshal(ada())
	for b.Loop() {
		c.advance(time.Second)
		req, _ := http.NewRequest("POST", srv.URL+"/sync", bytes.NewReader(body))
		req.Header.Set("authorization", "Bearer "+secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatal(resp.Status)
		}
	}
}
