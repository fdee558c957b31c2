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
