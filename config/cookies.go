package config

import (
	"encoding/base64"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/session"
)

// validateCookies reads the session cookie and the session's times: cookie_secret,
// cookie_domain, cookie_name, session_max_age, sign_in_timeout and refresh_before.
func validateCookies(p *parser, c *Config) {
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
	c.SessionMaxAge = p.duration("session_max_age", 8*time.Hour, time.Minute, 30*24*time.Hour)
	c.SignInTimeout = p.duration("sign_in_timeout", 10*time.Minute, time.Minute, time.Hour)
	c.RefreshBefore = p.duration("refresh_before", 5*time.Minute, 0, 24*time.Hour)
}

// cookieSecrets decodes the cookie secret: base64 of 32 bytes, or a list of them (a JSON
// list inline, or spaces or commas between them in an environment variable).
func (p *parser) cookieSecrets(raw string) [][]byte {
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
