package flow

import (
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/session"
)

func TestAuthorize(t *testing.T) {
	f, _ := newFlow(t, `,"allowed_groups":["staff"],"allowed_roles":["Admin"],"rules":[
		{"path":"/admin/*","roles":["Admin"]},
		{"regex":"^/api/v[0-9]+/items$","methods":["POST"],"scopes":["Items.Write"]},
		{"path":"/reports","groups":["finance"],"roles":["Reader","Admin"]}]`)
	req := func(method, path string) *Request { return &Request{Method: method, Path: path} }
	for _, tc := range []struct {
		name                  string
		r                     *Request
		groups, roles, scopes []string
		bearer                bool
		want                  string // "" allowed, else the Denied kind
	}{
		{"member of an allowed group", req("GET", "/"), []string{"staff"}, nil, nil, false, ""},
		{"allowed role without the group", req("GET", "/"), nil, []string{"Admin"}, nil, false, ""},
		{"neither", req("GET", "/"), []string{"guests"}, []string{"Reader"}, nil, false, "groups or roles"},
		{"admin path, no role", req("GET", "/admin/users?x=1"), []string{"staff"}, nil, nil, false, "roles"},
		{"admin path with the role", req("GET", "/admin/users"), nil, []string{"Admin"}, nil, false, ""},
		{"scopes for a bearer token", req("POST", "/api/v2/items"), []string{"staff"}, nil, []string{"Items.Read"}, true, "scopes"},
		{"scope present", req("POST", "/api/v2/items"), []string{"staff"}, nil, []string{"Items.Read", "Items.Write"}, true, ""},
		{"scopes do not bind a session", req("POST", "/api/v2/items"), []string{"staff"}, nil, nil, false, ""},
		{"another method is not the rule's", req("GET", "/api/v2/items"), []string{"staff"}, nil, nil, true, ""},
		{"regex anchors", req("POST", "/api/v2/items/1"), []string{"staff"}, nil, nil, true, ""},
		{"both lists, one missing", req("GET", "/reports"), []string{"staff"}, []string{"Admin"}, nil, false, "groups"},
		{"both lists met", req("GET", "/reports"), []string{"staff", "finance"}, []string{"Reader"}, nil, false, ""},
	} {
		d, _ := f.Authorize(tc.r, &session.Session{Groups: tc.groups, Roles: tc.roles}, tc.scopes, tc.bearer)
		got := ""
		if d != nil {
			got = d.Kind
		}
		if got != tc.want {
			t.Errorf("%s: %+v, want %q", tc.name, d, tc.want)
		}
	}
}

func TestForbidden(t *testing.T) {
	f, _ := newFlow(t, `,"rules":[{"path":"/admin/*","roles":["Admin"]}]`)
	page := f.Forbidden(&Request{Accept: "text/html", Path: "/admin/"}, &Denied{Kind: "roles", Want: []string{"Admin"}, Rule: "/admin/*"}, false, "req-1")
	if page.Status != 403 || !strings.Contains(string(page.Body), "requires one of these roles: Admin") {
		t.Errorf("page: %d %s", page.Status, page.Body)
	}
	api := f.Forbidden(&Request{Authority: "api.contoso.com"}, &Denied{Kind: "scopes", Want: []string{"Items.Write", "Items.Admin"}}, true, "req-2")
	if h := header(api, "www-authenticate"); api.Status != 403 || h != `Bearer realm="api.contoso.com", error="insufficient_scope", scope="Items.Write Items.Admin"` ||
		!strings.Contains(string(api.Body), `"error":"insufficient_scope"`) {
		t.Errorf("api: %d %q %s", api.Status, h, api.Body)
	}
}
