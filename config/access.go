package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Authorization: allowed_groups and allowed_roles for every request, and per-path rules.
// Within a list, one match is enough; across lists, each must be met.

// AccessRules are what a signed-in user or a bearer token must have.
type AccessRules struct {
	// AllowedGroups and AllowedRoles apply to every request: a user passes with one of the
	// groups or one of the roles (either list may be empty).
	AllowedGroups, AllowedRoles []string
	// Paths apply to the requests they match; the first that matches decides.
	Paths []PathRule
}

// PathRule is one entry of rules.
type PathRule struct {
	// Path is an exact path or a prefix ending in "*"; Regex a regular expression on the
	// path (without its query). One of the two is set.
	Path  string
	Regex *regexp.Regexp
	// Methods, when set, limit the rule to these methods.
	Methods []string
	// Groups, Roles and Scopes are the requirements: one of each list that is set. Scopes
	// apply to bearer tokens only (a browser session has no scopes of its own).
	Groups, Roles, Scopes []string
	// AuthContexts (auth_context) are Conditional Access authentication contexts, one of
	// which the sign-in must have satisfied (Entra's acrs claim); MaxAuthAge
	// (max_auth_age), when set, is how long ago the user may last have actively signed
	// in (auth_time). Either makes a browser step up: sign in again, as Entra asks.
	AuthContexts []string
	MaxAuthAge   time.Duration
}

// StepUp reports whether the rule asks more of the sign-in than who the user is.
func (r *PathRule) StepUp() bool { return len(r.AuthContexts) > 0 || r.MaxAuthAge > 0 }

// IsContextID reports whether s is a Conditional Access authentication context id: c1
// to c99.
func IsContextID(s string) bool {
	if len(s) < 2 || len(s) > 3 || s[0] != 'c' || s[1] == '0' {
		return false
	}
	for _, d := range s[1:] {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

func (r *PathRule) String() string {
	where := r.Path
	if r.Regex != nil {
		where = "~" + r.Regex.String()
	}
	if len(r.Methods) > 0 {
		where = strings.Join(r.Methods, ",") + " " + where
	}
	return where
}

// validateAccess reads who may pass: allowed_groups, allowed_roles, rules, the
// audiences of bearer tokens (api_audiences), and whether the application may ask for a
// stronger sign-in itself (follow_claims_challenges).
func validateAccess(p *parser, c *Config) {
	c.APIAudiences = p.strings("api_audiences", false)
	c.Access = p.accessRules()
	c.FollowClaimsChallenges = p.boolean("follow_claims_challenges", false)
}

func (p *parser) accessRules() AccessRules {
	a := AccessRules{AllowedGroups: p.strings("allowed_groups", false), AllowedRoles: p.strings("allowed_roles", false)}
	rules := p.root.Get("rules")
	if !rules.Exists() {
		return a
	}
	if !rules.IsArray() {
		p.fail("rules", `must be a list of {"path" or "regex", "methods", "groups", "roles", "scopes"}`)
		return a
	}
	known := []string{"path", "regex", "methods", "groups", "roles", "scopes", "auth_context", "max_auth_age"}
	for i, item := range rules.Array() {
		key := fmt.Sprintf("rules[%d]", i)
		if !item.IsObject() {
			p.fail(key, "must be an object")
			continue
		}
		sub := p.sub(item, key+".")
		sub.known(item, known...)
		r := PathRule{Path: sub.string("path", ""), Methods: sub.strings("methods", false),
			Groups: sub.strings("groups", false), Roles: sub.strings("roles", false), Scopes: sub.strings("scopes", false),
			AuthContexts: sub.strings("auth_context", true), MaxAuthAge: sub.duration("max_auth_age", 0, time.Minute, 30*24*time.Hour)}
		for _, id := range r.AuthContexts {
			if !IsContextID(id) {
				sub.fail("auth_context", "%q is not an authentication context id: Entra's are c1 to c99 (Conditional Access, Authentication context)", id)
			}
		}
		if expr := sub.string("regex", ""); expr != "" {
			re, err := regexp.Compile(expr)
			if err != nil {
				sub.fail("regex", "does not compile: %v", err)
			}
			r.Regex = re
		}
		hasRegex := item.Get("regex").Exists()
		switch {
		case r.Path == "" && !hasRegex:
			sub.fail("path", `give "path" (exact, or a prefix ending in *) or "regex"`)
		case r.Path != "" && hasRegex:
			sub.fail("path", `give "path" or "regex", not both`)
		case r.Path != "" && !strings.HasPrefix(r.Path, "/"):
			sub.fail("path", "must start with /")
		}
		for _, m := range r.Methods {
			if m != strings.ToUpper(m) || strings.ContainsAny(m, " /") {
				sub.fail("methods", "%q is not a method such as GET or POST", m)
			}
		}
		if len(r.Groups)+len(r.Roles)+len(r.Scopes) == 0 && !r.StepUp() {
			sub.fail("rules", `needs "groups", "roles", "scopes", "auth_context" or "max_auth_age": a rule that requires nothing protects nothing`)
		}
		p.problems = append(p.problems, sub.problems...)
		a.Paths = append(a.Paths, r)
	}
	return a
}
