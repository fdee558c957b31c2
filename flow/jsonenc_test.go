package flow

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/internal/entratest"
	"github.com/entra-auth/entra-auth/session"
)

var jsonStringSeeds = []string{
	"", "plain", `quote " and \ backslash`, "\b\f\n\r\t\x00\x01\x1f\x7f", "<script>&amp;</script>",
	"ünïcödé ✓ 𝄞", "\u2028\u2029", "bad \xff utf-8 \xc3", "\xed\xa0\x80 surrogate", "O'Brien / \"Bob\"",
}

func TestAppendJSONStringIsEncodingJSONs(t *testing.T) {
	for _, s := range jsonStringSeeds {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonStringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestJSONObjectIsWhatEncodingJSONWrites(t *testing.T) {
	type row struct {
		A string          `json:"a"`
		B []string        `json:"b"`
		C []string        `json:"c"`
		D map[string]bool `json:"d"`
		E map[string]bool `json:"e"`
		F int64           `json:"f"`
		G bool            `json:"g"`
		H json.RawMessage `json:"h"`
	}
	v := row{"x<y", nil, []string{"1", "é\n"}, nil, map[string]bool{"z": true, "a": false, "m": true}, -42, true, json.RawMessage(`{"k":[1,2]}`)}
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	o := jsonObject{}
	got := o.str("a", v.A).strs("b", v.B).strs("c", v.C).bools("d", v.D).bools("e", v.E).int("f", v.F).bool("g", v.G).raw("h", v.H).bytes()
	if !bytes.Equal(got, want) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if got := (&jsonObject{}).bytes(); string(got) != "{}" {
		t.Errorf("empty object: %s", got)
	}
}

// The four objects the filter writes by appending are, byte for byte, what encoding/json
// and golang-jwt wrote before: no application, token endpoint or stored fingerprint sees
// a difference (a fingerprint that changed would re-sync every user once).
func TestAppendedObjectsAreThoseEncodingJSONWrote(t *testing.T) {
	s := &session.Session{Subject: "s<ub>", ObjectID: "oid", TenantID: "tid", Issuer: "https://iss/&",
		Username: "ada@contoso.example", Email: "ada\u2028@x", Name: "Ada \"L\" \xff", Groups: []string{"g1", "g2"},
		UserID: "42", IssuedAt: testNow, Expires: testNow.Add(time.Hour),
		ACRs: []string{"c1", "c7"}, AMR: []string{"pwd", "mfa"}, AuthTime: testNow.Add(-time.Minute)}
	for _, groups := range [][]string{s.Groups, nil} {
		s.Groups = groups
		me := map[string]any{
			"sub": s.Subject, "oid": s.ObjectID, "tid": s.TenantID, "iss": s.Issuer,
			"preferred_username": s.Username, "email": s.Email, "name": s.Name,
			"groups": nonNil(s.Groups), "roles": nonNil(s.Roles), "user_id": s.UserID,
			"signed_in_at": s.IssuedAt.Unix(), "expires_at": s.Expires.Unix(),
			"acrs": nonNil(s.ACRs), "amr": nonNil(s.AMR), "auth_time": s.AuthTime.Unix(),
		}
		if groups == nil { // a session from before acrs, amr and auth_time were kept
			s.ACRs, s.AMR, s.AuthTime = nil, nil, time.Time{}
			me["acrs"], me["amr"] = []string{}, []string{}
			delete(me, "auth_time")
		}
		old, _ := json.Marshal(me)
		if got := Me(s).Body; !bytes.Equal(got, old) {
			t.Errorf("/.auth/me:\ngot  %s\nwant %s", got, old)
		}
	}

	old, _ := json.Marshal(map[string]string{"error": "e<", "message": "m\n", "request_id": "r&"})
	if got := ErrorResponse(&Request{}, 400, "e<", "m\n", "r&").Body; !bytes.Equal(got, old) {
		t.Errorf("JSON error:\ngot  %s\nwant %s", got, old)
	}

	type taggedSyncUser struct { // SyncUser as it was, with encoding/json's tags
		TenantID     string          `json:"tenant_id"`
		ObjectID     string          `json:"object_id"`
		Subject      string          `json:"subject"`
		Issuer       string          `json:"issuer"`
		Username     string          `json:"username"`
		Email        string          `json:"email"`
		Name         string          `json:"name"`
		GivenName    string          `json:"given_name"`
		FamilyName   string          `json:"family_name"`
		Groups       []string        `json:"groups"`
		Roles        []string        `json:"roles"`
		MirrorGroups bool            `json:"mirror_groups"`
		Flags        map[string]bool `json:"flags"`
	}
	u := &SyncUser{TenantID: "t", ObjectID: "o", Subject: "s", Issuer: "i", Username: "u<", Email: "e", Name: "n\t",
		GivenName: "g", FamilyName: "f", Groups: []string{}, Roles: []string{"Admin"}, MirrorGroups: true,
		Flags: map[string]bool{"is_superuser": true, "is_staff": false}, Claims: []byte(`{"oid":"o","n":[1]}`)}
	fields, _ := json.Marshal(taggedSyncUser{u.TenantID, u.ObjectID, u.Subject, u.Issuer, u.Username, u.Email, u.Name,
		u.GivenName, u.FamilyName, u.Groups, u.Roles, u.MirrorGroups, u.Flags})
	oldSum := sha256.Sum256(fields)
	if got, want := u.Fingerprint(), base64.RawURLEncoding.EncodeToString(oldSum[:16]); got != want {
		t.Errorf("fingerprint %s, was %s", got, want)
	}
	oldBody := append(append(fields[:len(fields)-1:len(fields)-1], `,"claims":`...), append(u.Claims, '}')...)
	if got := u.Body(); !bytes.Equal(got, oldBody) {
		t.Errorf("user-sync body:\ngot  %s\nwant %s", got, oldBody)
	}
}

func TestClientAssertionIsWhatGolangJWTSigned(t *testing.T) {
	key := entratest.RSAKey(t, "client assertion")
	keyPEM, certPEM, _ := entratest.Certificate(t, key)
	env := map[string]string{"KEY": keyPEM, "CERT": certPEM}
	cfg, err := config.Parse([]byte(`{"tenant_id":"72f988bf-86f1-41af-91ab-2d7cd011db47","client_id":"11111111-2222-3333-4444-555555555555",
		"idp_cluster":"entra","cookie_secret":"`+secretA+`","client_assertion":{"private_key_env":"KEY","certificate_env":"CERT"}}`),
		func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	f, err := New(cfg, rand.Reader, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "https://login.example/t/oauth2/v2.0/token?x=<&y>"
	got, err := f.signClientAssertion(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	claims := jwt.MapClaims{}
	if _, _, err := jwt.NewParser().ParseUnverified(got, claims); err != nil {
		t.Fatal(err)
	}
	// RS256 (PKCS #1 v1.5) is deterministic: the same header and claims give the same token.
	old := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"aud": endpoint, "iss": cfg.ClientID, "sub": cfg.ClientID, "jti": claims["jti"],
		"nbf": testNow.Unix(), "iat": testNow.Unix(), "exp": testNow.Add(clientAssertionLifetime).Unix(),
	})
	old.Header["x5t#S256"] = cfg.ClientAssertion.Thumbprint
	want, err := old.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("assertion\ngot  %s\nwant %s", got, want)
	}
}
