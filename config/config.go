// Package config reads and validates the plugin configuration: the JSON an operator gives
// Envoy (configuration) or Istio (WasmPlugin pluginConfig). Parse checks every key, one
// validator per concern (the identity provider, the client, cookies and sessions, paths,
// access rules, user sync, what goes upstream), and reports every problem at once, each
// naming its key and the fix. It reads the VM's environment for the *_env keys and
// nothing else: no proxy-wasm, no network.
package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// ErrConfig wraps every configuration problem.
var ErrConfig = errors.New("config: invalid plugin configuration")

// Config is the plugin configuration, parsed and validated. Parse fills defaults.
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
	// LoginPath, LogoutPath and MePath are the filter's other paths; SignedOutPath serves
	// the page that says a user is signed out.
	LoginPath, LogoutPath, MePath, SignedOutPath string
	// PostLogoutRedirectURI is where Entra sends the browser after sign-out; empty means
	// the site's SignedOutPath.
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
	UserSync *UserSync
	// UpstreamSignature, when set, is the secret the filter signs what it sends upstream
	// with (upstream_signature; package upstreamsig).
	UpstreamSignature []byte
	// APIAudiences, when set, accept bearer access tokens issued to these audiences.
	APIAudiences []string
	// Access are the authorization rules (allowed_groups, allowed_roles, rules).
	Access AccessRules
	// FollowClaimsChallenges turns the application's claims challenges to a browser (401
	// with WWW-Authenticate: Bearer error="insufficient_claims", claims="...") into a
	// sign-in asking Entra for those claims, once per page and session in a while.
	FollowClaimsChallenges bool
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

// DiscoveryURL is {authority}/{tenant_id}/v2.0/.well-known/openid-configuration.
func (c *Config) DiscoveryURL() string {
	return c.Authority + "/" + c.TenantID + "/v2.0/.well-known/openid-configuration"
}

// knownKeys are the configuration keys; anything else is a mistake worth a clear error.
var knownKeys = []string{
	"authority", "tenant_id", "client_id", "client_secret", "client_secret_env", "client_auth", "client_assertion",
	"idp_cluster", "idp_timeout", "cookie_secret", "cookie_secret_env", "cookie_name", "cookie_domain",
	"redirect_path", "redirect_uri", "login_path", "logout_path", "me_path", "signed_out_path", "post_logout_redirect_uri",
	"scopes", "allowed_tenants", "skip_paths", "session_max_age", "sign_in_timeout", "clock_skew",
	"jwks_refresh_interval", "refresh_before", "user_sync", "api_audiences", "allowed_groups", "allowed_roles", "rules",
	"forward_access_token", "obo_scopes", "obo_header", "graph_cluster", "graph_url", "upstream_signature",
	"follow_claims_challenges",
}

// Parse parses and validates the plugin configuration. getenv reads the VM's environment
// variables (for the *_env keys). The error joins every problem found; each wraps
// ErrConfig and names its key and the fix.
func Parse(data []byte, getenv func(string) (string, bool)) (*Config, error) {
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
	p := &parser{root: root, getenv: getenv}
	p.known(root, knownKeys...)
	c := &Config{}
	for _, validate := range []func(*parser, *Config){
		validateProvider, validateClient, validateCookies, validatePaths,
		validateAccess, validateUserSync, validateUpstream,
	} {
		validate(p, c)
	}
	if len(p.problems) > 0 {
		return nil, errors.Join(p.problems...)
	}
	return c, nil
}
