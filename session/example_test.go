package session_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/entra-auth/entra-auth/session"
)

func ExampleCodec() {
	newSecret, oldSecret := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	codec, err := session.NewCodec([][]byte{newSecret, oldSecret}, rand.Reader)
	if err != nil {
		panic(err)
	}
	s := &session.Session{Subject: "sub-1", Name: "Ada", Expires: time.Unix(2_000_000_000, 0)}
	sealed, _ := codec.Seal("__Host-entra-auth", s.Marshal())

	plain, err := codec.Open("__Host-entra-auth", sealed)
	if err != nil {
		panic(err)
	}
	back, _ := session.UnmarshalSession(plain)
	fmt.Println(back.Name)

	_, err = codec.Open("__Host-entra-auth-other", sealed)
	fmt.Println(errors.Is(err, session.ErrInvalid))
	// Output:
	// Ada
	// true
}
