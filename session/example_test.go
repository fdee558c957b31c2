package session_test

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/entra-auth/entra-auth/session"
)

// A session sealed into a cookie value and opened again: XChaCha20-Poly1305 under the
// first of the cookie secrets (the others still open what they sealed, for rotation),
// bound to the cookie's name, so that a value moved to another cookie does not open.
func ExampleCodec() {
	secret := make([]byte, 32)
	rand.Read(secret)
	codec, err := session.NewCodec([][]byte{secret}, rand.Reader)
	if err != nil {
		fmt.Println(err)
		return
	}
	s := &session.Session{ID: "s-1", Subject: "sub-1", Username: "ada@contoso.example", Expires: time.Now().Add(8 * time.Hour)}
	sealed, err := codec.Seal("__Host-entra-auth", s.Marshal())
	if err != nil {
		fmt.Println(err)
		return
	}
	plain, err := codec.Open("__Host-entra-auth", sealed)
	if err != nil {
		fmt.Println(err)
		return
	}
	opened, err := session.UnmarshalSession(plain)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(opened.Username)

	_, err = codec.Open("another-cookie", sealed)
	fmt.Println(err != nil)
	// Output:
	// ada@contoso.example
	// true
}
