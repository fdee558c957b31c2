package config

import (
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/entra-auth/entra-auth/jwks"
)

// validateProvider reads the identity provider: authority, tenant_id, allowed_tenants,
// idp_cluster, idp_timeout, clock_skew and jwks_refresh_interval.
func validateProvider(p *parser, c *Config) {
	c.Authority = strings.TrimRight(p.string("authority", DefaultAuthority), "/")
	if u, err := url.Parse(c.Authority); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		p.fail("authority", "must be an http(s) URL such as %s", DefaultAuthority)
	}
	c.TenantID = p.required("tenant_id")
	if c.TenantID != "" && !isGUID(c.TenantID) && !IsDomain(c.TenantID) && !isMultiTenant(c.TenantID) {
		p.fail("tenant_id", "must be the Directory (tenant) ID, a GUID; a domain such as contoso.onmicrosoft.com; or common/organizations")
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
	c.IDPCluster = p.required("idp_cluster")
	c.IDPTimeout = p.duration("idp_timeout", 5*time.Second, 100*time.Millisecond, time.Minute)
	c.ClockSkew = p.duration("clock_skew", 2*time.Minute, 0, 10*time.Minute)
	c.JWKSRefreshInterval = p.duration("jwks_refresh_interval", time.Hour, time.Minute, 7*24*time.Hour)
}
