package e2e

import (
	"strings"
	"testing"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

func TestAuthorizationRules(t *testing.T) {
	s := newStack(t, stackOptions{config: map[string]any{
		"api_audiences":  apiAudiences,
		"allowed_groups": []string{groupTwo},
		"rules": []map[string]any{
			{"path": "/admin/*", "roles": []string{"Admin"}},
			{"regex": "^/api/v[0-9]+/items$", "methods": []string{"POST"}, "scopes": []string{"Items.Write"}},
		},
	}})
	users := s.mock.Users()
	ada, grace := users[0], users[1]

	// Sessions: Ada has the Admin role, Grace does not; both are in the allowed group.
	a := s.browser()
	a.signIn("/", ada.Username)
	if p := a.get("/admin/users"); p.status != 200 {
		t.Fatalf("Ada on /admin: %d", p.status)
	}
	g := s.browser()
	g.signIn("/", grace.Username)
	if p := g.get("/"); p.status != 200 {
		t.Fatalf("Grace on /: %d", p.status)
	}
	p := g.get("/admin/users")
	if p.status != 403 || !strings.Contains(p.body, "requires one of these roles: Admin") || strings.Contains(p.body, groupTwo) {
		t.Fatalf("Grace on /admin: %d %.300s", p.status, p.body)
	}

	// Bearer tokens: the scope rule applies to POST only.
	mint := func(user mockentra.User, scopes ...string) string {
		tok, err := s.mock.MintAccessToken(mockentra.AccessToken{User: user, Audience: mockentra.DemoClientID, Scopes: scopes, IssuerBase: s.mockURL})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	api := func(method, path, token string) *page {
		return s.browser().do(method, path, "Authorization", "Bearer "+token, "Accept", "application/json")
	}
	reader := mint(ada, "access_as_user")
	if p := api("GET", "/api/v1/items", reader); p.status != 200 {
		t.Fatalf("GET with a reader's token: %d", p.status)
	}
	p = api("POST", "/api/v1/items", reader)
	if h := p.header.Get("WWW-Authenticate"); p.status != 403 || !strings.Contains(h, `error="insufficient_scope"`) || !strings.Contains(h, `scope="Items.Write"`) {
		t.Fatalf("POST without Items.Write: %d %q %.200s", p.status, h, p.body)
	}
	if p := api("POST", "/api/v1/items", mint(ada, "access_as_user", "Items.Write")); p.status != 200 {
		t.Fatalf("POST with Items.Write: %d %.200s", p.status, p.body)
	}

	// allowed_groups: a user outside the group gets nothing, session or token.
	outsider := grace
	outsider.Groups = []string{groupOne}
	if p := api("GET", "/api/v1/items", mint(outsider, "access_as_user")); p.status != 403 || !strings.Contains(p.body, groupTwo) {
		t.Fatalf("outsider's token: %d %.200s", p.status, p.body)
	}
	s.mock.UpdateUser(grace.Username, func(u *mockentra.User) { u.Groups = []string{groupOne} })
	o := s.browser()
	if done := o.signIn("/", grace.Username); done.status != 302 {
		t.Fatalf("outsider's sign-in: %d", done.status)
	}
	if p := o.get("/"); p.status != 403 || !strings.Contains(p.body, "requires one of these groups") {
		t.Fatalf("outsider's session: %d %.200s", p.status, p.body)
	}
}
