package flow

import (
	"reflect"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/session"
)

// How the user signed in comes from the ID token's acrs, amr and auth_time, strictly:
// these go upstream in headers, and a context id decides access to a path.
func TestSessionKnowsHowTheUserSignedIn(t *testing.T) {
	f, _ := newFlow(t, "")
	base := `"iss":"i","sub":"s","oid":"o","tid":"t"`
	for _, tc := range []struct {
		name     string
		claims   string
		acrs     []string
		amr      []string
		authTime int64
	}{
		{"Entra's claims", `"acrs":["c1","c12"],"amr":["pwd","mfa"],"auth_time":1800000000`, []string{"c1", "c12"}, []string{"pwd", "mfa"}, 1800000000},
		{"none", ``, nil, nil, 0},
		{"acrs as one string is not Entra's", `"acrs":"c1"`, nil, nil, 0},
		{"ids out of range or malformed", `"acrs":["c0","c100","c01","x1","c","c5,c6","c5","c5",7]`, []string{"c5"}, nil, 0},
		{"amr with a header-breaking value", `"amr":["pwd","m f a","a,b","x\r\ny"]`, nil, []string{"pwd"}, 0},
		{"auth_time as a string", `"auth_time":"1800000000"`, nil, nil, 0},
		{"auth_time negative", `"auth_time":-5`, nil, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claims := "{" + base
			if tc.claims != "" {
				claims += "," + tc.claims
			}
			s, err := f.NewSession(claimsOf(t, claims+"}"), nil, "n")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.ACRs, tc.acrs) || !reflect.DeepEqual(s.AMR, tc.amr) {
				t.Errorf("acrs %q amr %q, want %q %q", s.ACRs, s.AMR, tc.acrs, tc.amr)
			}
			if want := tc.authTime; (want == 0) != s.AuthTime.IsZero() || (want != 0 && s.AuthTime.Unix() != want) {
				t.Errorf("auth_time %v, want %d", s.AuthTime, want)
			}
		})
	}
}

// A refresh re-reads the contexts (a token that no longer lists one loses it) and keeps
// the sign-in's methods and time when the refreshed token leaves them out.
func TestRefreshReReadsTheContexts(t *testing.T) {
	f, _ := newFlow(t, "")
	signedIn := time.Unix(1_799_990_000, 0)
	old := &session.Session{Issuer: "i", Subject: "s", ObjectID: "o", TenantID: "t", Expires: testNow.Add(time.Hour),
		ACRs: []string{"c1"}, AMR: []string{"pwd", "mfa"}, AuthTime: signedIn}
	renewed, err := f.Refreshed(old, &Tokens{AccessToken: "at"}, claimsOf(t, `{"iss":"i","sub":"s","oid":"o","tid":"t"}`))
	if err != nil {
		t.Fatal(err)
	}
	if renewed.ACRs != nil || !reflect.DeepEqual(renewed.AMR, old.AMR) || !renewed.AuthTime.Equal(signedIn) {
		t.Errorf("renewed %q %q %v; want no contexts, the methods and time kept", renewed.ACRs, renewed.AMR, renewed.AuthTime)
	}
	renewed, _ = f.Refreshed(old, &Tokens{AccessToken: "at"}, claimsOf(t, `{"iss":"i","sub":"s","oid":"o","tid":"t","acrs":["c1","c2"],"auth_time":1800000000}`))
	if !reflect.DeepEqual(renewed.ACRs, []string{"c1", "c2"}) || renewed.AuthTime.Unix() != 1800000000 {
		t.Errorf("renewed %q %v", renewed.ACRs, renewed.AuthTime)
	}
	if !reflect.DeepEqual(old.ACRs, []string{"c1"}) {
		t.Error("the old session changed")
	}
}

func TestIdentityHeadersSayHowTheUserSignedIn(t *testing.T) {
	s := &session.Session{Username: "ada", ACRs: []string{"c1", "c7"}, AuthTime: time.Unix(1800000000, 0)}
	h := identityHeaders(s)
	got := map[string]string{}
	for _, kv := range h {
		got[kv[0]] = kv[1]
	}
	if got[HeaderACRs] != "c1,c7" || got[HeaderAuthTime] != "1800000000" {
		t.Errorf("headers %v", h)
	}
	if h := identityHeaders(&session.Session{Username: "ada"}); len(h) != 1 {
		t.Errorf("a session without them: %v", h)
	}
}
