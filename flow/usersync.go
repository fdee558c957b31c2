package flow

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/jwks"
)

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
	if u.Username == "" && cfg.Claims["username"] == config.SyncFields["username"] {
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

// maxUserIDLength bounds the user id an endpoint may answer: it travels in the session
// cookie and in a header on every request.
const maxUserIDLength = 256

// ParseUserSyncResponse reads the endpoint's answer: a 2xx with an optional JSON
// {"user_id": ...} (a string or a number), ErrUserRefused for a 4xx, and
// ErrUserSyncUnavailable otherwise, or for a user id over 256 bytes (maxUserIDLength).
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
		if len(userID) > maxUserIDLength {
			return "", fmt.Errorf("%w: the endpoint answered a user_id of %d bytes; keep it under %d (it is sent on every request)",
				ErrUserSyncUnavailable, len(userID), maxUserIDLength)
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
