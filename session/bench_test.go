package session

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkOpen is what a signed-in request costs when the VM has not opened its cookie
// before: base64url, XChaCha20-Poly1305 and the payload, for a session without tokens
// and one carrying a refresh token the size Entra ID issues. `make bench` runs it
// natively and compiled to Wasm under wazero.
func BenchmarkOpen(b *testing.B) {
	secret := make([]byte, 32)
	rand.Read(secret)
	codec, err := NewCodec([][]byte{secret}, rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	for _, refreshToken := range []int{0, 1500} {
		s := &Session{ID: "0123456789abcdefghijkl", Issuer: "https://login.microsoftonline.com/t/v2.0", Subject: "sub",
			ObjectID: "00000000-0000-0000-0000-00000000ada1", TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47",
			Username: "ada@contoso.com", Email: "ada@contoso.com", Name: "Ada Lovelace", Roles: []string{"Admin"},
			Groups:       []string{"a4f7c0d2-1111-4a5b-9c3d-000000000001", "a4f7c0d2-1111-4a5b-9c3d-000000000002"},
			RefreshToken: strings.Repeat("r", refreshToken), Nonce: "nonce", IssuedAt: time.Unix(1_800_000_000, 0),
			AccessExpires: time.Unix(1_800_003_600, 0), Expires: time.Unix(1_800_028_800, 0)}
		sealed, err := codec.Seal("__Host-entra-auth", s.Marshal())
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("refresh-token=%dB", refreshToken), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				plain, err := codec.Open("__Host-entra-auth", sealed)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := UnmarshalSession(plain); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(sealed)), "cookie-bytes")
		})
	}
}
