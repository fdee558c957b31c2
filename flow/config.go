package flow

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/jwks"
	"github.com/entra-auth/entra-auth/session"
)

// Config is the plugin configuration, parsed and validated. ParseConfig fills defaults.
type Config struct {
	// Authority is the Entra login host (or a sovereign cloud's, or a test IdP's base
	// URL), without a trailing slash.
	Authority string
	// TenantID is a tenant GUID or domain, or common/organizations for multi-tenant apps.
	TenantID string
	// ClientID is the application (client) ID; ClientSecret its secret.
	ClientID, ClientSecret string
	// ClientAuth is how the client authenticates: client_secret_post or
	// client_secret_basic with the secret, or private_key_jwt with ClientAssertion.
	ClientAuth string
	// ClientAssertion, when set, replaces the secret (client_assertion).
	ClientAssertion *ClientAssertion
	// IDPCluster is the Envoy cluster that reaches Authority.
	IDPCluster string
	// IDPTimeout bounds each call to the identity provider.
	IDPTimeout time.Duration
	// CookieSecrets seal cookies: the first seals, all open.
	CookieSecrets [][]byte
	// CookieName names the session cookie; CookieDomain, if set, shares it with subdomains.
	CookieName, CookieDomain string
	// RedirectPath is the callback path; RedirectURI, if set, the absolute callback URL
	// registered in Entra (its path is then RedirectPath).
	RedirectPath, RedirectURI string
	// LoginPath, LogoutPath and MePath are the filter's other paths.
	LoginPath, LogoutPath, MePath string
	// PostLogoutRedirectURI is where Entra sends the browser after sign-out; empty means
	// the site's root.
	PostLogoutRedirectURI string
	// Scopes are requested at sign-in; openid is always among them.
	Scopes []string
	// AllowedTenants are the tenants accepted by a multi-tenant app ("*" for all).
	AllowedTenants []string
	// SkipPaths pass without a session: exact paths, or prefixes ending in "*".
	SkipPaths []string
	// SessionMaxAge is a session's lifetime; SignInTimeout a sign-in's; ClockSkew the
	// tolerance on token times; JWKSRefreshInterval how often keys are fetched anyway.
	SessionMaxAge, SignInTimeout, ClockSkew, JWKSRefreshInterval time.Duration
	// RefreshBefore is how long before the access token expires it is refreshed.
	RefreshBefore time.Duration
	// UserSync, when set, sends each signed-in user to the application's endpoint.
	UserSync *UserSyncConfig
	// UpstreamSignature, when set, is the secret the filter signs what it sends upstream
	// with (upstream_signature; package upstreamsig).
	UpstreamSignature []byte
	// APIAudiences, when set, accept bearer access tokens issued to these audiences.
	APIAudiences []string
	// Access are the authorization rules (allowed_groups, allowed_roles, rules).
	Access AccessRules
	// ForwardAccessToken names the header that carries the session's access token to the
	// upstream ("" for none); OBOScopes, when set, get a token for a downstream API on the
	// user's behalf, carried in OBOHeader.
	ForwardAccessToken string
	OBOScopes          []string
	OBOHeader          string
	// GraphCluster reaches GraphURL (Microsoft Graph), asked for the groups of a user whose
	// token left them out (groups overage).
	GraphCluster, GraphURL string
}

// Defaults of the optional keys.
const (
	DefaultAuthority  = "https://login.microsoftonline.com"
	DefaultScopes     = "openid profile email offline_access"
	defaultCookieHost = "__Host-entra-auth"
	defaultCookieDom  = "__Secure-entra-auth"
)

// MultiTenant reports whether TenantID names several tenants (common, organizations).
func (c *Config) MultiTenant() bool { return isMultiTenant(c.TenantID) }

func isMultiTenant(tenant string) bool {
	switch strings.ToLower(tenant) {
	case "common", "organizations", "consumers":
		return true
	}
	return false
}

// knownKeys are the configuration keys; anything else is a mistake worth a clear error.
var knownKeys = []string{
	"authority", "tenant_id", "client_id", "client_secret", "client_secret_env", "client_auth", "client_assertion",
	"idp_cluster", "idp_timeout", "cookie_secret", "cookie_secret_env", "cookie_name", "cookie_domain",
	"redirect_path", "redirect_uri", "login_path", "logout_path", "me_path", "post_logout_redirect_uri",
	"scopes", "allowed_tenants", "skip_paths", "session_max_age", "sign_in_timeout", "clock_skew",
	"jwks_refresh_interval", "refresh_before", "user_sync", "api_audiences", "allowed_groups", "allowed_roles", "rules",
	"forward_access_token", "obo_scopes", "obo_header", "graph_cluster", "graph_url", "upstream_signature",
}

// configParser collects every problem, so that one start-up log names them all.
type configParser struct {
	root     gjson.Result
	prefix   string // of keys in a nested block, such as "user_sync."
	getenv   func(string) (string, bool)
	problems []error
}

func (p *configParser) fail(key, format string, args ...any) {
	p.problems = append(p.problems, fmt.Errorf("%w: %q: %s", ErrConfig, p.prefix+key, fmt.Sprintf(format, args...)))
}

func (p *configParser) string(key, def string) string {
	v := p.root.Get(key)
	if !v.Exists() {
		return def
	}
	if v.Type != gjson.String {
		p.fail(key, "must be a string")
		return def
	}
	return strings.TrimSpace(v.String())
}

func (p *configParser) required(key string) string {
	v := p.root.Get(key)
	switch {
	case !v.Exists():
		p.fail(key, "is required")
	case v.Type != gjson.String:
		p.fail(key, "must be a string")
	case strings.TrimSpace(v.String()) == "":
		p.fail(key, "must not be empty")
	default:
		return strings.TrimSpace(v.String())
	}
	return ""
}

// strings reads a list of strings; a single string is split on spaces and commas when
// split is true.
func (p *configParser) strings(key string, split bool) []string {
	v := p.root.Get(key)
	switch {
	case !v.Exists():
		return nil
	case v.Type == gjson.String && split:
		return strings.FieldsFunc(v.String(), func(r rune) bool { return r == ' ' || r == ',' })
	case v.IsArray():
		var out []string
		v.ForEach(func(_, item gjson.Result) bool {
			if item.Type != gjson.String || strings.TrimSpace(item.String()) == "" {
				p.fail(key, "must be a list of non-empty strings")
				return false
			}
			out = append(out, strings.TrimSpace(item.String()))
			return true
		})
		return out
	}
	p.fail(key, "must be a list of strings")
	return nil
}

// duration reads a number of seconds or a Go duration string ("90s", "8h").
func (p *configParser) duration(key string, def, lowest, highest time.Duration) time.Duration {
	v := p.root.Get(key)
	var d time.Duration
	switch {
	case !v.Exists():
		return def
	case v.Type == gjson.Number:
		d = time.Duration(v.Float() * float64(time.Second))
	case v.Type == gjson.String:
		var err error
		if d, err = time.ParseDuration(v.String()); err != nil {
			p.fail(key, "is not a duration: use seconds (3600) or a duration such as \"1h\" or \"90s\"")
			return def
		}
	default:
		p.fail(key, "must be a number of seconds or a duration string such as \"1h\"")
		return def
	}
	if d < lowest || d > highest {
		p.fail(key, "must be between %v and %v, got %v", lowest, highest, d)
		return def
	}
	return d
}

// secret reads a value given either inline (key) or through a VM environment variable
// (key_env), exactly one of the two.
func (p *configParser) secret(key string, required bool) (value string, ok bool) {
	envKey := key + "_env"
	inline, hasInline := p.root.Get(key), p.root.Get(envKey).Exists()
	switch {
	case inline.Exists() && hasInline:
		p.fail(key, "give either %q or %q, not both", key, envKey)
		return "", false
	case hasInline:
		name := p.string(envKey, "")
		if name == "" {
			p.fail(envKey, "must name an environment variable of the VM")
			return "", false
		}
		v, found := p.getenv(name)
		if !found || strings.TrimSpace(v) == "" {
			p.fail(envKey, "environment variable %s is not set in the VM (Envoy: vm_config.environment_variables; Istio: WasmPlugin vmConfig.env)", name)
			return "", false
		}
		return strings.TrimSpace(v), true
	case inline.Exists():
		if inline.Type == gjson.String {
			return strings.TrimSpace(inline.String()), true
		}
		return inline.Raw, true // a list form, parsed by the caller
	case required:
		p.fail(key, "is required: give %q, or %q naming a VM environment variable", key, envKey)
	}
	return "", false
}

// ParseConfig parses and validates the plugin configuration. getenv reads the VM's
// environment variables (for the *_env keys). The error joins every problem found; each
// wraps ErrConfig and names its key and the fix.
func ParseConfig(data []byte, getenv func(string) (string, bool)) (*Config, error) {
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, fmt.Errorf("%w: the plugin configuration is empty; it needs at least tenant_id, client_id, client_secret, idp_cluster and cookie_secret", ErrConfig)
	}
	if !gjson.ValidBytes(data) {
		return nil, fmt.Errorf("%w: not valid JSON; check the quoting and commas of the configuration value", ErrConfig)
	}
	root := gjson.ParseBytes(data)
	if !root.IsObject() {
		return nil, fmt.Errorf("%w: must be a JSON object ({...})", ErrConfig)
	}
	p := &configParser{root: root, getenv: getenv}
	root.ForEach(func(k, _ gjson.Result) bool {
		key := k.String()
		if !slices.Contains(knownKeys, key) {
			p.fail(key, "unknown key%s; the keys are: %s", suggest(key), strings.Join(sortedKeys(), ", "))
		}
		return true
	})

	c := &Config{}
	c.Authority = strings.TrimRight(p.string("authority", DefaultAuthority), "/")
	if u, err := url.Parse(c.Authority); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		p.fail("authority", "must be an http(s) URL such as %s", DefaultAuthority)
	}
	c.TenantID = p.required("tenant_id")
	if c.TenantID != "" && !isGUID(c.TenantID) && !isDomain(c.TenantID) && !isMultiTenant(c.TenantID) {
		p.fail("tenant_id", "must be the Directory (tenant) ID, a GUID; a domain such as contoso.onmicrosoft.com; or common/organizations")
	}
	c.ClientID = p.required("client_id")
	if c.ClientID != "" && !isGUID(c.ClientID) {
		p.fail("client_id", "must be the Application (client) ID of the app registration, a GUID such as 6731de76-14a6-49ae-97bc-6eba6914391e")
	}
	c.ClientAssertion = p.parseClientAssertion()
	hasAssertion := p.root.Get("client_assertion").Exists()
	c.ClientSecret, _ = p.secret("client_secret", !hasAssertion)
	c.ClientAuth = p.string("client_auth", "client_secret_post")
	switch {
	case hasAssertion && (p.root.Get("client_secret").Exists() || p.root.Get("client_secret_env").Exists()):
		p.fail("client_assertion", "give a client secret or a client assertion, not both")
	case hasAssertion:
		c.ClientAuth = "private_key_jwt"
	case c.ClientAuth != "client_secret_post" && c.ClientAuth != "client_secret_basic":
		p.fail("client_auth", "must be client_secret_post or client_secret_basic (for private_key_jwt, give client_assertion)")
	}
	c.IDPCluster = p.required("idp_cluster")
	c.IDPTimeout = p.duration("idp_timeout", 5*time.Second, 100*time.Millisecond, time.Minute)

	if raw, ok := p.secret("cookie_secret", true); ok {
		c.CookieSecrets = p.cookieSecrets(raw)
	}
	c.CookieDomain = strings.TrimPrefix(p.string("cookie_domain", ""), ".")
	if c.CookieDomain != "" && (strings.ContainsAny(c.CookieDomain, " /:;,") || !strings.Contains(c.CookieDomain, ".")) {
		p.fail("cookie_domain", "must be a domain such as contoso.com")
	}
	defName := defaultCookieHost
	if c.CookieDomain != "" {
		defName = defaultCookieDom
	}
	c.CookieName = p.string("cookie_name", defName)
	switch {
	case c.CookieName == "" || strings.Trim(c.CookieName, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "":
		p.fail("cookie_name", "must be letters, digits, - and _")
	case c.CookieDomain != "" && strings.HasPrefix(c.CookieName, "__Host-"):
		p.fail("cookie_name", "a __Host- cookie cannot have a Domain; use the __Secure- prefix with cookie_domain")
	}

	c.RedirectPath = p.path("redirect_path", "/.auth/callback")
	c.RedirectURI = p.string("redirect_uri", "")
	if c.RedirectURI != "" {
		u, err := url.Parse(c.RedirectURI)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || u.RawQuery != "":
			p.fail("redirect_uri", "must be the absolute callback URL registered in Entra, such as https://app.contoso.com/.auth/callback")
		case root.Get("redirect_path").Exists() && u.Path != c.RedirectPath:
			p.fail("redirect_uri", "its path %q differs from redirect_path %q; give one of the two", u.Path, c.RedirectPath)
		case u.Path == "" || u.Path == "/":
			p.fail("redirect_uri", "needs a path for the callback, such as /.auth/callback")
		default:
			c.RedirectPath = u.Path
		}
	}
	c.LoginPath = p.path("login_path", "/.auth/login")
	c.LogoutPath = p.path("logout_path", "/.auth/logout")
	c.MePath = p.path("me_path", "/.auth/me")
	paths := map[string]string{}
	for _, kp := range [][2]string{{"redirect_path", c.RedirectPath}, {"login_path", c.LoginPath}, {"logout_path", c.LogoutPath}, {"me_path", c.MePath}} {
		if other, dup := paths[kp[1]]; dup {
			p.fail(kp[0], "is the same path as %s", other)
		}
		paths[kp[1]] = kp[0]
	}
	c.PostLogoutRedirectURI = p.string("post_logout_redirect_uri", "")
	if c.PostLogoutRedirectURI != "" {
		if u, err := url.Parse(c.PostLogoutRedirectURI); err != nil || !u.IsAbs() || u.Host == "" {
			p.fail("post_logout_redirect_uri", "must be an absolute URL registered in Entra as a logout URL")
		}
	}

	c.Scopes = p.strings("scopes", true)
	if !p.root.Get("scopes").Exists() {
		c.Scopes = strings.Fields(DefaultScopes)
	}
	if !slices.Contains(c.Scopes, "openid") {
		p.fail("scopes", "must include openid (the ID token depends on it)")
	}
	c.AllowedTenants = p.strings("allowed_tenants", true)
	switch {
	case c.MultiTenant() && len(c.AllowedTenants) == 0:
		p.fail("allowed_tenants", "is required when tenant_id is %s: list the tenant GUIDs to accept, or [\"*\"] to accept every tenant", c.TenantID)
	case !c.MultiTenant() && len(c.AllowedTenants) > 0:
		p.fail("allowed_tenants", "applies only when tenant_id is common or organizations; remove it")
	}
	if slices.Contains(c.AllowedTenants, jwks.AnyTenant) && len(c.AllowedTenants) > 1 {
		p.fail("allowed_tenants", "\"*\" accepts every tenant; list tenants or give \"*\" alone")
	}
	c.SkipPaths = p.strings("skip_paths", false)
	for _, sp := range c.SkipPaths {
		if !strings.HasPrefix(sp, "/") || strings.ContainsAny(sp, "?#") || strings.Contains(strings.TrimSuffix(sp, "*"), "*") {
			p.fail("skip_paths", "%q must be a path such as /healthz, or a prefix ending in * such as /static/*", sp)
		}
	}

	c.SessionMaxAge = p.duration("session_max_age", 8*time.Hour, time.Minute, 30*24*time.Hour)
	c.SignInTimeout = p.duration("sign_in_timeout", 10*time.Minute, time.Minute, time.Hour)
	c.ClockSkew = p.duration("clock_skew", 2*time.Minute, 0, 10*time.Minute)
	c.JWKSRefreshInterval = p.duration("jwks_refresh_interval", time.Hour, time.Minute, 7*24*time.Hour)
	c.RefreshBefore = p.duration("refresh_before", 5*time.Minute, 0, 24*time.Hour)
	c.UserSync = p.parseUserSync()
	c.UpstreamSignature = p.parseUpstreamSignature()
	c.APIAudiences = p.strings("api_audiences", false)
	c.Access = p.parseAccessRules()
	p.parseDownstream(c)
	p.parseGraph(c)

	if len(p.problems) > 0 {
		return nil, errors.Join(p.problems...)
	}
	return c, nil
}

func (p *configParser) path(key, def string) string {
	v := p.string(key, def)
	if !strings.HasPrefix(v, "/") || strings.ContainsAny(v, "?# ") || strings.HasPrefix(v, "//") {
		p.fail(key, "must be a path starting with / (no query), such as %s", def)
		return def
	}
	return v
}

// cookieSecrets decodes the cookie secret: base64 of 32 bytes, or a list of them (a JSON
// list inline, or spaces or commas between them in an environment variable).
func (p *configParser) cookieSecrets(raw string) [][]byte {
	var items []string
	if strings.HasPrefix(raw, "[") {
		gjson.Parse(raw).ForEach(func(_, v gjson.Result) bool {
			items = append(items, v.String())
			return true
		})
	} else {
		items = strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' })
	}
	if len(items) == 0 {
		p.fail("cookie_secret", "is empty; generate one with: openssl rand -base64 32")
		return nil
	}
	var keys [][]byte
	for i, item := range items {
		key, err := decodeBase64(item)
		if err != nil || len(key) != session.KeySize {
			p.fail("cookie_secret", "secret %d is not base64 of %d bytes; generate one with: openssl rand -base64 32", i+1, session.KeySize)
			return nil
		}
		keys = append(keys, key)
	}
	return keys
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "=")
	if strings.ContainsAny(s, "-_") {
		return base64.RawURLEncoding.DecodeString(s)
	}
	return base64.RawStdEncoding.DecodeString(s)
}

func sortedKeys() []string {
	keys := append([]string(nil), knownKeys...)
	sort.Strings(keys)
	return keys
}

// suggest names a known key close to an unknown one ("tenantid" -> "tenant_id").
func suggest(key string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "_", "") }
	for _, k := range knownKeys {
		if norm(k) == norm(strings.ReplaceAll(key, "-", "")) {
			return fmt.Sprintf(" (did you mean %q?)", k)
		}
	}
	return ""
}

// isGUID reports whether s is a GUID in its usual form (8-4-4-4-12 hex digits).
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}

// isDomain reports whether s is a DNS name of two labels or more (a tenant's verified
// domain).
func isDomain(s string) bool {
	labels := strings.Split(s, ".")
	if len(labels) < 2 || len(s) > 253 {
		return false
	}
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' || strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return false
		}
	}
	return true
}
