package config

import (
	"strings"
	"testing"
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
	} {
		_, err := Parse([]byte(withSecret(strings.TrimSuffix(minimal, "}")+`,"rules":`+tc.rules+`}`)), noEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
