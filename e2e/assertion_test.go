package e2e

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
	"github.com/entra-auth/entra-auth/internal/entratest"
)

// clientCertificate is the test binary's RSA key called name and a self-signed
// certificate for it: PEM for the filter, DER for the mock's app registration.
func clientCertificate(t testing.TB, name string) (keyPEM, certPEM string, der []byte) {
	t.Helper()
	key := entratest.RSAKey(t, name)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "entra-auth client"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), der
}

func TestClientAssertionInsteadOfASecret(t *testing.T) {
	keyPEM, certPEM, der := clientCertificate(t, "client assertion")
	otherKey, otherCert, _ := clientCertificate(t, "another client")
	for _, tc := range []struct {
		name      string
		key, cert string
		want      int
	}{
		{"registered certificate", keyPEM, certPEM, 302},
		{"unregistered certificate", otherKey, otherCert, 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := mockentra.DemoOptions()
			opts.Clients[0].Secret, opts.Clients[0].Certificate = "", der // no secret would do
			opts.TokenLifetime = 3 * time.Second
			s := newStack(t, stackOptions{
				mock:        &opts,
				concurrency: 1,
				config: map[string]any{"client_secret_env": nil, "refresh_before": "3s",
					"client_assertion": map[string]any{"private_key_env": "ENTRA_CLIENT_KEY", "certificate_env": "ENTRA_CLIENT_CERT"}},
				env: map[string]string{"ENTRA_CLIENT_KEY": tc.key, "ENTRA_CLIENT_CERT": tc.cert},
			})
			b := s.browser()
			done := b.signIn("/", "ada@contoso.example")
			if done.status != tc.want {
				t.Fatalf("sign-in: %d, want %d: %.300s", done.status, tc.want, done.body)
			}
			if tc.want != 302 {
				if !strings.Contains(done.body, "credential (client secret or certificate)") || !s.runner.stderr.waitFor("700027") {
					t.Errorf("the refusal does not say why: %.300s", done.body)
				}
				return
			}
			// A refresh authenticates with a new assertion (the mock refuses a reused jti).
			if p := b.get("/app"); p.status != 200 || s.mock.RefreshRequests.Load() != 1 {
				t.Fatalf("refresh with an assertion: %d, %d refreshes", p.status, s.mock.RefreshRequests.Load())
			}
		})
	}
}
