package config

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

var (
	secretA = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", 32)))
	secretB = base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("b", 32)))
)

const minimal = `{"tenant_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "client_id": "11111111-2222-3333-4444-555555555555",
	"client_secret": "s3cret", "idp_cluster": "entra", "cookie_secret": "` + "SECRET_A" + `"}`

func withSecret(cfg string) string { return strings.ReplaceAll(cfg, "SECRET_A", secretA) }

func noEnv(string) (string, bool) { return "", false }

func TestParseConfigDefaults(t *testing.T) {
	c, err := Parse([]byte(withSecret(minimal)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string][2]any{
		"authority":      {c.Authority, DefaultAuthority},
		"redirect_path":  {c.RedirectPath, "/.auth/callback"},
		"login_path":     {c.LoginPath, "/.auth/login"},
		"logout_path":    {c.LogoutPath, "/.auth/logout"},
		"me_path":        {c.MePath, "/.auth/me"},
		"signed_out":     {c.SignedOutPath, "/.auth/signed-out"},
		"cookie_name":    {c.CookieName, "__Host-entra-auth"},
		"scopes":         {strings.Join(c.Scopes, " "), DefaultScopes},
		"client_auth":    {c.ClientAuth, "client_secret_post"},
		"session":        {c.SessionMaxAge, 8 * time.Hour},
		"sign_in":        {c.SignInTimeout, 10 * time.Minute},
		"skew":           {c.ClockSkew, 2 * time.Minute},
		"idp_timeout":    {c.IDPTimeout, 5 * time.Second},
		"jwks_refresh":   {c.JWKSRefreshInterval, time.Hour},
		"discovery":      {c.DiscoveryURL(), "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0/.well-known/openid-configuration"},
		"cookie secrets": {len(c.CookieSecrets), 1},
	}
	for name, pair := range checks {
		if pair[0] != pair[1] {
			t.Errorf("%s = %v, want %v", name, pair[0], pair[1])
		}
	}
}

func TestParseConfigSettings(t *testing.T) {
	env := func(k string) (string, bool) {
		v, ok := map[string]string{"CLIENT_SECRET": "from-env", "COOKIE_SECRETS": secretB + ", " + secretA}[k]
		return v, ok
	}
	cases := []struct {
		name  string
		json  string
		check func(*testing.T, *Config)
	}{
		{"secrets from the VM environment", `{"tenant_id":"contoso.onmicrosoft.com","client_id":"11111111-2222-3333-4444-000000000002","client_secret_env":"CLIENT_SECRET","idp_cluster":"entra","cookie_secret_env":"COOKIE_SECRETS"}`,
			func(t *testing.T, c *Config) {
				if c.ClientSecret != "from-env" || len(c.CookieSecrets) != 2 || c.CookieSecrets[0][0] != 'b' {
					t.Errorf("secret %q, %d cookie secrets", c.ClientSecret, len(c.CookieSecrets))
				}
			}},
		{"cookie secret list for rotation", `{"tenant_id":"11111111-2222-3333-4444-000000000001","client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","idp_cluster":"e","cookie_secret":["` + secretB + `","` + secretA + `"]}`,
			func(t *testing.T, c *Config) {
				if len(c.CookieSecrets) != 2 {
					t.Errorf("%d secrets", len(c.CookieSecrets))
				}
			}},
		{"multi-tenant", `{"tenant_id":"organizations","allowed_tenants":["*"],"client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","idp_cluster":"e","cookie_secret":"` + secretA + `"}`,
			func(t *testing.T, c *Config) {
				if !c.MultiTenant() || c.AllowedTenants[0] != "*" {
					t.Errorf("%+v", c)
				}
			}},
		{"redirect_uri sets the callback path", `{"tenant_id":"11111111-2222-3333-4444-000000000001","client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","idp_cluster":"e","cookie_secret":"` + secretA + `","redirect_uri":"https://app.contoso.com/signin-oidc"}`,
			func(t *testing.T, c *Config) {
				if c.RedirectPath != "/signin-oidc" {
					t.Errorf("redirect path %q", c.RedirectPath)
				}
			}},
		{"cookie domain switches to __Secure-", `{"tenant_id":"11111111-2222-3333-4444-000000000001","client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","idp_cluster":"e","cookie_secret":"` + secretA + `","cookie_domain":".contoso.com"}`,
			func(t *testing.T, c *Config) {
				if c.CookieName != "__Secure-entra-auth" || c.CookieDomain != "contoso.com" {
					t.Errorf("%q %q", c.CookieName, c.CookieDomain)
				}
			}},
		{"durations as seconds or strings", `{"tenant_id":"11111111-2222-3333-4444-000000000001","client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","idp_cluster":"e","cookie_secret":"` + secretA + `","session_max_age":3600,"clock_skew":"30s","scopes":"openid email"}`,
			func(t *testing.T, c *Config) {
				if c.SessionMaxAge != time.Hour || c.ClockSkew != 30*time.Second || len(c.Scopes) != 2 {
					t.Errorf("%v %v %v", c.SessionMaxAge, c.ClockSkew, c.Scopes)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.json), env)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestParseConfigErrorsNameTheKeyAndTheFix(t *testing.T) {
	base := `"tenant_id":"11111111-2222-3333-4444-000000000001","client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","idp_cluster":"e","cookie_secret":"` + secretA + `"`
	cases := []struct {
		name, json string
		want       []string
	}{
		{"empty", ``, []string{"empty", "tenant_id"}},
		{"not JSON", `{"tenant_id": }`, []string{"not valid JSON"}},
		{"not an object", `[]`, []string{"JSON object"}},
		{"nothing given", `{}`, []string{`"tenant_id": is required`, `"client_id": is required`, `"client_secret": is required`, `"idp_cluster": is required`, `"cookie_secret": is required`}},
		{"unknown key with a suggestion", `{` + base + `,"tenantid":"x"}`, []string{`"tenantid": unknown key (did you mean "tenant_id"?)`}},
		{"follow_claims_challenges not a boolean", `{` + base + `,"follow_claims_challenges":"yes"}`, []string{`"follow_claims_challenges": must be true or false`}},
		{"signed-out page on another path of the filter's", `{` + base + `,"signed_out_path":"/.auth/logout"}`, []string{`"signed_out_path": is the same path as logout_path`}},
		{"user_sync without its keys", `{` + base + `,"user_sync":{}}`, []string{`"user_sync.url": is required`, `"user_sync.cluster": is required`, `"user_sync.secret_env": is required`}},
		{"placeholder tenant", `{` + strings.Replace(base, `"tenant_id":"11111111-2222-3333-4444-000000000001"`, `"tenant_id":"YOUR-DIRECTORY-TENANT-ID"`, 1) + `}`, []string{`"tenant_id": must be the Directory (tenant) ID`}},
		{"placeholder client", `{` + strings.Replace(base, `"client_id":"11111111-2222-3333-4444-000000000002"`, `"client_id":"YOUR-APPLICATION-CLIENT-ID"`, 1) + `}`, []string{`"client_id": must be the Application (client) ID`}},
		{"tenant with a path", `{` + strings.Replace(base, `"tenant_id":"11111111-2222-3333-4444-000000000001"`, `"tenant_id":"contoso.com/x"`, 1) + `}`, []string{`"tenant_id"`}},
		{"secret given twice", `{"tenant_id":"11111111-2222-3333-4444-000000000001","client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","client_secret_env":"X","idp_cluster":"e","cookie_secret":"` + secretA + `"}`, []string{"either"}},
		{"secret env missing", `{"tenant_id":"11111111-2222-3333-4444-000000000001","client_id":"11111111-2222-3333-4444-000000000002","client_secret_env":"NOPE","idp_cluster":"e","cookie_secret":"` + secretA + `"}`, []string{`"client_secret_env"`, "NOPE is not set"}},
		{"short cookie secret", `{"tenant_id":"11111111-2222-3333-4444-000000000001","client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","idp_cluster":"e","cookie_secret":"c2hvcnQ="}`, []string{`"cookie_secret"`, "openssl rand -base64 32"}},
		{"multi-tenant without allow-list", `{"tenant_id":"common","client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","idp_cluster":"e","cookie_secret":"` + secretA + `"}`,
			[]string{`"allowed_tenants": is required when tenant_id is common`}},
		{"allowed tenants on a single tenant", `{` + base + `,"allowed_tenants":["x"]}`, []string{`"allowed_tenants"`, "only when tenant_id is common"}},
		{"scopes without openid", `{` + base + `,"scopes":"profile email"}`, []string{`"scopes"`, "openid"}},
		{"relative path", `{` + base + `,"logout_path":"logout"}`, []string{`"logout_path"`, "starting with /"}},
		{"same paths", `{` + base + `,"login_path":"/.auth/logout"}`, []string{"same path"}},
		{"bad authority", `{` + base + `,"authority":"login.microsoftonline.com"}`, []string{`"authority"`, "http(s) URL"}},
		{"redirect_uri disagrees", `{` + base + `,"redirect_uri":"https://a.b/x","redirect_path":"/y"}`, []string{`"redirect_uri"`, "differs"}},
		{"bad duration", `{` + base + `,"session_max_age":"forever"}`, []string{`"session_max_age"`, "duration"}},
		{"duration out of range", `{` + base + `,"clock_skew":"1h"}`, []string{`"clock_skew"`, "between"}},
		{"__Host- with a domain", `{` + base + `,"cookie_domain":"contoso.com","cookie_name":"__Host-x"}`, []string{`"cookie_name"`, "__Secure-"}},
		{"bad skip path", `{` + base + `,"skip_paths":["health"]}`, []string{`"skip_paths"`}},
		{"wrong type", `{` + base + `,"idp_timeout":true}`, []string{`"idp_timeout"`}},
		{"bad client auth", `{` + base + `,"client_auth":"private_key_jwt"}`, []string{`"client_auth"`}},
		{"upstream_signature not an object", `{` + base + `,"upstream_signature":"x"}`, []string{`"upstream_signature": must be an object`}},
		{"upstream_signature without a secret", `{` + base + `,"upstream_signature":{}}`, []string{`"upstream_signature.secret": is required`}},
		{"upstream_signature secret unset in the VM", `{` + base + `,"upstream_signature":{"secret_env":"UPSTREAM_SECRET"}}`, []string{`"upstream_signature.secret_env": environment variable UPSTREAM_SECRET is not set`}},
		{"upstream_signature secret too short", `{` + base + `,"upstream_signature":{"secret":"short"}}`, []string{`"upstream_signature.secret": must be at least 32 characters`}},
		{"upstream_signature secret a list", `{` + base + `,"upstream_signature":{"secret":["` + strings.Repeat("a", 40) + `"]}}`, []string{`"upstream_signature.secret": must be a string`}},
		{"upstream_signature unknown key", `{` + base + `,"upstream_signature":{"secret":"` + strings.Repeat("a", 40) + `","header":"x"}}`, []string{`"upstream_signature.header": unknown key`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.json), noEnv)
			if err == nil || !errors.Is(err, ErrConfig) {
				t.Fatalf("err %v, want ErrConfig", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(withSecret(minimal)))
	f.Add([]byte(`{"tenant_id":"common","allowed_tenants":"a,b"}`))
	f.Add([]byte(`{"scopes":[1,2],"session_max_age":-1}`))
	f.Add([]byte(`{"cookie_secret":["x",""],"redirect_uri":"https://[::1]/cb"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, noEnv)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("error %v does not wrap ErrConfig", err)
			}
			return
		}
		if c.TenantID == "" || c.ClientID == "" || len(c.CookieSecrets) == 0 || c.RedirectPath[0] != '/' {
			t.Fatalf("accepted an incomplete configuration: %+v", c)
		}
	})
}
