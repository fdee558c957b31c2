package config

import (
	"strings"
	"testing"
	"time"
)

const syncBase = `"url":"http://users.internal/entra/sync","cluster":"user_sync","secret_env":"SYNC_SECRET"`

func syncEnv(k string) (string, bool) {
	if k == "SYNC_SECRET" {
		return "sync-s3cret", true
	}
	return "", false
}

// userSyncOf parses the minimal configuration with block as user_sync.
func userSyncOf(t *testing.T, block string) *UserSync {
	t.Helper()
	c, err := Parse([]byte(withSecret(strings.TrimSuffix(minimal, "}")+`,"user_sync":`+block+`}`)), syncEnv)
	if err != nil {
		t.Fatal(err)
	}
	return c.UserSync
}

func TestUserSyncConfig(t *testing.T) {
	c := userSyncOf(t, `{`+syncBase+`}`)
	if c.Secret != "sync-s3cret" || c.Timeout != 3*time.Second || c.AllowOnFailure || !c.MirrorGroups || c.GroupsClaim != "groups" || c.Claims["username"] != "preferred_username" {
		t.Errorf("defaults %+v", c)
	}
	c = userSyncOf(t, `{`+syncBase+`,"claims":{"username":"upn","email":"mail"},"groups_claim":"wids","mirror_groups":false,
		"flags":{"is_superuser":{"roles":["Admin"]},"is_staff":{"groups":["g1"]}},"timeout_ms":500,"on_failure":"allow"}`)
	if c.Claims["username"] != "upn" || c.Claims["email"] != "mail" || c.GroupsClaim != "wids" || c.MirrorGroups || c.Timeout != 500*time.Millisecond ||
		!c.AllowOnFailure || len(c.Flags) != 2 || c.Flags[0].Name != "is_staff" {
		t.Errorf("settings %+v", c)
	}
	for name, tc := range map[string]struct{ block, want string }{
		"not an object":  {`"x"`, `"user_sync": must be an object`},
		"relative url":   {`{"url":"/sync","cluster":"c","secret_env":"SYNC_SECRET"}`, `"user_sync.url": must be an absolute`},
		"missing secret": {`{"url":"http://a/b","cluster":"c","secret_env":"NOPE"}`, `"user_sync.secret_env": environment variable NOPE is not set`},
		"unknown field":  {`{` + syncBase + `,"claims":{"nickname":"x"}}`, `"nickname" is not a field`},
		"empty flag":     {`{` + syncBase + `,"flags":{"is_staff":{}}}`, `flag "is_staff" needs`},
		"bad flag list":  {`{` + syncBase + `,"flags":{"is_staff":{"groups":[1]}}}`, `"user_sync.flags.is_staff.groups"`},
		"bad timeout":    {`{` + syncBase + `,"timeout_ms":5}`, `"user_sync.timeout_ms"`},
		"bad policy":     {`{` + syncBase + `,"on_failure":"maybe"}`, `"user_sync.on_failure"`},
		"unknown key":    {`{` + syncBase + `,"retries":3}`, `"user_sync.retries": unknown key`},
		"empty groups":   {`{` + syncBase + `,"groups_claim":" "}`, `"user_sync.groups_claim": must name a claim`},
		"flags not map":  {`{` + syncBase + `,"flags":["is_staff"]}`, `"user_sync.flags": must map flag names`},
		"mirror string":  {`{` + syncBase + `,"mirror_groups":"yes"}`, `"user_sync.mirror_groups": must be true or false`},
	} {
		_, err := Parse([]byte(`{"tenant_id":"11111111-2222-3333-4444-000000000001","client_id":"11111111-2222-3333-4444-000000000002","client_secret":"s","idp_cluster":"e","cookie_secret":"`+secretA+`","user_sync":`+tc.block+`}`), syncEnv)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}
