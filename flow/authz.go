package flow

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/tidwall/gjson"
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

func (r *PathRule) matches(req *Request) bool {
	if len(r.Methods) > 0 && !slices.Contains(r.Methods, req.Method) {
		return false
	}
	p := req.PathOnly()
	if r.Regex != nil {
		return r.Regex.MatchString(p)
	}
	if prefix, ok := strings.CutSuffix(r.Path, "*"); ok {
		return strings.HasPrefix(p, prefix)
	}
	return p == r.Path
}

// parseAccessRules reads allowed_groups, allowed_roles and rules.
func (p *configParser) parseAccessRules() AccessRules {
	a := AccessRules{AllowedGroups: p.strings("allowed_groups", false), AllowedRoles: p.strings("allowed_roles", false)}
	rules := p.root.Get("rules")
	if !rules.Exists() {
		return a
	}
	if !rules.IsArray() {
		p.fail("rules", `must be a list of {"path" or "regex", "methods", "groups", "roles", "scopes"}`)
		return a
	}
	known := []string{"path", "regex", "methods", "groups", "roles", "scopes"}
	for i, item := range rules.Array() {
		key := fmt.Sprintf("rules[%d]", i)
		if !item.IsObject() {
			p.fail(key, "must be an object")
			continue
		}
		sub := &configParser{root: item, prefix: key + ".", getenv: p.getenv}
		item.ForEach(func(k, _ gjson.Result) bool {
			if !slices.Contains(known, k.String()) {
				sub.fail(k.String(), "unknown key; the keys are: %s", strings.Join(known, ", "))
			}
			return true
		})
		r := PathRule{Path: sub.string("path", ""), Methods: sub.strings("methods", false),
			Groups: sub.strings("groups", false), Roles: sub.strings("roles", false), Scopes: sub.strings("scopes", false)}
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
		if len(r.Groups)+len(r.Roles)+len(r.Scopes) == 0 {
			sub.fail("rules", `needs "groups", "roles" or "scopes": a rule that requires nothing protects nothing`)
		}
		p.problems = append(p.problems, sub.problems...)
		a.Paths = append(a.Paths, r)
	}
	return a
}

// Denied says what a request lacked: the first requirement it failed.
type Denied struct {
	// Kind is "groups", "roles", "scopes" or "groups or roles"; Want what would do.
	Kind string
	Want []string
	// Rule names the rule ("" for allowed_groups/allowed_roles).
	Rule string
}

// Authorize checks a request's user (its groups and roles, and a bearer token's scopes)
// against the access rules, and says what was missing, or nil.
func (f *Flow) Authorize(r *Request, groups, roles, scopes []string, bearer bool) *Denied {
	a := &f.cfg.Access
	if len(a.AllowedGroups)+len(a.AllowedRoles) > 0 && !hasAny(groups, a.AllowedGroups) && !hasAny(roles, a.AllowedRoles) {
		kind, want := "groups or roles", append(slices.Clone(a.AllowedGroups), a.AllowedRoles...)
		switch {
		case len(a.AllowedRoles) == 0:
			kind = "groups"
		case len(a.AllowedGroups) == 0:
			kind = "roles"
		}
		return &Denied{Kind: kind, Want: want}
	}
	for i := range a.Paths {
		rule := &a.Paths[i]
		if !rule.matches(r) {
			continue
		}
		switch {
		case len(rule.Groups) > 0 && !hasAny(groups, rule.Groups):
			return &Denied{Kind: "groups", Want: rule.Groups, Rule: rule.String()}
		case len(rule.Roles) > 0 && !hasAny(roles, rule.Roles):
			return &Denied{Kind: "roles", Want: rule.Roles, Rule: rule.String()}
		case bearer && len(rule.Scopes) > 0 && !hasAny(scopes, rule.Scopes):
			return &Denied{Kind: "scopes", Want: rule.Scopes, Rule: rule.String()}
		}
		return nil
	}
	return nil
}

func hasAny(have, want []string) bool {
	return slices.ContainsFunc(want, func(w string) bool { return slices.Contains(have, w) })
}

// Forbidden answers a request its user may not make: 403 with a page (JSON for
// programs) naming what was required, never what the user has. A bearer request lacking
// scopes gets RFC 6750's insufficient_scope.
func (f *Flow) Forbidden(r *Request, d *Denied, bearer bool, requestID string) *Response {
	msg := fmt.Sprintf("You do not have access to this page: it requires one of these %s: %s.", d.Kind, strings.Join(d.Want, ", "))
	resp := ErrorResponse(r, 403, "forbidden", msg, requestID)
	if bearer {
		resp = JSONError(403, "insufficient_scope", msg, requestID)
		challenge := fmt.Sprintf(`Bearer realm=%q, error="insufficient_scope"`, r.Authority)
		if d.Kind == "scopes" {
			challenge += fmt.Sprintf(", scope=%q", strings.Join(d.Want, " "))
		}
		resp.Headers = append(resp.Headers, [2]string{"www-authenticate", challenge})
	}
	return resp
}
