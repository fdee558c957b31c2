package flow

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/internal/entratest"
)

func TestClientAssertion(t *testing.T) {
	key := entratest.RSAKey(t, "client assertion")
	keyPEM, certPEM, der := entratest.Certificate(t, key)
	other := entratest.RSAKey(t, "another client")
	_, otherCert, _ := entratest.Certificate(t, other)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecPEM, ecCert, _ := entratest.Certificate(t, ecKey)
	env := map[string]string{"KEY": keyPEM, "CERT": certPEM, "OTHER_CERT": otherCert, "EC_KEY": ecPEM, "EC_CERT": ecCert,
		"FLAT_KEY": strings.ReplaceAll(keyPEM, "\n", `\n`), "NOT_PEM": "hello"}
	getenv := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfgFor := func(block string) (*config.Config, error) {
		return config.Parse([]byte(`{"tenant_id":"72f988bf-86f1-41af-91ab-2d7cd011db47","client_id":"11111111-2222-3333-4444-555555555555",
			"idp_cluster":"entra","cookie_secret":"`+secretA+`","client_assertion":`+block+`}`), getenv)
	}

	cfg, err := cfgFor(`{"private_key_env":"KEY","certificate_env":"CERT"}`)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	if cfg.ClientAuth != "private_key_jwt" || cfg.ClientAssertion.Thumbprint != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Fatalf("config %+v", cfg)
	}
	if _, err := cfgFor(`{"private_key_env":"FLAT_KEY","certificate_env":"CERT"}`); err != nil {
		t.Errorf("PEM with escaped newlines: %v", err)
	}
	for name, tc := range map[string]struct{ block, want string }{
		"no such variable": {`{"private_key_env":"NOPE","certificate_env":"CERT"}`, "NOPE is not set"},
		"not PEM":          {`{"private_key_env":"NOT_PEM","certificate_env":"CERT"}`, "does not hold PEM"},
		"another's cert":   {`{"private_key_env":"KEY","certificate_env":"OTHER_CERT"}`, "not the private key's"},
		"EC key":           {`{"private_key_env":"EC_KEY","certificate_env":"EC_CERT"}`, "give an RSA key"},
		"key as cert":      {`{"private_key_env":"KEY","certificate_env":"KEY"}`, "as PEM (-----BEGIN CERTIFICATE-----)"},
		"unknown key":      {`{"private_key_env":"KEY","certificate_env":"CERT","password":"x"}`, `"client_assertion.password": unknown key`},
	} {
		if _, err := cfgFor(tc.block); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
	both := `{"tenant_id":"72f988bf-86f1-41af-91ab-2d7cd011db47","client_id":"11111111-2222-3333-4444-555555555555","client_secret":"s",
		"idp_cluster":"entra","cookie_secret":"` + secretA + `","client_assertion":{"private_key_env":"KEY","certificate_env":"CERT"}}`
	if _, err := config.Parse([]byte(both), getenv); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("secret and assertion: %v", err)
	}

	// The token request carries a fresh assertion for the token endpoint, and no secret.
	f, err := New(cfg, rand.Reader, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	var jtis []string
	for range 2 {
		r := must(f.RefreshRequest(testDiscovery, refreshable(testNow)))(t)
		form, _ := url.ParseQuery(string(r.Body))
		if form.Get("client_secret") != "" || form.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
			t.Fatalf("form %v", form)
		}
		claims := jwt.MapClaims{}
		tok, err := jwt.ParseWithClaims(form.Get("client_assertion"), claims, func(*jwt.Token) (any, error) { return &key.PublicKey, nil },
			jwt.WithValidMethods([]string{"RS256"}), jwt.WithTimeFunc(func() time.Time { return testNow }))
		if err != nil {
			t.Fatal(err)
		}
		if tok.Header["x5t#S256"] != cfg.ClientAssertion.Thumbprint || claims["aud"] != testDiscovery.TokenEndpoint ||
			claims["iss"] != cfg.ClientID || claims["sub"] != cfg.ClientID || claims["exp"].(float64) != float64(testNow.Add(5*time.Minute).Unix()) {
			t.Errorf("assertion %v %v", tok.Header, claims)
		}
		jtis = append(jtis, claims["jti"].(string))
	}
	if jtis[0] == jtis[1] {
		t.Error("two assertions share a jti")
	}

	// An assertion that cannot be signed (here: no randomness for its jti) means no
	// token request at all, never one that goes out unauthenticated.
	broken, err := New(cfg, failingReader{}, func() time.Time { return testNow })
	if err != nil {
		t.Fatal(err)
	}
	r, err := broken.RefreshRequest(testDiscovery, refreshable(testNow))
	if r != nil || !errors.Is(err, ErrClientAssertion) {
		t.Errorf("without randomness: %v, %v; want no request and ErrClientAssertion", r, err)
	}
	if p := broken.Explain(err); p.Status != 502 {
		t.Errorf("explained as %d, want 502", p.Status)
	}
}

// failingReader is randomness that has run out.
type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
