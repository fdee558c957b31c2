// Package usersync is a reference implementation of the user-sync endpoint entra-auth calls
// after each sign-in: it checks the bearer secret, creates or updates the user by
// (tenant_id, object_id) in SQLite, stores its groups (replacing them when the filter says
// they are complete) and flags, answers {"user_id": ...}, and lists the users on a small
// page. The same sign-in twice changes nothing but last_login. It is a starting point for
// applications that are not on Django (README shows the Django version).
package usersync

import (
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // the database/sql driver "sqlite", without cgo
)

// User is the body the filter sends (DESIGN.md section 4), and what the service stores.
type User struct {
	TenantID     string          `json:"tenant_id"`
	ObjectID     string          `json:"object_id"`
	Subject      string          `json:"subject"`
	Issuer       string          `json:"issuer"`
	Username     string          `json:"username"`
	Email        string          `json:"email"`
	Name         string          `json:"name"`
	GivenName    string          `json:"given_name"`
	FamilyName   string          `json:"family_name"`
	Groups       []string        `json:"groups"`
	Roles        []string        `json:"roles"`
	Flags        map[string]bool `json:"flags"`
	MirrorGroups bool            `json:"mirror_groups"`
	Claims       json.RawMessage `json:"claims,omitempty"`
}

// Stored is a user as the database holds it.
type Stored struct {
	ID         int64           `json:"id"`
	TenantID   string          `json:"tenant_id"`
	ObjectID   string          `json:"object_id"`
	Subject    string          `json:"subject"`
	Issuer     string          `json:"issuer"`
	Username   string          `json:"username"`
	Email      string          `json:"email"`
	Name       string          `json:"name"`
	GivenName  string          `json:"given_name"`
	FamilyName string          `json:"family_name"`
	Groups     []string        `json:"groups"`
	Flags      map[string]bool `json:"flags"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	LastLogin  time.Time       `json:"last_login"`
}

// Options configure the service.
type Options struct {
	// Secret is the bearer token the filter sends (user_sync.secret_env).
	Secret string
	// AllowedTenants, if set, refuses users of other tenants with 403.
	AllowedTenants []string
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Service is the user-sync endpoint over a SQLite database.
type Service struct {
	db   *sql.DB
	opts Options
}

const schema = `
CREATE TABLE IF NOT EXISTS users (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	tenant_id   TEXT NOT NULL,
	object_id   TEXT NOT NULL,
	subject     TEXT NOT NULL DEFAULT '',
	issuer      TEXT NOT NULL DEFAULT '',
	username    TEXT NOT NULL DEFAULT '',
	email       TEXT NOT NULL DEFAULT '',
	name        TEXT NOT NULL DEFAULT '',
	given_name  TEXT NOT NULL DEFAULT '',
	family_name TEXT NOT NULL DEFAULT '',
	flags       TEXT NOT NULL DEFAULT '{}',
	created_at  TEXT NOT NULL,
	updated_at  TEXT NOT NULL,
	last_login  TEXT NOT NULL,
	UNIQUE (tenant_id, object_id)
);
CREATE TABLE IF NOT EXISTS user_groups (
	user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
	group_id TEXT NOT NULL,
	PRIMARY KEY (user_id, group_id)
);`

// Open opens (or creates) the database at path (":memory:" for one that lives as long
// as the service).
func Open(path string, opts Options) (*Service, error) {
	if opts.Secret == "" {
		return nil, errors.New("usersync: a secret is required")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if strings.Contains(path, "?") {
		return nil, fmt.Errorf("usersync: database path %q: choose a path without '?'", path)
	}
	// Every connection waits for a busy database rather than failing, and takes the write
	// lock when a transaction begins: two first sign-ins of one user (from two proxies
	// sharing the file) then run one after the other instead of both inserting.
	dsn := path + "?_txlock=immediate&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)"
	if path != ":memory:" {
		// WAL: readers (the page, sqlite3) do not block sign-ins. synchronous NORMAL: a
		// commit survives the service crashing, and a power cut loses at most the latest
		// syncs, which the users' next sign-ins write again (a third of FULL's cost).
		dsn += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1) // one writer; and ":memory:" is one database per connection
	if _, err := db.Exec(schema); err != nil {
		db.Close()
		return nil, fmt.Errorf("usersync: create schema: %w", err)
	}
	return &Service{db: db, opts: opts}, nil
}

// Close closes the database.
func (s *Service) Close() error { return s.db.Close() }

// Handler serves POST /sync (the endpoint), GET / (the users, as a page) and GET /users
// (the users, as JSON).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /sync", s.sync)
	mux.HandleFunc("GET /users", s.listJSON)
	mux.HandleFunc("GET /{$}", s.page)
	return mux
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Service) authorized(r *http.Request) bool {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(token), []byte(s.opts.Secret)) == 1
}

func (s *Service) sync(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r) {
		w.Header().Set("www-authenticate", `Bearer realm="user-sync"`)
		answer(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "message": "the bearer secret is missing or wrong"})
		return
	}
	var u User
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&u); err != nil {
		answer(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "the body is not a user: " + err.Error()})
		return
	}
	if u.TenantID == "" || u.ObjectID == "" {
		answer(w, http.StatusBadRequest, map[string]string{"error": "invalid_request", "message": "tenant_id and object_id are required"})
		return
	}
	if len(s.opts.AllowedTenants) > 0 && !slices.Contains(s.opts.AllowedTenants, u.TenantID) {
		answer(w, http.StatusForbidden, map[string]string{"error": "forbidden", "message": "users of this tenant are not accepted"})
		return
	}
	id, err := s.Upsert(&u)
	if err != nil {
		answer(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "message": err.Error()})
		return
	}
	answer(w, http.StatusOK, map[string]string{"user_id": strconv.FormatInt(id, 10)})
}

// Upsert creates or updates the user and its groups in one transaction, and returns its id.
// Fields and groups are written only when they changed; last_login always.
func (s *Service) Upsert(u *User) (int64, error) {
	now := s.opts.Now().UTC().Format(time.RFC3339Nano)
	flags, _ := json.Marshal(nonNilFlags(u.Flags)) // map keys are sorted: equal flags, equal text
	tx, err := s.db.Begin()
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()

	var id int64
	var current [7]string
	err = tx.QueryRow(`SELECT id, subject, issuer, username, email, name, given_name || char(31) || family_name, flags
		FROM users WHERE tenant_id = ? AND object_id = ?`, u.TenantID, u.ObjectID).
		Scan(&id, &current[0], &current[1], &current[2], &current[3], &current[4], &current[5], &current[6])
	wanted := [7]string{u.Subject, u.Issuer, u.Username, u.Email, u.Name, u.GivenName + "\x1f" + u.FamilyName, string(flags)}
	changed := false
	switch {
	case errors.Is(err, sql.ErrNoRows):
		res, err := tx.Exec(`INSERT INTO users (tenant_id, object_id, subject, issuer, username, email, name, given_name, family_name, flags, created_at, updated_at, last_login)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.TenantID, u.ObjectID, u.Subject, u.Issuer, u.Username, u.Email, u.Name, u.GivenName, u.FamilyName, string(flags), now, now, now)
		if err != nil {
			return 0, err
		}
		if id, err = res.LastInsertId(); err != nil {
			return 0, err
		}
	case err != nil:
		return 0, err
	case current != wanted:
		changed = true
		if _, err := tx.Exec(`UPDATE users SET subject = ?, issuer = ?, username = ?, email = ?, name = ?, given_name = ?, family_name = ?, flags = ?
			WHERE id = ?`, u.Subject, u.Issuer, u.Username, u.Email, u.Name, u.GivenName, u.FamilyName, string(flags), id); err != nil {
			return 0, err
		}
	}

	groupsChanged, err := syncGroups(tx, id, u.Groups, u.MirrorGroups)
	if err != nil {
		return 0, err
	}
	if changed || groupsChanged {
		if _, err := tx.Exec(`UPDATE users SET updated_at = ? WHERE id = ?`, now, id); err != nil {
			return 0, err
		}
	}
	if _, err := tx.Exec(`UPDATE users SET last_login = ? WHERE id = ?`, now, id); err != nil {
		return 0, err
	}
	return id, tx.Commit()
}

// syncGroups adds the groups the user lacks and, when mirror is set, removes those the
// sign-in no longer carries.
func syncGroups(tx *sql.Tx, userID int64, groups []string, mirror bool) (changed bool, err error) {
	rows, err := tx.Query(`SELECT group_id FROM user_groups WHERE user_id = ?`, userID)
	if err != nil {
		return false, err
	}
	have := map[string]bool{}
	for rows.Next() {
		var g string
		if err := rows.Scan(&g); err != nil {
			rows.Close()
			return false, err
		}
		have[g] = true
	}
	rows.Close()
	want := map[string]bool{}
	for _, g := range groups {
		want[g] = true
		if !have[g] {
			changed = true
			if _, err := tx.Exec(`INSERT INTO user_groups (user_id, group_id) VALUES (?, ?)`, userID, g); err != nil {
				return false, err
			}
		}
	}
	if mirror {
		for g := range have {
			if !want[g] {
				changed = true
				if _, err := tx.Exec(`DELETE FROM user_groups WHERE user_id = ? AND group_id = ?`, userID, g); err != nil {
					return false, err
				}
			}
		}
	}
	return changed, nil
}

func nonNilFlags(f map[string]bool) map[string]bool {
	if f == nil {
		return map[string]bool{}
	}
	return f
}

// Users lists the stored users, newest sign-in first.
func (s *Service) Users() ([]Stored, error) {
	rows, err := s.db.Query(`SELECT id, tenant_id, object_id, subject, issuer, username, email, name, given_name, family_name, flags,
		created_at, updated_at, last_login FROM users ORDER BY last_login DESC, id`)
	if err != nil {
		return nil, err
	}
	var out []Stored
	for rows.Next() {
		var u Stored
		var flags, created, updated, login string
		if err := rows.Scan(&u.ID, &u.TenantID, &u.ObjectID, &u.Subject, &u.Issuer, &u.Username, &u.Email, &u.Name, &u.GivenName,
			&u.FamilyName, &flags, &created, &updated, &login); err != nil {
			rows.Close()
			return nil, err
		}
		_ = json.Unmarshal([]byte(flags), &u.Flags)
		u.CreatedAt, _ = time.Parse(time.RFC3339Nano, created)
		u.UpdatedAt, _ = time.Parse(time.RFC3339Nano, updated)
		u.LastLogin, _ = time.Parse(time.RFC3339Nano, login)
		out = append(out, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		groups, err := s.db.Query(`SELECT group_id FROM user_groups WHERE user_id = ? ORDER BY group_id`, out[i].ID)
		if err != nil {
			return nil, err
		}
		for groups.Next() {
			var g string
			_ = groups.Scan(&g)
			out[i].Groups = append(out[i].Groups, g)
		}
		groups.Close()
	}
	return out, nil
}

func (s *Service) listJSON(w http.ResponseWriter, r *http.Request) {
	users, err := s.Users()
	if err != nil {
		answer(w, 500, map[string]string{"error": err.Error()})
		return
	}
	answer(w, 200, users)
}

var page = template.Must(template.New("users").Funcs(template.FuncMap{
	"flags": func(f map[string]bool) string {
		var on []string
		for k, v := range f {
			if v {
				on = append(on, k)
			}
		}
		sort.Strings(on)
		return strings.Join(on, ", ")
	},
	"join": func(s []string) string { return strings.Join(s, ", ") },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Users synced by entra-auth</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}small{color:#666}</style>
</head><body><h1>Users synced by entra-auth</h1>
<table><tr><th>id</th><th>user</th><th>tenant / object</th><th>groups</th><th>flags</th><th>last sign-in</th><th>updated</th></tr>
{{range .}}<tr><td>{{.ID}}</td><td>{{.Name}}<br><small>{{.Username}}</small></td><td><small>{{.TenantID}}<br>{{.ObjectID}}</small></td>
<td><small>{{join .Groups}}</small></td><td>{{flags .Flags}}</td><td><small>{{.LastLogin.Format "2006-01-02 15:04:05"}}</small></td><td><small>{{.UpdatedAt.Format "2006-01-02 15:04:05"}}</small></td></tr>
{{else}}<tr><td colspan="7">No user has signed in yet.</td></tr>{{end}}
</table></body></html>`))

func (s *Service) page(w http.ResponseWriter, r *http.Request) {
	users, err := s.Users()
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	w.Header().Set("content-type", "text/html; charset=utf-8")
	_ = page.Execute(w, users)
}
