package main

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDemoPage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		headers   map[string]string
		want, not []string
	}{
		{"nobody signed in", nil,
			[]string{"Nobody is signed in.", `<a href="/.auth/login?rd=%2F">Sign in</a>`},
			[]string{"Sign out", "/.auth/me"}},
		{"signed in", map[string]string{"X-Auth-Request-Name": "Ada Lovelace", "X-Auth-Request-User": "ada@contoso.example", "X-Auth-Request-User-Id": "42"},
			[]string{"Signed in as <b>Ada Lovelace</b>", `<a href="/.auth/logout">Sign out</a>`, "user id <b>42</b>", `<tr class="id"><td>x-auth-request-name</td>`},
			[]string{">Sign in<"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			serve(w, r)
			body := w.Body.String()
			// A favicon of its own (no request for /favicon.ico), and header names on one line.
			for _, want := range append(tc.want, `<link rel="icon" href="data:image/svg+xml,`, "td:first-child{white-space:nowrap}") {
				if !strings.Contains(body, want) {
					t.Errorf("the page lacks %q", want)
				}
			}
			for _, not := range tc.not {
				if strings.Contains(body, not) {
					t.Errorf("the page has %q", not)
				}
			}
		})
	}
}

// The demo's step-up pages: /admin/ says which context let the user in (the filter's rule
// asks for it); /reports/ asks for context c2 itself with a claims challenge until the
// sign-in has it.
func TestDemoStepUpPages(t *testing.T) {
	for _, tc := range []struct {
		path, acrs string
		status     int
		want       string
	}{
		{"/admin/", "c1", 200, "this one did (c1)"},
		{"/reports/", "", 401, ""},
		{"/reports/", "c1", 401, ""},
		{"/reports/", "c1,c2", 200, "Signed in as"},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		r.Header.Set("X-Auth-Request-Name", "Ada")
		if tc.acrs != "" {
			r.Header.Set("X-Auth-Request-Acrs", tc.acrs)
		}
		w := httptest.NewRecorder()
		serve(w, r)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.want) {
			t.Errorf("%s with %q: %d %.200s", tc.path, tc.acrs, w.Code, w.Body.String())
		}
		if tc.status == 401 && !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="insufficient_claims", claims="`+reportsClaims+`"`) {
			t.Errorf("%s: challenge %q", tc.path, w.Header().Get("WWW-Authenticate"))
		}
	}
}
