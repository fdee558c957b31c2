package flow

import (
	"encoding/json"
	"errors"
	"maps"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/jwks"
)

func syncEnv(k string) (string, bool) {
	if k == "SYNC_SECRET" {
		return "sync-s3cret", true
	}
	return "", false
}

func newSyncFlow(t testing.TB, block string) *Flow {
	t.Helper()
	cfg, err := config.Parse([]byte(`{"tenant_id":"11111111-2222-3333-4444-000000000001","client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","idp_cluster":"e","cookie_secret":"`+secretA+`",
		"user_sync":`+block+`}`), syncEnv)
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(cfg, nil, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	return f
}

const syncBase = `"url":"http://users.internal/entra/sync","cluster":"user_sync","secret_env":"SYNC_SECRET"`

func claimsOf(t testing.TB, raw string) *jwks.Claims {
	t.Helper()
	c := &jwks.Claims{}
	if err := c.UnmarshalJSON([]byte(raw)); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSyncUserMapping(t *testing.T) {
	full := `{"tid":"t1","oid":"o1","sub":"s1","iss":"https://login/t1/v2.0","preferred_username":"ada@contoso.com","upn":"ada@upn",
		"email":"ada@mail","name":"Ada Lovelace","given_name":"Ada","family_name":"Lovelace","groups":["g1","g2"],"roles":["Admin"],"iat":1}`
	cases := []struct {
		name, block, claims string
		check               func(*testing.T, *SyncUser)
	}{
		{"defaults", `{` + syncBase + `}`, full, func(t *testing.T, u *SyncUser) {
			if u.TenantID != "t1" || u.ObjectID != "o1" || u.Subject != "s1" || u.Username != "ada@contoso.com" || u.Email != "ada@mail" ||
				u.GivenName != "Ada" || u.FamilyName != "Lovelace" || strings.Join(u.Groups, ",") != "g1,g2" || !u.MirrorGroups {
				t.Errorf("%+v", u)
			}
		}},
		{"username falls back to upn, then email", `{` + syncBase + `}`, `{"tid":"t","oid":"o","upn":"u@upn","email":"e@mail"}`, func(t *testing.T, u *SyncUser) {
			if u.Username != "u@upn" {
				t.Errorf("username %q", u.Username)
			}
		}},
		{"claims chosen by configuration", `{` + syncBase + `,"claims":{"username":"upn","name":"given_name"}}`, full, func(t *testing.T, u *SyncUser) {
			if u.Username != "ada@upn" || u.Name != "Ada" {
				t.Errorf("%+v", u)
			}
		}},
		{"missing claims are empty, never null", `{` + syncBase + `}`, `{"tid":"t","oid":"o"}`, func(t *testing.T, u *SyncUser) {
			b, _ := json.Marshal(u)
			if u.Username != "" || u.Groups == nil || u.Roles == nil || strings.Contains(string(b), `"groups":null`) {
				t.Errorf("%s", b)
			}
		}},
		{"odd-typed claims", `{` + syncBase + `,"claims":{"name":"n","email":"e","username":"u"}}`, `{"tid":"t","oid":"o","n":42,"e":["a"],"u":{"x":1},"groups":["g",7,null,"h"]}`,
			func(t *testing.T, u *SyncUser) {
				if u.Name != "42" || u.Email != "" || u.Username != "" || strings.Join(u.Groups, ",") != "g,h" {
					t.Errorf("%+v", u)
				}
			}},
		{"groups from another claim, a single string too", `{` + syncBase + `,"groups_claim":"team"}`, `{"tid":"t","oid":"o","team":"solo"}`, func(t *testing.T, u *SyncUser) {
			if strings.Join(u.Groups, ",") != "solo" {
				t.Errorf("groups %v", u.Groups)
			}
		}},
		{"claim names are literal, the first of repeated ones counts", `{` + syncBase + `,"claims":{"name":"ext.name","email":"a*"}}`,
			`{"tid":"t","oid":"o","ext":{"name":"nested"},"ext.name":"dotted","a*":"star","aa":"not this","tid":"second"}`,
			func(t *testing.T, u *SyncUser) {
				if u.Name != "dotted" || u.Email != "star" || u.TenantID != "t" {
					t.Errorf("%+v", u)
				}
			}},
		{"flags from groups and roles", `{` + syncBase + `,"flags":{"is_staff":{"groups":["g2"]},"is_superuser":{"roles":["Owner"]},"is_auditor":{"groups":["g9"],"roles":["Admin"]}}}`, full,
			func(t *testing.T, u *SyncUser) {
				if !u.Flags["is_staff"] || u.Flags["is_superuser"] || !u.Flags["is_auditor"] || len(u.Flags) != 3 {
					t.Errorf("flags %v", u.Flags)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newSyncFlow(t, tc.block)
			tc.check(t, f.syncUser(claimsOf(t, tc.claims)))
		})
	}
}

func TestUserSyncRequest(t *testing.T) {
	f := newSyncFlow(t, `{`+syncBase+`}`)
	u := f.syncUser(claimsOf(t, `{"tid":"t","oid":"o","sub":"s","name":"Ada","nonce":"n"}`))
	r := must(f.UserSyncRequest(u))(t)
	auth := ""
	for _, h := range r.Pairs() {
		if h[0] == "authorization" {
			auth = h[1]
		}
	}
	if r.Method != "POST" || r.Authority != "users.internal" || r.Path != "/entra/sync" || auth != "Bearer sync-s3cret" {
		t.Errorf("%s %s %s %q", r.Method, r.Authority, r.Path, auth)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tenant_id", "object_id", "subject", "issuer", "username", "email", "name", "given_name", "family_name", "groups", "roles", "claims", "flags", "mirror_groups"} {
		if _, ok := body[k]; !ok {
			t.Errorf("body lacks %s", k)
		}
	}
	if body["claims"].(map[string]any)["nonce"] != "n" {
		t.Errorf("claims %v", body["claims"])
	}
	if _, err := url.Parse("http://" + r.Authority + r.Path); err != nil {
		t.Error(err)
	}
}

func TestFingerprintIgnoresTokenTimesOnly(t *testing.T) {
	f := newSyncFlow(t, `{`+syncBase+`}`)
	a := f.syncUser(claimsOf(t, `{"tid":"t","oid":"o","name":"Ada","iat":1,"exp":2}`))
	b := f.syncUser(claimsOf(t, `{"tid":"t","oid":"o","name":"Ada","iat":3,"exp":4}`))
	c := f.syncUser(claimsOf(t, `{"tid":"t","oid":"o","name":"Ada L.","iat":3,"exp":4}`))
	if a.Fingerprint() != b.Fingerprint() || a.Fingerprint() == c.Fingerprint() {
		t.Errorf("fingerprints %s %s %s", a.Fingerprint(), b.Fingerprint(), c.Fingerprint())
	}
}

func TestParseUserSyncResponse(t *testing.T) {
	for _, tc := range []struct {
		status int
		body   string
		id     string
		err    error
	}{
		{200, `{"user_id":"u-42"}`, "u-42", nil},
		{201, `{"user_id":42}`, "42", nil},
		{204, ``, "", nil},
		{200, `not json`, "", nil},
		{200, `{"user_id":null}`, "", nil},
		{200, `{"user_id":"` + strings.Repeat("x", maxUserIDLength) + `"}`, strings.Repeat("x", maxUserIDLength), nil},
		{200, `{"user_id":"` + strings.Repeat("x", maxUserIDLength+1) + `"}`, "", ErrUserSyncUnavailable},
		{403, `{"error":"not allowed"}`, "", ErrUserRefused},
		{401, ``, "", ErrUserSyncSecret},
		{401, ``, "", ErrUserRefused},
		{503, `down`, "", ErrUserSyncUnavailable},
		{0, ``, "", ErrUserSyncUnavailable},
	} {
		id, err := ParseUserSyncResponse(tc.status, []byte(tc.body))
		if id != tc.id || (tc.err == nil) != (err == nil) || (tc.err != nil && !errors.Is(err, tc.err)) {
			t.Errorf("%d %q: %q %v", tc.status, tc.body, id, err)
		}
	}
	for status, want := range map[int]bool{0: true, 502: true, 503: true, 504: true, 500: false, 400: false, 403: false, 429: false} {
		if UserSyncRetryable(status) != want {
			t.Errorf("retryable(%d) != %v", status, want)
		}
	}
}

// FuzzSyncUser feeds arbitrary claims (as a verified token could carry them) through the
// mapping: the body sent must always be a JSON object with the contract's fields.
func FuzzSyncUser(f *testing.F) {
	f.Add(`{"tid":"t","oid":"o","preferred_username":"ada","groups":["g1"],"roles":["Admin"]}`)
	f.Add(`{"tid":1,"oid":null,"name":["x"],"groups":"g1","roles":{"a":1}}`)
	f.Add(`{"upn":true,"email":1e400,"groups":[1,"g",null,["n"]]}`)
	f.Add("{\"name\":\"\xff\xfe\",\"a.b\":\"c\"}")
	flow := newSyncFlow(f, `{`+syncBase+`,"claims":{"name":"a.b"},"flags":{"staff":{"groups":["g"]},"admin":{"roles":["Admin"]}}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		c := &jwks.Claims{}
		if c.UnmarshalJSON([]byte(raw)) != nil {
			return
		}
		u := flow.syncUser(c)
		req := must(flow.UserSyncRequest(u))(t)
		var body map[string]any
		dec := json.NewDecoder(strings.NewReader(string(req.Body)))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			t.Fatalf("body %q is not JSON: %v", req.Body, err)
		}
		for _, k := range []string{"tenant_id", "object_id", "username", "email", "name", "groups", "roles", "flags", "claims"} {
			if _, ok := body[k]; !ok {
				t.Fatalf("body %s lacks %s", req.Body, k)
			}
		}
		if _, ok := body["groups"].([]any); !ok {
			t.Fatalf("groups is %T", body["groups"])
		}
	})
}

// The OpenAPI description in docs/ is what applications implement: it must name exactly
// the fields the filter sends, and its example must be a body the filter could send.
func TestUserSyncBodyMatchesTheOpenAPIDescription(t *testing.T) {
	raw, err := os.ReadFile("../docs/user-sync.openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	doc := gjson.ParseBytes(raw)
	schema := doc.Get("components.schemas.SyncUser")
	var required, described []string
	for _, r := range schema.Get("required").Array() {
		required = append(required, r.String())
	}
	schema.Get("properties").ForEach(func(k, _ gjson.Result) bool {
		described = append(described, k.String())
		return true
	})
	f := newSyncFlow(t, `{`+syncBase+`}`)
	var sent map[string]json.RawMessage
	if err := json.Unmarshal(must(f.UserSyncRequest(f.syncUser(claimsOf(t, `{"tid":"t","oid":"o"}`))))(t).Body, &sent); err != nil {
		t.Fatal(err)
	}
	fields := slices.Sorted(maps.Keys(sent))
	slices.Sort(required)
	slices.Sort(described)
	if !slices.Equal(fields, required) || !slices.Equal(fields, described) {
		t.Fatalf("the filter sends %v; the description requires %v and describes %v", fields, required, described)
	}
	example := doc.Get("components.examples.ada.value")
	var exampleFields []string
	example.ForEach(func(k, _ gjson.Result) bool {
		exampleFields = append(exampleFields, k.String())
		return true
	})
	if slices.Sort(exampleFields); !slices.Equal(exampleFields, fields) {
		t.Fatalf("the example has %v", exampleFields)
	}
	c := &jwks.Claims{}
	if err := c.UnmarshalJSON([]byte(example.Get("claims").Raw)); err != nil {
		t.Fatal(err)
	}
	f = newSyncFlow(t, `{`+syncBase+`,"flags":{"is_staff":{"groups":["a4f7c0d2-1111-4a5b-9c3d-000000000002"]},"is_superuser":{"roles":["Admin"]}}}`)
	var fromClaims, documented map[string]any
	_ = json.Unmarshal(must(f.UserSyncRequest(f.syncUser(c)))(t).Body, &fromClaims)
	_ = json.Unmarshal([]byte(example.Raw), &documented)
	if !reflect.DeepEqual(fromClaims, documented) {
		t.Fatalf("the filter would send, for the example's claims:\n%v\nthe example says:\n%v", fromClaims, documented)
	}
}

// FuzzParseUserSyncResponse: whatever the endpoint answers, the result is a bounded user
// id, or one of the two errors the filter explains to the user.
func FuzzParseUserSyncResponse(f *testing.F) {
	f.Add(200, []byte(`{"user_id":"42"}`))
	f.Add(201, []byte(`{"user_id":4.2e1}`))
	f.Add(200, []byte(`{"user_id":["x"],"user_id":"y"}`))
	f.Add(204, []byte(``))
	f.Add(403, []byte(`{"error":"no"}`))
	f.Add(0, []byte(nil))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		id, err := ParseUserSyncResponse(status, body)
		if len(id) > maxUserIDLength {
			t.Fatalf("user id of %d bytes", len(id))
		}
		ok := status >= 200 && status < 300
		if err == nil && !ok {
			t.Fatalf("status %d accepted", status)
		}
		if err != nil && !errors.Is(err, ErrUserRefused) && !errors.Is(err, ErrUserSyncUnavailable) {
			t.Fatalf("unexplained error %v", err)
		}
		if errors.Is(err, ErrUserRefused) != (status >= 400 && status < 500) {
			t.Fatalf("status %d: %v", status, err)
		}
	})
}
