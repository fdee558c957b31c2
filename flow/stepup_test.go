package flow

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/session"
)

const stepUpRules = `,"rules":[
	{"path":"/admin/*","auth_context":"c1"},
	{"path":"/pay","auth_context":["c2","c3"],"roles":["Admin"]},
	{"path":"/profile","max_auth_age":"10m"}]`

// Authorize says what a path's rule asks of how the user signed in and the sign-in lacks.
func TestStepUpFor(t *testing.T) {
	f, clk := newFlow(t, stepUpRules)
	now := clk.t
	for _, tc := range []struct {
		name     string
		path     string
		acrs     []string
		authTime time.Time
		contexts []string
		maxAge   time.Duration
	}{
		{"no rule", "/", nil, time.Time{}, nil, 0},
		{"context missing", "/admin/users", nil, now, []string{"c1"}, 0},
		{"context there", "/admin/users", []string{"c1"}, now, nil, 0},
		{"another context does not do", "/admin/users", []string{"c2"}, now, []string{"c1"}, 0},
		{"one of several", "/pay", []string{"c3"}, now, nil, 0},
		{"none of several", "/pay", []string{"c1"}, now, []string{"c2", "c3"}, 0},
		{"recent enough", "/profile", nil, now.Add(-9 * time.Minute), nil, 0},
		{"within the clock skew", "/profile", nil, now.Add(-11 * time.Minute), nil, 0},
		{"too old", "/profile", nil, now.Add(-13 * time.Minute), nil, 10 * time.Minute},
		{"no auth_time", "/profile", nil, time.Time{}, nil, 10 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &session.Session{ACRs: tc.acrs, AuthTime: tc.authTime, Roles: []string{"Admin"}} // /pay asks the role too
			denied, su := f.Authorize(&Request{Method: "GET", Path: tc.path}, s, nil, false)
			if denied != nil || (su == nil) != (tc.contexts == nil && tc.maxAge == 0) {
				t.Fatalf("Authorize = %+v, %+v", denied, su)
			}
			if su != nil && (strings.Join(su.Contexts, ",") != strings.Join(tc.contexts, ",") || su.MaxAge != tc.maxAge) {
				t.Errorf("step-up %+v, want %v %v", su, tc.contexts, tc.maxAge)
			}
		})
	}
}

func TestClaimsRequest(t *testing.T) {
	for _, tc := range []struct {
		contexts []string
		want     string
	}{
		{[]string{"c1"}, `{"id_token":{"acrs":{"essential":true,"value":"c1"}}}`},
		{[]string{"c2", "c3"}, `{"id_token":{"acrs":{"essential":true,"values":["c2","c3"]}}}`},
	} {
		got := (&StepUp{Contexts: tc.contexts}).ClaimsRequest()
		if got != tc.want || !json.Valid([]byte(got)) {
			t.Errorf("ClaimsRequest(%v) = %s", tc.contexts, got)
		}
	}
}

// A browser steps up: the authorize request asks for the context (and, for a recent
// sign-in, max_age with prompt=login), and the sign-in cookie remembers what was asked,
// which the callback then checks against the new session.
func TestStepUpSignIn(t *testing.T) {
	f, clk := newFlow(t, stepUpRules)
	for _, tc := range []struct {
		name        string
		su          StepUp
		wantClaims  string
		wantMaxAge  string
		satisfying  session.Session
		unsatisfied session.Session
	}{
		{"context", StepUp{Contexts: []string{"c1"}}, `{"id_token":{"acrs":{"essential":true,"value":"c1"}}}`, "",
			session.Session{ACRs: []string{"c1"}}, session.Session{ACRs: []string{"c2"}}},
		{"recent sign-in", StepUp{MaxAge: 10 * time.Minute}, "", "600",
			session.Session{AuthTime: clk.t}, session.Session{AuthTime: clk.t.Add(-time.Hour)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBrowser()
			resp, err := f.StartStepUp(b.request("/admin/users"), testDiscovery, "/admin/users", &tc.su)
			if err != nil {
				t.Fatal(err)
			}
			q := mustQuery(t, header(resp, "location"))
			if q.Get("claims") != tc.wantClaims || q.Get("max_age") != tc.wantMaxAge || (tc.wantMaxAge != "") != (q.Get("prompt") == "login") {
				t.Errorf("authorize query %v", q)
			}
			b.take(t, resp)
			cb, err := f.BeginCallback(b.request("/.auth/callback?code=c&state=" + q.Get("state")))
			if err != nil {
				t.Fatal(err)
			}
			if err := f.CheckStepUp(cb, &tc.satisfying); err != nil {
				t.Errorf("a satisfying sign-in: %v", err)
			}
			err = f.CheckStepUp(cb, &tc.unsatisfied)
			if !errors.Is(err, ErrStepUpUnsatisfied) {
				t.Fatalf("an unsatisfying sign-in: %v", err)
			}
			if p := f.Explain(err); p.Status != 403 || p.Code != "step_up_unsatisfied" || !strings.Contains(p.Message, tc.su.describe()) {
				t.Errorf("explained as %+v", p)
			}
		})
	}
	// An ordinary sign-in asks for nothing more, and its callback checks nothing more.
	b := newBrowser()
	resp, _ := f.StartSignIn(b.request("/"), testDiscovery, "/")
	if q := mustQuery(t, header(resp, "location")); q.Has("claims") || q.Has("max_age") || q.Has("prompt") {
		t.Errorf("an ordinary sign-in asks %v", q)
	}
}

// Programs get a challenge they can act on: Entra's insufficient_claims with the claims
// request in base64, or RFC 9470's insufficient_user_authentication with max_age.
func TestStepUpChallenge(t *testing.T) {
	f, _ := newFlow(t, "")
	r := &Request{Authority: "app.contoso.com"}
	resp := f.StepUpChallenge(r, &StepUp{Contexts: []string{"c1"}}, "req-1")
	challenge := header(resp, "www-authenticate")
	claims := challenge[strings.Index(challenge, `claims="`)+8 : len(challenge)-1]
	decoded, err := base64.StdEncoding.DecodeString(claims)
	if resp.Status != 401 || !strings.HasPrefix(challenge, `Bearer realm="app.contoso.com", error="insufficient_claims"`) ||
		err != nil || string(decoded) != `{"id_token":{"acrs":{"essential":true,"value":"c1"}}}` {
		t.Errorf("%d %s (claims %q)", resp.Status, challenge, decoded)
	}
	resp = f.StepUpChallenge(r, &StepUp{MaxAge: 5 * time.Minute}, "req-1")
	if challenge := header(resp, "www-authenticate"); resp.Status != 401 ||
		!strings.Contains(challenge, `error="insufficient_user_authentication"`) || !strings.HasSuffix(challenge, "max_age=300") {
		t.Errorf("%d %s", resp.Status, challenge)
	}
}

// /.auth/login passes on login_hint, domain_hint and prompt=select_account, each checked.
func TestStartLoginHints(t *testing.T) {
	f, _ := newFlow(t, "")
	for _, tc := range []struct {
		query string
		want  map[string]string // the authorize request's, when accepted
	}{
		{"rd=%2Freports&login_hint=ada%40contoso.com&domain_hint=contoso.com&prompt=select_account",
			map[string]string{"login_hint": "ada@contoso.com", "domain_hint": "contoso.com", "prompt": "select_account"}},
		{"domain_hint=organizations", map[string]string{"domain_hint": "organizations", "login_hint": "", "prompt": ""}},
		{"", map[string]string{"login_hint": "", "domain_hint": "", "prompt": ""}},
		{"prompt=none", nil},
		{"prompt=login", nil},
		{"domain_hint=contoso", nil},
		{"domain_hint=evil.example%2Fpath", nil},
		{"login_hint=ada%0d%0aSet-Cookie:x", nil},
		{"login_hint=" + strings.Repeat("a", 300), nil},
		{"rd=%2Fa&rd=%2Fb", nil},
		{"login_hint=a&login_hint=b", nil},
	} {
		r := &Request{Method: "GET", Scheme: "https", Authority: "app.contoso.com", Path: "/.auth/login?" + tc.query, Accept: "text/html", Cookies: jarOf(nil)}
		resp, err := f.StartLogin(r, testDiscovery)
		if tc.want == nil {
			if !errors.Is(err, ErrLoginParameter) {
				t.Errorf("%s: %v, want ErrLoginParameter", tc.query, err)
			} else if p := f.Explain(err); p.Status != 400 {
				t.Errorf("%s: explained as %+v", tc.query, p)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", tc.query, err)
		}
		q := mustQuery(t, header(resp, "location"))
		for name, want := range tc.want {
			if q.Get(name) != want {
				t.Errorf("%s: %s = %q, want %q", tc.query, name, q.Get(name), want)
			}
		}
	}
}

func TestClaimsChallenge(t *testing.T) {
	cae := `{"access_token":{"nbf":{"essential":true,"value":"1702682181"}}}`
	acrs := `{"id_token":{"acrs":{"essential":true,"value":"c2"}}}`
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name    string
		status  int
		headers []string
		want    string
		wantErr bool
	}{
		{"Entra's form", 401, []string{`Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", error="insufficient_claims", claims="` + b64(cae) + `"`}, cae, false},
		{"a context, unpadded base64url", 401, []string{`Bearer error="insufficient_claims", claims="` + base64.RawURLEncoding.EncodeToString([]byte(acrs)) + `"`}, acrs, false},
		{"among several challenges", 401, []string{`Basic realm="x"`, `Bearer error=insufficient_claims, claims="` + b64(acrs) + `"`}, acrs, false},
		{"not a 401", 403, []string{`Bearer error="insufficient_claims", claims="` + b64(acrs) + `"`}, "", false},
		{"another error", 401, []string{`Bearer error="invalid_token"`}, "", false},
		{"no challenge", 401, nil, "", false},
		{"no claims", 401, []string{`Bearer error="insufficient_claims"`}, "", true},
		{"not base64", 401, []string{`Bearer error="insufficient_claims", claims="%%%"`}, "", true},
		{"not JSON", 401, []string{`Bearer error="insufficient_claims", claims="` + b64("nope") + `"`}, "", true},
		{"not an object", 401, []string{`Bearer error="insufficient_claims", claims="` + b64(`["id_token"]`) + `"`}, "", true},
		{"another member", 401, []string{`Bearer error="insufficient_claims", claims="` + b64(`{"redirect_uri":{}}`) + `"`}, "", true},
		{"too long", 401, []string{`Bearer error="insufficient_claims", claims="` + b64(`{"id_token":{"x":"`+strings.Repeat("a", 3000)+`"}}`) + `"`}, "", true},
	} {
		got, err := ClaimsChallenge(tc.status, tc.headers)
		if got != tc.want || (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, ErrClaimsRequest)) {
			t.Errorf("%s: %q, %v", tc.name, got, err)
		}
	}
}

// An application's claims challenge is followed for a browser's GET with a session, once
// per page within the window; the sign-in carries its claims and records the round.
func TestFollowsClaimsChallenge(t *testing.T) {
	off, _ := newFlow(t, "")
	f, clk := newFlow(t, `,"follow_claims_challenges":true`)
	page := &Request{Method: "GET", Path: "/reports?q=1", Accept: "text/html"}
	s := &session.Session{}
	if off.FollowsClaimsChallenge(page, s) {
		t.Error("followed without follow_claims_challenges")
	}
	if !f.FollowsClaimsChallenge(page, s) || f.FollowsClaimsChallenge(page, nil) ||
		f.FollowsClaimsChallenge(&Request{Method: "POST", Path: "/reports", Accept: "text/html"}, s) ||
		f.FollowsClaimsChallenge(&Request{Method: "GET", Path: "/reports", Accept: "application/json"}, s) {
		t.Error("followed what it should not, or not what it should")
	}
	b := newBrowser()
	r := b.request("/reports?q=1")
	resp, err := f.StartClaimsChallenge(r, testDiscovery, `{"id_token":{"acrs":{"essential":true,"value":"c2"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	q := mustQuery(t, header(resp, "location"))
	if q.Get("claims") != `{"id_token":{"acrs":{"essential":true,"value":"c2"}}}` {
		t.Errorf("authorize query %v", q)
	}
	b.take(t, resp)
	cb, err := f.BeginCallback(b.request("/.auth/callback?code=c&state=" + q.Get("state")))
	if err != nil {
		t.Fatal(err)
	}
	renewed := &session.Session{}
	f.ChallengeRound(cb, renewed)
	if renewed.ChallengePage != pageKey("/reports?q=1") || len(renewed.ChallengePage) != 16 || !renewed.ChallengeAt.Equal(clk.t) {
		t.Fatalf("round %q at %v", renewed.ChallengePage, renewed.ChallengeAt)
	}
	if f.FollowsClaimsChallenge(page, renewed) {
		t.Error("a second challenge for the page within the window was followed")
	}
	if !f.FollowsClaimsChallenge(&Request{Method: "GET", Path: "/other", Accept: "text/html"}, renewed) {
		t.Error("a challenge for another page was not followed")
	}
	clk.t = clk.t.Add(claimsRoundWindow)
	if !f.FollowsClaimsChallenge(page, renewed) {
		t.Error("a challenge after the window was not followed")
	}
}
