package flow

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/upstreamsig"
)

// With upstream_signature, what the filter lets through carries a signature the
// application verifies with the same secret, over the request as judged (its normalized
// path) and the headers set; without it, nothing is added.
func TestSignedHeadersVerifyInTheApplication(t *testing.T) {
	secret := strings.Repeat("k", 40)
	env := func(name string) (string, bool) { return secret, name == "UPSTREAM_SECRET" }
	cfg, err := config.Parse([]byte(strings.TrimSuffix(minimal, "}")+`,"upstream_signature":{"secret_env":"UPSTREAM_SECRET"}}`), env)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1764400000, 0)
	f, err := New(cfg, nil, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	r := NewRequest([][2]string{{":method", "GET"}, {":authority", "app.contoso.example"}, {":path", "/reports?y=1"}})
	identity := [][2]string{{"x-auth-request-user", "ada@contoso.example"}, {"X-Forwarded-Access-Token", "tok"}}
	out := f.Signed(r, identity)
	if len(out) != 3 || out[2][0] != upstreamsig.Header {
		t.Fatalf("signed headers %v: want the identity and the signature", out)
	}
	if identity[1][0] != "X-Forwarded-Access-Token" {
		t.Fatal("Signed changed its argument")
	}
	h := http.Header{}
	for _, p := range out {
		h.Add(p[0], p[1])
	}
	req := upstreamsig.Request{Method: "GET", Authority: "app.contoso.example", Path: "/reports?y=1"}
	if err := upstreamsig.Verify(h, req, [][]byte{[]byte(secret)}, now, 30*time.Second); err != nil {
		t.Fatalf("the application refuses what the filter signed: %v (%s)", err, h.Get(upstreamsig.Header))
	}

	plain, err := config.Parse([]byte(minimal), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	g, _ := New(plain, nil, func() time.Time { return now })
	if out := g.Signed(r, identity); len(out) != 2 {
		t.Fatalf("without upstream_signature: %v, want the identity alone", out)
	}
}
