package config

import (
	"net/url"
	"strings"
)

// validatePaths reads the filter's own paths and those it lets pass: redirect_path,
// redirect_uri, login_path, logout_path, me_path, signed_out_path,
// post_logout_redirect_uri and skip_paths.
func validatePaths(p *parser, c *Config) {
	c.RedirectPath = p.path("redirect_path", "/.auth/callback")
	c.RedirectURI = p.string("redirect_uri", "")
	if c.RedirectURI != "" {
		u, err := url.Parse(c.RedirectURI)
		switch {
		case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" || u.RawQuery != "":
			p.fail("redirect_uri", "must be the absolute callback URL registered in Entra, such as https://app.contoso.com/.auth/callback")
		case p.root.Get("redirect_path").Exists() && u.Path != c.RedirectPath:
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
	c.SignedOutPath = p.path("signed_out_path", "/.auth/signed-out")
	paths := map[string]string{}
	for _, kp := range [][2]string{{"redirect_path", c.RedirectPath}, {"login_path", c.LoginPath}, {"logout_path", c.LogoutPath},
		{"me_path", c.MePath}, {"signed_out_path", c.SignedOutPath}} {
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
	c.SkipPaths = p.strings("skip_paths", false)
	for _, sp := range c.SkipPaths {
		if !strings.HasPrefix(sp, "/") || strings.ContainsAny(sp, "?#") || strings.Contains(strings.TrimSuffix(sp, "*"), "*") {
			p.fail("skip_paths", "%q must be a path such as /healthz, or a prefix ending in * such as /static/*", sp)
		}
	}
}
