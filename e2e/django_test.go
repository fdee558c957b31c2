package e2e

import (
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // reads the Django project's database, without cgo

	"github.com/entra-auth/entra-auth/e2e/mockentra"
	"github.com/entra-auth/entra-auth/internal/testskip"
	"github.com/entra-auth/entra-auth/upstreamsig"
)

// djangoPython finds a Python that imports Django (Debian's python3-django is for
// /usr/bin/python3), or skips saying how to get one.
func djangoPython(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if out, err := exec.Command(py, "-c", "import django; print(django.get_version())").Output(); err == nil {
			t.Logf("Django %s (%s)", strings.TrimSpace(string(out)), py)
			return py
		}
	}
	testskip.Missing(t, "no Python with Django (apt-get install python3-django; .ci/run does)")
	return ""
}

// django is examples/django running under Django's own server on loopback, with its
// SQLite database in a temporary folder.
type django struct {
	url, db string
}

func startDjango(t *testing.T, env map[string]string) *django {
	t.Helper()
	py := djangoPython(t)
	d := &django{db: filepath.Join(t.TempDir(), "django.sqlite3")}
	vars := append(os.Environ(), "DJANGO_DB="+d.db, "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost,django.internal") // the last: user_sync.url's host
	for k, v := range env {
		vars = append(vars, k+"="+v)
	}
	manage := func(args ...string) *exec.Cmd {
		cmd := exec.Command(py, append([]string{"manage.py"}, args...)...)
		cmd.Dir = "../examples/django"
		cmd.Env = vars
		return cmd
	}
	if out, err := manage("migrate", "--noinput").CombinedOutput(); err != nil {
		t.Fatalf("manage.py migrate: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	server := manage("runserver", addr, "--noreload")
	var log lockedBuffer
	server.Stdout, server.Stderr = &log, &log
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		server.Process.Kill()
		server.Wait()
		if t.Failed() {
			t.Logf("Django's log, its end:\n%s", tail(log.String(), 3000))
		}
	})
	d.url = "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			// Django loads its URLs, views and admin on the first request, seconds on a
			// cold, busy machine: not in the first sign-in's user-sync call.
			warm := &http.Client{Timeout: time.Minute}
			if resp, err := warm.Get(d.url + "/entra/sync"); err == nil {
				resp.Body.Close()
			}
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("Django did not start on %s:\n%s", addr, log.String())
		}
	}
}

// djangoUser is a row of the project's user table.
type djangoUser struct {
	ID                                        int
	Username, Email, First, Last, Tenant, OID string
	Staff, Superuser, Active                  bool
	LastLogin                                 string
	Groups                                    []string
}

func (d *django) users(t *testing.T) []djangoUser {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+d.db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT id, username, email, first_name, last_name, entra_tenant_id, entra_object_id,
		is_staff, is_superuser, is_active, COALESCE(last_login, '') FROM accounts_user ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []djangoUser
	for rows.Next() {
		var u djangoUser
		if err := rows.Scan(&u.ID, &u.Username, &u.Email, &u.First, &u.Last, &u.Tenant, &u.OID, &u.Staff, &u.Superuser, &u.Active, &u.LastLogin); err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	for i := range out {
		g, err := db.Query(`SELECT g.name FROM auth_group g JOIN accounts_user_groups ug ON ug.group_id = g.id WHERE ug.user_id = ? ORDER BY g.name`, out[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		for g.Next() {
			var name string
			g.Scan(&name)
			out[i].Groups = append(out[i].Groups, name)
		}
		g.Close()
	}
	return out
}

// The reference Django project behind the filter, as the README tells a Django team to
// set it up: the filter syncs each user into Django's users and groups at sign-in, signs
// every request it lets through, and the project's middleware logs the user in from the
// identity headers only when the signature checks out.
func TestDjangoBehindTheFilter(t *testing.T) {
	upstreamSecret := "django-upstream-secret-" + strings.Repeat("d", 16)
	d := startDjango(t, map[string]string{"USER_SYNC_SECRET": syncSecret, "ENTRA_ALLOWED_TENANTS": mockentra.DemoTenant,
		"ENTRA_UPSTREAM_SECRETS": "an-old-secret-still-accepted-while-rotating," + upstreamSecret})
	s := newStack(t, stackOptions{
		upstreamURL: d.url,
		config: map[string]any{
			"user_sync": map[string]any{"url": "http://django.internal/entra/sync", "cluster": "users", "secret_env": "USER_SYNC_SECRET", "timeout_ms": 10000,
				"flags": map[string]any{"is_staff": map[string]any{"groups": []string{groupTwo}}, "is_superuser": map[string]any{"roles": []string{"Admin"}}}},
			"upstream_signature": map[string]any{"secret_env": "ENTRA_UPSTREAM_SECRET"},
		},
		clusters: map[string]string{"users": d.url},
		env:      map[string]string{"USER_SYNC_SECRET": syncSecret, "ENTRA_UPSTREAM_SECRET": upstreamSecret},
	})

	// Sign in: the filter syncs the user, Django serves its page as that user.
	b := s.browser()
	if done := b.signIn("/", "ada@contoso.example"); done.status != 302 {
		t.Fatalf("sign-in ended with %d: %.300s", done.status, done.body)
	}
	page := b.get("/", "Accept", "application/json")
	var me struct {
		Username    string   `json:"username"`
		IsStaff     bool     `json:"is_staff"`
		IsSuperuser bool     `json:"is_superuser"`
		Groups      []string `json:"groups"`
	}
	if page.status != 200 || json.Unmarshal([]byte(page.body), &me) != nil {
		t.Fatalf("Django's page: %d %.300s", page.status, page.body)
	}
	if me.Username != "ada@contoso.example" || !me.IsStaff || !me.IsSuperuser || !slices.Equal(me.Groups, []string{groupOne, groupTwo}) {
		t.Fatalf("Django takes the user to be %+v, want ada, staff (her group) and superuser (her Admin role), in both of her groups", me)
	}
	if html := b.get("/"); html.status != 200 || !strings.Contains(html.body, "Signed in as ada@contoso.example") {
		t.Fatalf("Django's page as a browser sees it: %d %.300s", html.status, html.body)
	}

	// The admin lets her in (staff) and lists the synced users (superuser: every
	// permission), with the flags the sync set.
	admin := b.get("/admin/accounts/user/")
	if admin.status != 200 || !strings.Contains(admin.body, "ada@contoso.example") || !strings.Contains(admin.body, `alt="True"`) {
		t.Fatalf("Django admin: %d %.500s", admin.status, admin.body)
	}

	// A second sign-in changes nothing but last_login.
	before := d.users(t)
	time.Sleep(1100 * time.Millisecond)
	if done := s.browser().signIn("/", "ada@contoso.example"); done.status != 302 {
		t.Fatalf("second sign-in ended with %d", done.status)
	}
	after := d.users(t)
	if len(before) != 1 || len(after) != 1 {
		t.Fatalf("users before %d, after %d, want one", len(before), len(after))
	}
	if after[0].LastLogin == before[0].LastLogin {
		t.Errorf("last_login did not move: %s", after[0].LastLogin)
	}
	b0, a0 := before[0], after[0]
	b0.LastLogin, a0.LastLogin = "", ""
	if fmt.Sprint(b0) != fmt.Sprint(a0) {
		t.Errorf("a second sign-in changed the user:\nbefore %+v\nafter  %+v", b0, a0)
	}
	if !a0.Staff || !a0.Superuser || a0.Tenant != mockentra.DemoTenant || a0.OID != s.mock.Users()[0].ObjectID {
		t.Errorf("the synced user: %+v", a0)
	}

	// Straight to Django, around the filter: refused unless signed by the filter, for
	// this request, just now, over every identity header it carries.
	host := strings.TrimPrefix(d.url, "http://")
	sign := func(at time.Time, path string, headers [][2]string) string {
		return upstreamsig.Sign([]byte(upstreamSecret), at, upstreamsig.Request{Method: "GET", Authority: host, Path: path}, headers)
	}
	userID := [][2]string{{"x-auth-request-user-id", fmt.Sprint(a0.ID)}}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    int
	}{
		{"forged identity, no signature", map[string]string{"X-Auth-Request-User-Id": fmt.Sprint(a0.ID)}, 403},
		{"stale signature", map[string]string{"X-Auth-Request-User-Id": fmt.Sprint(a0.ID),
			"X-Auth-Request-Signature": sign(time.Now().Add(-2*time.Minute), "/", userID)}, 403},
		{"signature for another path", map[string]string{"X-Auth-Request-User-Id": fmt.Sprint(a0.ID),
			"X-Auth-Request-Signature": sign(time.Now(), "/admin/", userID)}, 403},
		{"another secret", map[string]string{"X-Auth-Request-User-Id": fmt.Sprint(a0.ID),
			"X-Auth-Request-Signature": upstreamsig.Sign([]byte(strings.Repeat("z", 40)), time.Now(), upstreamsig.Request{Method: "GET", Authority: host, Path: "/"}, userID)}, 403},
		{"an identity header the signature does not list", map[string]string{"X-Auth-Request-User-Id": fmt.Sprint(a0.ID),
			"X-Auth-Request-Roles": "Admin", "X-Auth-Request-Signature": sign(time.Now(), "/", userID)}, 403},
		{"signed identity changed", map[string]string{"X-Auth-Request-User-Id": "999",
			"X-Auth-Request-Signature": sign(time.Now(), "/", userID)}, 403},
		// The control: the same request, signed as the filter signs, is served.
		{"signed as the filter signs", map[string]string{"X-Auth-Request-User-Id": fmt.Sprint(a0.ID),
			"X-Auth-Request-Signature": sign(time.Now(), "/", userID)}, 200},
		// Another spelling of a signed header, with another value: WSGI folds both into
		// one name. Django's own server drops names with '_' (served as the signed user);
		// servers that keep them join the two values, and the signature fails (403).
		{"a signed header in another spelling", map[string]string{"X-Auth-Request-User-Id": fmt.Sprint(a0.ID),
			"X_Auth_Request_User_Id": "999", "X-Auth-Request-Signature": sign(time.Now(), "/", userID)}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", d.url+"/", nil)
			req.Header.Set("Accept", "application/json")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("Django answered %d, want %d: %.200s", resp.StatusCode, tc.want, body)
			}
			if tc.want == 403 && !strings.Contains(string(body), "did not come through the sign-in proxy") {
				t.Fatalf("refused, but not by the signature check: %.200s", body)
			}
			if tc.want == 200 && !strings.Contains(string(body), `"username": "ada@contoso.example"`) {
				t.Fatalf("served, but not as the signed user: %.200s", body)
			}
		})
	}

	// The user-sync endpoint refuses a caller without the proxy's secret.
	req, _ := http.NewRequest("POST", d.url+"/entra/sync", strings.NewReader(`{"tenant_id":"`+mockentra.DemoTenant+`","object_id":"x"}`))
	req.Header.Set("Authorization", "Bearer not-the-secret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("user sync with a wrong secret: %d, want 401", resp.StatusCode)
	}
	if n := len(d.users(t)); n != 1 {
		t.Fatalf("%d users after a refused sync, want 1", n)
	}
}

// pythonVerifier runs examples/django's accounts/signature.py over cases sent as JSON
// lines; each answers its message (base64) and "ok" or the refusal.
const pythonVerifier = `
import base64, json, sys
sys.path.insert(0, sys.argv[1])
from accounts.signature import message, verify, SignatureError
for line in sys.stdin:
    c = json.loads(line)
    msg = message(c["t"], c["method"], c["authority"], c["path"], [tuple(h) for h in c["headers"]])
    try:
        verify(c["meta"], c["method"], c["authority"], c["path"], [s.encode() for s in c["secrets"]], 30, now=c["now"])
        verdict = "ok"
    except SignatureError as err:
        verdict = str(err)
    print(json.dumps({"message": base64.b64encode(msg).decode(), "verdict": verdict}), flush=True)
`

// The Django project's check (Python) and package upstreamsig (Go) agree: on the message
// byte for byte, for requests and identity headers of every shape, and on what they
// accept and refuse.
func TestPythonAndGoAgreeOnTheSignature(t *testing.T) {
	onceAcrossPasses(t)
	py := "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		py = "python3"
	}
	secret := []byte(strings.Repeat("p", 32))
	rng := rand.New(rand.NewPCG(1, 2))
	text := func(alphabet string, n int) string {
		r := []rune(alphabet)
		var b strings.Builder
		for range rng.IntN(n) + 1 {
			b.WriteRune(r[rng.IntN(len(r))])
		}
		return b.String()
	}
	type pyCase struct {
		T           int64             `json:"t"`
		MethodJ     string            `json:"method"`
		AuthorityJ  string            `json:"authority"`
		PathJ       string            `json:"path"`
		Headers     [][2]string       `json:"headers"`
		Meta        map[string]string `json:"meta"`
		Secrets     []string          `json:"secrets"`
		Now         int64             `json:"now"`
		wantOK      bool
		wantMessage []byte
	}
	now := time.Unix(1764400000, 0)
	var cases []pyCase
	for i := range 300 {
		r := upstreamsig.Request{Method: []string{"GET", "POST", "DELETE"}[rng.IntN(3)], Authority: text("abc.-:019", 20),
			Path: "/" + text("abz/?=&%;:,.é~", 40)}
		headers := [][2]string{} // JSON [], not null, when empty
		for _, name := range []string{"x-auth-request-user", "x-auth-request-email", "x-auth-request-groups", "x-auth-request-user-id", "authorization"} {
			if rng.IntN(2) == 0 {
				headers = append(headers, [2]string{name, text("ab ,:;=é\"'@.0-9", 30)})
			}
		}
		at := now.Add(time.Duration(rng.IntN(50)-25) * time.Second)
		meta := map[string]string{"HTTP_X_AUTH_REQUEST_SIGNATURE": upstreamsig.Sign(secret, at, r, headers)}
		for _, h := range headers {
			meta["HTTP_"+strings.ToUpper(strings.ReplaceAll(h[0], "-", "_"))] = h[1]
		}
		c := pyCase{T: at.Unix(), MethodJ: r.Method, AuthorityJ: r.Authority, PathJ: r.Path, Headers: headers, Meta: meta,
			Secrets: []string{string(secret)}, Now: now.Unix(), wantOK: true}
		switch i % 4 { // three in four are changed so that both must refuse
		case 1:
			c.PathJ += "x"
			c.wantOK = false
		case 2:
			meta["HTTP_X_AUTH_REQUEST_ROLES"] = "Admin"
			c.wantOK = false
		case 3:
			c.Secrets = []string{strings.Repeat("q", 32)}
			c.wantOK = false
		}
		c.wantMessage = upstreamsig.Message(c.T, upstreamsig.Request{Method: c.MethodJ, Authority: c.AuthorityJ, Path: c.PathJ}, headers)
		if !c.wantOK {
			// The Go side refuses the same change.
			h := http.Header{}
			for k, v := range meta {
				h[k] = []string{v}
			}
			for _, p := range headers {
				h.Set(p[0], p[1])
			}
			h.Set(upstreamsig.Header, meta["HTTP_X_AUTH_REQUEST_SIGNATURE"])
			if role, ok := meta["HTTP_X_AUTH_REQUEST_ROLES"]; ok {
				h.Set("X-Auth-Request-Roles", role)
			}
			var keys [][]byte
			for _, s := range c.Secrets {
				keys = append(keys, []byte(s))
			}
			if err := upstreamsig.Verify(h, upstreamsig.Request{Method: c.MethodJ, Authority: c.AuthorityJ, Path: c.PathJ}, keys, now, 30*time.Second); err == nil {
				t.Fatalf("case %d: Go accepts a changed request", i)
			}
		}
		cases = append(cases, c)
	}
	var in strings.Builder
	enc := json.NewEncoder(&in)
	for _, c := range cases {
		enc.Encode(c)
	}
	cmd := exec.Command(py, "-c", pythonVerifier, "../examples/django")
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("python: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(cases) {
		t.Fatalf("python answered %d lines for %d cases", len(lines), len(cases))
	}
	for i, line := range lines {
		var got struct{ Message, Verdict string }
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatal(err)
		}
		if want := base64.StdEncoding.EncodeToString(cases[i].wantMessage); got.Message != want {
			t.Fatalf("case %d: Python's message %s, Go's %s", i, got.Message, want)
		}
		if (got.Verdict == "ok") != cases[i].wantOK {
			t.Fatalf("case %d: Python says %q, want ok %v (%+v)", i, got.Verdict, cases[i].wantOK, cases[i])
		}
	}
}
