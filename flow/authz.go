package flow

import (
	"fmt"
	"slices"
	"strings"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/session"
)

// Authorization: allowed_groups and allowed_roles for every request, and per-path rules.
// Within a list, one match is enough; across lists, each must be met.

// ruleMatches reports whether the rule applies to req.
func ruleMatches(r *config.PathRule, req *Request) bool {
	if len(r.Methods) > 0 && !slices.Contains(r.Methods, req.Method) {
		return false
	}
	p := req.pathOnly()
	if r.Regex != nil {
		return r.Regex.MatchString(p)
	}
	if prefix, ok := strings.CutSuffix(r.Path, "*"); ok {
		return strings.HasPrefix(p, prefix)
	}
	return p == r.Path
}

// matchingRule is the first rule that applies to r, or nil: the first that matches decides.
func (f *Flow) matchingRule(r *Request) *config.PathRule {
	for i := range f.cfg.Access.Paths {
		if rule := &f.cfg.Access.Paths[i]; ruleMatches(rule, r) {
			return rule
		}
	}
	return nil
}

// Denied says what a request lacked: the first requirement it failed.
type Denied struct {
	// Kind is "groups", "roles", "scopes" or "groups or roles"; Want what would do.
	Kind string
	Want []string
	// Rule names the rule ("" for allowed_groups/allowed_roles).
	Rule string
}

// Authorize checks a request's user (a session, or a bearer token's user, and a bearer
// token's scopes) against the access rules: what was missing (Denied), or, when the user
// may pass, what the rule matching r asks of how the user signed in and the sign-in
// lacks (StepUp); nil and nil to let it through. The rules are matched once.
func (f *Flow) Authorize(r *Request, user *session.Session, scopes []string, bearer bool) (*Denied, *StepUp) {
	a := &f.cfg.Access
	groups, roles := user.Groups, user.Roles
	if len(a.AllowedGroups)+len(a.AllowedRoles) > 0 && !hasAny(groups, a.AllowedGroups) && !hasAny(roles, a.AllowedRoles) {
		kind, want := "groups or roles", append(slices.Clone(a.AllowedGroups), a.AllowedRoles...)
		switch {
		case len(a.AllowedRoles) == 0:
			kind = "groups"
		case len(a.AllowedGroups) == 0:
			kind = "roles"
		}
		return &Denied{Kind: kind, Want: want}, nil
	}
	rule := f.matchingRule(r)
	if rule == nil {
		return nil, nil
	}
	switch {
	case len(rule.Groups) > 0 && !hasAny(groups, rule.Groups):
		return &Denied{Kind: "groups", Want: rule.Groups, Rule: rule.String()}, nil
	case len(rule.Roles) > 0 && !hasAny(roles, rule.Roles):
		return &Denied{Kind: "roles", Want: rule.Roles, Rule: rule.String()}, nil
	case bearer && len(rule.Scopes) > 0 && !hasAny(scopes, rule.Scopes):
		return &Denied{Kind: "scopes", Want: rule.Scopes, Rule: rule.String()}, nil
	}
	return nil, f.stepUpFor(rule, user)
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
