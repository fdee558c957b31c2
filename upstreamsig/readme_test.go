package upstreamsig

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

// The README documents the message byte for byte, for applications in other languages;
// it must stay what Message writes.
func TestREADMEShowsTheMessage(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	want := string(Message(1764400000, Request{Method: "GET", Authority: "a.example", Path: "/p?q=1"},
		[][2]string{{"x-auth-request-user", "ada@contoso.example"}}))
	if !strings.Contains(string(readme), "```\n"+want+"```\n") {
		t.Fatalf("README.md does not show the message as Message writes it:\n%s", want)
	}
}

// The README's Go example, as an application would write it.
func signedByTheFilter(r *http.Request, secrets [][]byte) error {
	// r.RequestURI is the path and query as they arrived, not re-encoded.
	return Verify(r.Header, Request{Method: r.Method, Authority: r.Host, Path: r.RequestURI},
		secrets, time.Now(), 30*time.Second)
}

func TestREADMEExampleVerifies(t *testing.T) {
	r := httptest.NewRequest("GET", "https://app.contoso.example/reports?year=2026", nil) // as a server gets it
	r.RequestURI = "/reports?year=2026"                                                   // origin-form, as Envoy sends it
	r.Header.Set("X-Auth-Request-User", "ada@contoso.example")
	r.Header.Set(Header, Sign(secret, time.Now(), Request{Method: "GET", Authority: "app.contoso.example", Path: "/reports?year=2026"},
		[][2]string{{"x-auth-request-user", "ada@contoso.example"}}))
	if err := signedByTheFilter(r, [][]byte{secret}); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "return upstreamsig.Verify(r.Header, upstreamsig.Request{Method: r.Method, Authority: r.Host, Path: r.RequestURI},\n\t\tsecrets, time.Now(), 30*time.Second)") {
		t.Fatal("README.md's Go example is no longer the one tested here")
	}
}
