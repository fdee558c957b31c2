package config

import (
	"maps"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tidwall/gjson"
)

// UserSync is the user_sync block: after a sign-in's ID token is verified, and
// before the session is set, the user is POSTed to the application's user-sync endpoint,
// which creates or updates it (by tenant_id and object_id) and may answer a user_id.
type UserSync struct {
	// URL is the endpoint; its host and path become :authority and :path.
	URL string
	// Cluster is the Envoy cluster that reaches URL.
	Cluster string
	// Secret is sent as a Bearer token (read from the VM variable named by secret_env).
	Secret string
	// Claims names the claim that fills each field (username, email, name, given_name,
	// family_name); username falls back to upn then email when its claim is absent.
	Claims map[string]string
	// GroupsClaim is the claim that holds the groups.
	GroupsClaim string
	// MirrorGroups tells the application the groups are complete: replace, not merge.
	MirrorGroups bool
	// Flags are named booleans computed from group or role membership.
	Flags []UserFlag
	// Timeout bounds the call, its one retry included.
	Timeout time.Duration
	// AllowOnFailure lets sign-in proceed without a user id when the endpoint cannot be
	// reached (on_failure: allow); by default sign-in stops (deny).
	AllowOnFailure bool
}

// UserFlag is true for a user in any of Groups or with any of Roles.
type UserFlag struct {
	Name          string
	Groups, Roles []string
}

// SyncFields are the fields a claim may fill, with their default claim.
var SyncFields = map[string]string{
	"username": "preferred_username", "email": "email", "name": "name",
	"given_name": "given_name", "family_name": "family_name",
}

// validateUserSync reads the user_sync block, if any.
func validateUserSync(p *parser, c *Config) {
	c.UserSync = p.userSync()
}

func (p *parser) userSync() *UserSync {
	block := p.root.Get("user_sync")
	if !block.Exists() {
		return nil
	}
	if !block.IsObject() {
		p.fail("user_sync", "must be an object with url, cluster and secret_env")
		return nil
	}
	sub := p.sub(block, "user_sync.")
	sub.known(block, "url", "cluster", "secret_env", "claims", "groups_claim", "mirror_groups", "flags", "timeout_ms", "on_failure")
	c := &UserSync{GroupsClaim: "groups", MirrorGroups: true, Claims: map[string]string{}}
	c.URL = sub.required("url")
	if u, err := url.Parse(c.URL); c.URL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Fragment != "") {
		sub.fail("url", "must be an absolute http(s) URL such as http://users.internal/entra/sync")
	}
	c.Cluster = sub.required("cluster")
	if name := sub.required("secret_env"); name != "" {
		v, ok := p.getenv(name)
		if !ok || strings.TrimSpace(v) == "" {
			sub.fail("secret_env", "environment variable %s is not set in the VM (Envoy: vm_config.environment_variables; Istio: WasmPlugin vmConfig.env)", name)
		}
		c.Secret = strings.TrimSpace(v)
	}
	for field, claim := range SyncFields {
		c.Claims[field] = claim
	}
	if claims := block.Get("claims"); claims.Exists() {
		if !claims.IsObject() {
			sub.fail("claims", "must map fields to claim names, such as {\"username\": \"upn\"}")
		}
		claims.ForEach(func(k, v gjson.Result) bool {
			if _, ok := SyncFields[k.String()]; !ok {
				fields := slices.Sorted(maps.Keys(SyncFields))
				if near := nearest(k.String(), fields); near != "" {
					sub.fail("claims", "%q is not a field (did you mean %q?)", k.String(), near)
				} else {
					sub.fail("claims", "%q is not a field; the fields are %s", k.String(), strings.Join(fields, ", "))
				}
			} else if v.Type != gjson.String || v.String() == "" {
				sub.fail("claims", "%q must name a claim", k.String())
			} else {
				c.Claims[k.String()] = v.String()
			}
			return true
		})
	}
	if c.GroupsClaim = sub.string("groups_claim", "groups"); c.GroupsClaim == "" {
		sub.fail("groups_claim", "must name a claim, such as groups or roles")
	}
	if m := block.Get("mirror_groups"); m.Exists() {
		if m.Type != gjson.True && m.Type != gjson.False {
			sub.fail("mirror_groups", "must be true or false")
		}
		c.MirrorGroups = m.Bool()
	}
	if flags := block.Get("flags"); flags.Exists() {
		if !flags.IsObject() {
			sub.fail("flags", "must map flag names to {\"groups\": [...]} or {\"roles\": [...]}")
		}
		flags.ForEach(func(k, v gjson.Result) bool {
			f := UserFlag{Name: k.String()}
			fp := p.sub(v, "user_sync.flags."+f.Name+".")
			f.Groups, f.Roles = fp.strings("groups", false), fp.strings("roles", false)
			sub.problems = append(sub.problems, fp.problems...)
			if !v.IsObject() || len(f.Groups)+len(f.Roles) == 0 {
				sub.fail("flags", "flag %q needs a non-empty \"groups\" or \"roles\" list", f.Name)
			}
			c.Flags = append(c.Flags, f)
			return true
		})
		sort.Slice(c.Flags, func(i, j int) bool { return c.Flags[i].Name < c.Flags[j].Name })
	}
	timeout := block.Get("timeout_ms")
	c.Timeout = 3 * time.Second
	if timeout.Exists() {
		if timeout.Type != gjson.Number || timeout.Int() < 100 || timeout.Int() > 30000 {
			sub.fail("timeout_ms", "must be a number of milliseconds between 100 and 30000")
		} else {
			c.Timeout = time.Duration(timeout.Int()) * time.Millisecond
		}
	}
	switch sub.string("on_failure", "deny") {
	case "deny":
	case "allow":
		c.AllowOnFailure = true
	default:
		sub.fail("on_failure", "must be deny (no sign-in without the user directory) or allow")
	}
	p.problems = append(p.problems, sub.problems...)
	return c
}
