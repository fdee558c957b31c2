package config

import (
	"strings"
	"testing"
)

// A misspelt key, at any level of the configuration, is named once with the key it most
// likely means; a key like none of them gets the list of keys instead.
func TestUnknownKeysSuggestTheNearest(t *testing.T) {
	base := strings.TrimSuffix(withSecret(minimal), "}")
	for _, tc := range []struct {
		name, extra string
		want        string
		wantList    bool
	}{
		{"letters swapped", `,"cookie_secert_env":"X"`, `"cookie_secert_env": unknown key (did you mean "cookie_secret_env"?)`, false},
		{"a letter missing", `,"sesion_max_age":"1h"`, `"sesion_max_age": unknown key (did you mean "session_max_age"?)`, false},
		{"case and dashes", `,"Skip-Paths":["/x"]`, `"Skip-Paths": unknown key (did you mean "skip_paths"?)`, false},
		{"a letter too many", `,"tenant_idd":"x"`, `"tenant_idd": unknown key (did you mean "tenant_id"?)`, false},
		{"in user_sync", `,"user_sync":{"url":"http://u/s","clustre":"c","secret_env":"S"}`, `"user_sync.clustre": unknown key (did you mean "cluster"?)`, false},
		{"a user_sync field", `,"user_sync":{"url":"http://u/s","cluster":"c","secret_env":"S","claims":{"usrname":"upn"}}`, `"usrname" is not a field (did you mean "username"?)`, false},
		{"in a rule", `,"rules":[{"path":"/x","roles":["A"],"methdos":["GET"]}]`, `"rules[0].methdos": unknown key (did you mean "methods"?)`, false},
		{"in client_assertion", `,"client_assertion":{"private_key_env":"K","certificat_env":"C"}`, `"client_assertion.certificat_env": unknown key (did you mean "certificate_env"?)`, false},
		{"in upstream_signature", `,"upstream_signature":{"secret_evn":"S"}`, `"upstream_signature.secret_evn": unknown key (did you mean "secret_env"?)`, false},
		{"nothing like it", `,"colour":"blue"`, `"colour": unknown key; the keys are: allowed_groups, allowed_roles,`, true},
		{"too far to guess", `,"cookie":"x"`, `"cookie": unknown key; the keys are:`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(base+tc.extra+"}"), func(string) (string, bool) { return "v", true })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant %q", err, tc.want)
			}
			if n := strings.Count(err.Error(), "unknown key") + strings.Count(err.Error(), "is not a field"); n != 1 {
				t.Errorf("the key is named %d times, want once: %v", n, err)
			}
			if got := strings.Contains(err.Error(), "the keys are"); got != tc.wantList {
				t.Errorf("list of keys given: %v, want %v", got, tc.wantList)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"secret", "secret", 0},
		{"secert", "secret", 1}, {"sesion", "session", 1}, {"kitten", "sitting", 3}, {"ca", "abc", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
