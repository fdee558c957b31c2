package flow

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/jwks"
)

// UserSyncConfig is the user_sync block: after a sign-in's ID token is verified, and
// before the session is set, the user is POSTed to the application's user-sync endpoint,
// which creates or updates it (by tenant_id and object_id) and may answer a user_id.
type UserSyncConfig struct {
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

// syncFields are the fields a claim may fill, with their default claim.
var syncFields = map[string]string{
	"username": "preferred_username", "email": "email", "name": "name",
	"given_name": "given_name", "family_name": "family_name",
}

// parseUserSync reads the user_sync block, if any.
func (p *configParser) parseUserSync() *UserSyncConfig {
	block := p.root.Get("user_sync")
	if !block.Exists() {
		return nil
	}
	if !block.IsObject() {
		p.fail("user_sync", "must be an object with url, cluster and secret_env")
		return nil
	}
	sub := &configParser{root: block, prefix: "user_sync.", getenv: p.getenv}
	known := []string{"url", "cluster", "secret_env", "claims", "groups_claim", "mirror_groups", "flags", "timeout_ms", "on_failure"}
	block.ForEach(func(k, _ gjson.Result) bool {
		if !slices.Contains(known, k.String()) {
			sub.fail(k.String(), "unknown key; the keys are: %s", strings.Join(known, ", "))
		}
		return true
	})
	c := &UserSyncConfig{GroupsClaim: "groups", MirrorGroups: true, Claims: map[string]string{}}
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
	for field, claim := range syncFields {
		c.Claims[field] = claim
	}
	if claims := block.Get("claims"); claims.Exists() {
		if !claims.IsObject() {
			sub.fail("claims", "must map fields to claim names, such as {\"username\": \"upn\"}")
		}
		claims.ForEach(func(k, v gjson.Result) bool {
			if _, ok := syncFields[k.String()]; !ok {
				sub.fail("claims", "%q is not a field; the fields are username, email, name, given_name, family_name", k.String())
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
			fp := &configParser{root: v, prefix: "user_sync.flags." + f.Name + ".", getenv: p.getenv}
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

// SyncUser is what the user-sync call sends: the body of DESIGN.md's contract.
type SyncUser struct {
	TenantID     string
	ObjectID     string
	Subject      string
	Issuer       string
	Username     string
	Email        string
	Name         string
	GivenName    string
	FamilyName   string
	Groups       []string
	Roles        []string
	MirrorGroups bool
	Flags        map[string]bool
	// Claims are the verified ID token's claims, as the token carried them; Body appends
	// them to the other fields as they are.
	Claims []byte
}

// text reads a claim as text: strings as they are, numbers and booleans as their JSON
// text; lists, objects and null give "" (a field never receives a structure).
func text(r gjson.Result) string {
	switch r.Type {
	case gjson.String:
		return r.String()
	case gjson.Number, gjson.True, gjson.False:
		return r.Raw
	}
	return ""
}

// texts reads a claim that holds a string or a list: its strings.
func texts(r gjson.Result) []string {
	if r.Type == gjson.String {
		return []string{r.String()}
	}
	out := []string{}
	r.ForEach(func(_, v gjson.Result) bool {
		if v.Type == gjson.String {
			out = append(out, v.String())
		}
		return true
	})
	return out
}

// topLevel reads the named claims in one pass over the payload. Names are literal: a
// claim named "a.b" is that claim, not a path. Of repeated names, the first counts, as
// in the token's verification.
func topLevel(c *jwks.Claims, names ...string) map[string]gjson.Result {
	found := make(map[string]gjson.Result, len(names))
	gjson.ParseBytes(c.JSON()).ForEach(func(k, v gjson.Result) bool {
		name := k.String()
		if _, seen := found[name]; !seen && slices.Contains(names, name) {
			found[name] = v
		}
		return true
	})
	return found
}

// syncUser maps verified claims onto the user-sync body, without Graph groups (tests).
func (f *Flow) syncUser(c *jwks.Claims) *SyncUser { return f.SyncUserWithGroups(c, nil) }

// SyncUserWithGroups is SyncUser with the groups read from Microsoft Graph when the token
// left them out (nil: the token's).
func (f *Flow) SyncUserWithGroups(c *jwks.Claims, graphGroups []string) *SyncUser {
	cfg := f.cfg.UserSync
	claim := topLevel(c, "tid", "oid", "sub", "iss", "upn", "email", "roles", cfg.GroupsClaim,
		cfg.Claims["username"], cfg.Claims["email"], cfg.Claims["name"], cfg.Claims["given_name"], cfg.Claims["family_name"])
	u := &SyncUser{
		TenantID: text(claim["tid"]), ObjectID: text(claim["oid"]), Subject: text(claim["sub"]), Issuer: text(claim["iss"]),
		Username:   text(claim[cfg.Claims["username"]]),
		Email:      text(claim[cfg.Claims["email"]]),
		Name:       text(claim[cfg.Claims["name"]]),
		GivenName:  text(claim[cfg.Claims["given_name"]]),
		FamilyName: text(claim[cfg.Claims["family_name"]]),
		Groups:     texts(claim[cfg.GroupsClaim]),
		Roles:      texts(claim["roles"]),
		Flags:      map[string]bool{},
		Claims:     c.JSON(),
	}
	if graphGroups != nil {
		u.Groups = graphGroups
	}
	if u.Username == "" && cfg.Claims["username"] == syncFields["username"] {
		u.Username = firstNonEmpty(text(claim["upn"]), text(claim["email"]))
	}
	u.MirrorGroups = cfg.MirrorGroups
	for _, flag := range cfg.Flags {
		u.Flags[flag.Name] = overlaps(u.Groups, flag.Groups) || overlaps(u.Roles, flag.Roles)
	}
	return u
}

func firstNonEmpty(values ...string) string {
	for _, v := range values {
		if v != "" {
			return v
		}
	}
	return ""
}

func overlaps(have, want []string) bool {
	for _, w := range want {
		if slices.Contains(have, w) {
			return true
		}
	}
	return false
}

// fields is the body's object without "claims", its keys in DESIGN.md's order.
func (u *SyncUser) fields() *jsonObject {
	o := &jsonObject{}
	return o.str("tenant_id", u.TenantID).str("object_id", u.ObjectID).str("subject", u.Subject).str("issuer", u.Issuer).
		str("username", u.Username).str("email", u.Email).str("name", u.Name).
		str("given_name", u.GivenName).str("family_name", u.FamilyName).
		strs("groups", u.Groups).strs("roles", u.Roles).bool("mirror_groups", u.MirrorGroups).bools("flags", u.Flags)
}

// Fingerprint summarises what the call sends about the user (everything but the raw
// claims, whose iat and exp change on every token), so that a later sign-in or token
// refresh can tell whether the application needs to hear about the user again.
func (u *SyncUser) Fingerprint() string {
	sum := sha256.Sum256(u.fields().bytes())
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// Body is the JSON the call sends: the fields, then "claims". The claims were checked as
// JSON when the token was verified, so they are appended as they are, not re-encoded.
func (u *SyncUser) Body() []byte {
	claims := u.Claims
	if len(claims) == 0 {
		claims = []byte("null")
	}
	return u.fields().raw("claims", claims).bytes()
}

// UserSyncRequest is the POST of u to the user-sync endpoint, with the bearer secret.
func (f *Flow) UserSyncRequest(u *SyncUser) (*HTTPRequest, error) {
	cfg := f.cfg.UserSync
	r, err := requestTo("POST", cfg.URL)
	if err != nil {
		return nil, err
	}
	body := u.Body()
	r.Body = body
	r.Headers = append(r.Headers,
		[2]string{"content-type", "application/json"},
		[2]string{"authorization", "Bearer " + cfg.Secret},
		[2]string{"content-length", strconv.Itoa(len(body))})
	return r, nil
}

// UserSyncRetryable reports whether an answer deserves the one retry: no answer, or a
// 502, 503 or 504 (never a 4xx: the application decided).
func UserSyncRetryable(status int) bool {
	return status == 0 || status == 502 || status == 503 || status == 504
}

// MaxUserIDLength bounds the user id an endpoint may answer: it travels in the session
// cookie and in a header on every request.
const MaxUserIDLength = 256

// ParseUserSyncResponse reads the endpoint's answer: a 2xx with an optional JSON
// {"user_id": ...} (a string or a number), ErrUserRefused for a 4xx, and
// ErrUserSyncUnavailable otherwise, or for a user id over MaxUserIDLength bytes.
func ParseUserSyncResponse(status int, body []byte) (userID string, err error) {
	switch {
	case status >= 200 && status < 300:
		if len(body) == 0 || len(body) > maxIdPBody || !gjson.ValidBytes(body) {
			return "", nil
		}
		id := gjson.GetBytes(body, "user_id")
		switch id.Type {
		case gjson.String:
			userID = id.String()
		case gjson.Number:
			userID = id.Raw
		}
		if len(userID) > MaxUserIDLength {
			return "", fmt.Errorf("%w: the endpoint answered a user_id of %d bytes; keep it under %d (it is sent on every request)",
				ErrUserSyncUnavailable, len(userID), MaxUserIDLength)
		}
		return userID, nil
	case status == 401:
		return "", fmt.Errorf("%w: the variable named by user_sync.secret_env must hold the secret the endpoint expects", ErrUserSyncSecret)
	case status >= 400 && status < 500:
		return "", fmt.Errorf("%w: the endpoint answered %d: %s", ErrUserRefused, status, snippet(body))
	case status == 0:
		return "", fmt.Errorf("%w: no answer", ErrUserSyncUnavailable)
	}
	return "", fmt.Errorf("%w: the endpoint answered %d: %s", ErrUserSyncUnavailable, status, snippet(body))
}
