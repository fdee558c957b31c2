package config

import (
	"strings"
	"testing"
	"time"
)

func TestAccessRulesConfig(t *testing.T) {
	c, err := Parse([]byte(withSecret(strings.TrimSuffix(minimal, "}")+`,"allowed_groups":["g-all"],"rules":[
		{"path":"/admin/*","roles":["Admin"]},
		{"regex":"^/api/v[0-9]+/items$","methods":["POST","DELETE"],"scopes":["Items.Write"],"groups":["g-writers"]},
		{"path":"/exact","groups":["g-exact"]}]}`)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Access
	if len(a.Paths) != 3 || a.Paths[1].Regex == nil || a.Paths[0].Path != "/admin/*" || a.AllowedGroups[0] != "g-all" {
		t.Fatalf("rules %+v", a)
	}
	for name, tc := range map[string]struct{ rules, want string }{
		"not a list":      {`{"path":"/x"}`, `"rules": must be a list`},
		"no requirement":  {`[{"path":"/x"}]`, `a rule that requires nothing`},
		"no path":         {`[{"roles":["A"]}]`, `"rules[0].path": give "path"`},
		"both":            {`[{"path":"/x","regex":"x","roles":["A"]}]`, `not both`},
		"bad regex":       {`[{"regex":"(","roles":["A"]}]`, `"rules[0].regex": does not compile`},
		"relative path":   {`[{"path":"x","roles":["A"]}]`, `must start with /`},
		"lowercase verb":  {`[{"path":"/x","methods":["get"],"roles":["A"]}]`, `"rules[0].methods"`},
		"unknown key":     {`[{"path":"/x","role":["A"]}]`, `"rules[0].role": unknown key`},
		"groups not list": {`[{"path":"/x","groups":"g"}]`, `"rules[0].groups"`},
		"context id":      {`[{"path":"/x","auth_context":["c1","C2"]}]`, `"rules[0].auth_context": "C2" is not an authentication context id`},
		"context c0":      {`[{"path":"/x","auth_context":"c0"}]`, `"c0" is not an authentication context id`},
		"context c100":    {`[{"path":"/x","auth_context":"c100"}]`, `"c100" is not`},
		"auth age short":  {`[{"path":"/x","max_auth_age":"10s"}]`, `"rules[0].max_auth_age": must be between 1m0s`},
	} {
		_, err := Parse([]byte(withSecret(strings.TrimSuffix(minimal, "}")+`,"rules":`+tc.rules+`}`)), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

// A rule may ask only how the user signed in: an authentication context (one id, or a
// list of which one will do) or a recent sign-in.
func TestStepUpRules(t *testing.T) {
	c, err := Parse([]byte(withSecret(strings.TrimSuffix(minimal, "}")+`,"rules":[
		{"path":"/admin/*","auth_context":"c1"},
		{"path":"/pay","auth_context":["c2","c3"],"max_auth_age":"15m","roles":["Payer"]},
		{"path":"/profile","max_auth_age":600}]}`)), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Access.Paths
	if len(r[0].AuthContexts) != 1 || r[0].AuthContexts[0] != "c1" || r[0].MaxAuthAge != 0 || !r[0].StepUp() {
		t.Errorf("rule 0: %+v", r[0])
	}
	if len(r[1].AuthContexts) != 2 || r[1].MaxAuthAge != 15*time.Minute || r[1].Roles[0] != "Payer" {
		t.Errorf("rule 1: %+v", r[1])
	}
	if r[2].MaxAuthAge != 10*time.Minute || len(r[2].AuthContexts) != 0 || !r[2].StepUp() {
		t.Errorf("rule 2: %+v", r[2])
	}
	for id, want := range map[string]bool{"c1": true, "c9": true, "c10": true, "c99": true, "c0": false, "c01": false, "c100": false, "c": false, "C1": false, "c1a": false, "": false} {
		if IsContextID(id) != want {
			t.Errorf("IsContextID(%q) = %v", id, !want)
		}
	}
}
