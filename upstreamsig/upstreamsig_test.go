package upstreamsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	secret    = []byte("0123456789abcdef0123456789abcdef")
	oldSecret = []byte("fedcba9876543210fedcba9876543210")
	signedAt  = time.Unix(1764400000, 0)
	request   = Request{Method: "GET", Authority: "app.contoso.example", Path: "/reports?year=2026"}
	identity  = [][2]string{{"x-auth-request-user", "ada@contoso.example"}, {"x-auth-request-groups", "g1,g2"}}
)

// signedHeaders is a request as the application receives it from the filter.
func signedHeaders() http.Header {
	h := http.Header{}
	for _, p := range identity {
		h.Set(p[0], p[1])
	}
	h.Set("Accept", "text/html")
	h.Set(Header, Sign(secret, signedAt, request, identity))
	return h
}

func TestVerify(t *testing.T) {
	now := signedAt.Add(5 * time.Second)
	for _, tc := range []struct {
		name    string
		change  func(h http.Header, r *Request, secrets *[][]byte, now *time.Time)
		wantErr error
	}{
		{"as signed", nil, nil},
		{"the old secret still accepted during rotation", func(_ http.Header, _ *Request, s *[][]byte, _ *time.Time) {
			*s = [][]byte{oldSecret, secret}
		}, nil},
		{"at the edge of the skew", func(_ http.Header, _ *Request, _ *[][]byte, n *time.Time) { *n = signedAt.Add(30 * time.Second) }, nil},
		{"clock behind by the skew", func(_ http.Header, _ *Request, _ *[][]byte, n *time.Time) { *n = signedAt.Add(-30 * time.Second) }, nil},
		{"no signature (the proxy was bypassed)", func(h http.Header, _ *Request, _ *[][]byte, _ *time.Time) { h.Del(Header) }, ErrMissing},
		{"stale", func(_ http.Header, _ *Request, _ *[][]byte, n *time.Time) { *n = signedAt.Add(31 * time.Second) }, ErrStale},
		{"from the future", func(_ http.Header, _ *Request, _ *[][]byte, n *time.Time) { *n = signedAt.Add(-31 * time.Second) }, ErrStale},
		{"another path", func(_ http.Header, r *Request, _ *[][]byte, _ *time.Time) { r.Path = "/admin" }, ErrSignature},
		{"another query", func(_ http.Header, r *Request, _ *[][]byte, _ *time.Time) { r.Path = "/reports?year=2025" }, ErrSignature},
		{"another method", func(_ http.Header, r *Request, _ *[][]byte, _ *time.Time) { r.Method = "POST" }, ErrSignature},
		{"another host", func(_ http.Header, r *Request, _ *[][]byte, _ *time.Time) { r.Authority = "evil.example" }, ErrSignature},
		{"identity changed", func(h http.Header, _ *Request, _ *[][]byte, _ *time.Time) {
			h.Set("X-Auth-Request-User", "mallory@contoso.example")
		}, ErrSignature},
		{"signed identity removed", func(h http.Header, _ *Request, _ *[][]byte, _ *time.Time) { h.Del("X-Auth-Request-Groups") }, ErrSignature},
		{"signed identity sent twice", func(h http.Header, _ *Request, _ *[][]byte, _ *time.Time) {
			h.Add("X-Auth-Request-User", "mallory@contoso.example")
		}, ErrSignature},
		{"unsigned identity header added", func(h http.Header, _ *Request, _ *[][]byte, _ *time.Time) {
			h.Set("X-Auth-Request-Roles", "Admin")
		}, ErrUnsigned},
		{"unsigned identity header in another spelling", func(h http.Header, _ *Request, _ *[][]byte, _ *time.Time) {
			h["X_Auth_Request_Roles"] = []string{"Admin"}
		}, ErrUnsigned},
		{"wrong secret", func(_ http.Header, _ *Request, s *[][]byte, _ *time.Time) { *s = [][]byte{oldSecret} }, ErrSignature},
		{"no secret", func(_ http.Header, _ *Request, s *[][]byte, _ *time.Time) { *s = nil }, ErrSignature},
		{"signature header sent twice", func(h http.Header, _ *Request, _ *[][]byte, _ *time.Time) {
			h.Add(Header, h.Get(Header))
		}, ErrMalformed},
		{"signature cut short", func(h http.Header, _ *Request, _ *[][]byte, _ *time.Time) {
			h.Set(Header, h.Get(Header)[:len(h.Get(Header))-1])
		}, ErrMalformed},
		{"headers list rewritten to hide one", func(h http.Header, _ *Request, _ *[][]byte, _ *time.Time) {
			h.Set(Header, strings.Replace(h.Get(Header), ",x-auth-request-groups", "", 1))
			h.Del("X-Auth-Request-Groups")
		}, ErrSignature},
		{"time rewritten", func(h http.Header, _ *Request, _ *[][]byte, n *time.Time) {
			h.Set(Header, strings.Replace(h.Get(Header), "t=1764400000", "t=1764400600", 1))
			*n = signedAt.Add(600 * time.Second)
		}, ErrSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, r, secrets, at := signedHeaders(), request, [][]byte{secret}, now
			if tc.change != nil {
				tc.change(h, &r, &secrets, &at)
			}
			err := Verify(h, r, secrets, at, 30*time.Second)
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify: %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// A request the filter let through without an identity (a skip_paths one) is signed
// over no headers, and then carries none.
func TestVerifyWithoutIdentity(t *testing.T) {
	h := http.Header{Header: {Sign(secret, signedAt, request, nil)}} // a key as written, not canonical
	if !strings.Contains(h[Header][0], ";h=;") {
		t.Fatalf("%s: want an empty header list", h[Header][0])
	}
	if err := Verify(h, request, [][]byte{secret}, signedAt, time.Second); err != nil {
		t.Fatal(err)
	}
	h.Set("X-Auth-Request-User", "mallory@contoso.example")
	if err := Verify(h, request, [][]byte{secret}, signedAt, time.Second); !errors.Is(err, ErrUnsigned) {
		t.Fatalf("an identity header next to an empty signed list: %v, want ErrUnsigned", err)
	}
}

// The message is what the README documents, so that an application in another
// language can compute it: length-prefixed fields, each ending in a newline.
func TestMessageAndSignatureAreAsDocumented(t *testing.T) {
	got := string(Message(1764400000, Request{Method: "GET", Authority: "a.example", Path: "/p?q=1"},
		[][2]string{{"x-auth-request-user", "ada@contoso.example"}}))
	want := "2:v1\n10:1764400000\n3:GET\n9:a.example\n6:/p?q=1\n19:x-auth-request-user\n19:ada@contoso.example\n"
	if got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(want))
	wantValue := "v1;t=1764400000;h=x-auth-request-user;s=" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	if v := Sign(secret, time.Unix(1764400000, 0), Request{Method: "GET", Authority: "a.example", Path: "/p?q=1"},
		[][2]string{{"x-auth-request-user", "ada@contoso.example"}}); v != wantValue {
		t.Fatalf("Sign: %s, want %s", v, wantValue)
	}
}

// Length prefixes keep fields from sliding into each other: moving a character from
// the authority to the path, or from a name to its value, changes the message.
func TestMessageFieldsDoNotSlide(t *testing.T) {
	a := Message(1, Request{Method: "GET", Authority: "ab", Path: "/c"}, [][2]string{{"x-auth-request-a", "b"}})
	for _, other := range [][]byte{
		Message(1, Request{Method: "GET", Authority: "a", Path: "b/c"}, [][2]string{{"x-auth-request-a", "b"}}),
		Message(1, Request{Method: "GE", Authority: "Tab", Path: "/c"}, [][2]string{{"x-auth-request-a", "b"}}),
		Message(1, Request{Method: "GET", Authority: "ab", Path: "/c"}, [][2]string{{"x-auth-request-", "ab"}}),
	} {
		if string(a) == string(other) {
			t.Fatalf("two requests give one message: %q", a)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	good := Sign(secret, signedAt, request, identity)
	sig := good[strings.Index(good, ";s=")+3:]
	for _, value := range []string{
		"",
		"v2;t=1764400000;h=;s=" + sig,
		"v1;t=;h=;s=" + sig,
		"v1;t=01764400000;h=;s=" + sig,
		"v1;t=-1;h=;s=" + sig,
		"v1;t=1e9;h=;s=" + sig,
		"v1;t=1764400000;s=" + sig,
		"v1;t=1764400000;h=;s=",
		"v1;t=1764400000;h=;s=" + sig + "=",
		"v1;t=1764400000;h=;s=" + strings.Repeat("*", len(sig)),
		"v1;t=1764400000;h=X-Auth-Request-User;s=" + sig,
		"v1;t=1764400000;h=x-auth-request-user,x-auth-request-user;s=" + sig,
		"v1;t=1764400000;h=x-auth-request-user,;s=" + sig,
		"v1;t=1764400000;h=x auth;s=" + sig,
		"v1;t=1764400000;h=" + strings.Repeat("a,", MaxHeaders) + "b;s=" + sig,
		"v1;t=1764400000;h=;s=" + sig + ";extra=1",
		" v1;t=1764400000;h=;s=" + sig,
	} {
		if _, err := Parse(value); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q): %v, want ErrMalformed", value, err)
		}
	}
}

// FuzzParse: whatever the header says, Parse answers without panicking, and what it
// accepts it accepts as Sign would have written it.
func FuzzParse(f *testing.F) {
	f.Add(Sign(secret, signedAt, request, identity))
	f.Add(Sign(secret, signedAt, request, nil))
	f.Add("v1;t=1;h=a;s=")
	f.Fuzz(func(t *testing.T, value string) {
		p, err := Parse(value)
		if err != nil {
			return
		}
		rebuilt := Version + ";t=" + strconv.FormatInt(p.T, 10) + ";h=" + strings.Join(p.Headers, ",") + ";s=" + base64.RawURLEncoding.EncodeToString(p.MAC)
		if rebuilt != value {
			t.Fatalf("Parse accepted %q, which Sign would write as %q", value, rebuilt)
		}
	})
}

// FuzzVerify: a signature header the fuzzer makes up verifies only if it is the one Sign
// writes for that time, whatever else it tries.
func FuzzVerify(f *testing.F) {
	f.Add(Sign(secret, signedAt, request, identity), "ada@contoso.example")
	f.Add(Sign(secret, signedAt, request, identity[:1]), "mallory@contoso.example")
	f.Add("v1;t=1764400000;h=;s=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "")
	f.Fuzz(func(t *testing.T, value, user string) {
		h := http.Header{}
		h.Set(Header, value)
		h.Set("X-Auth-Request-User", user)
		h.Set("X-Auth-Request-Groups", "g1,g2")
		if err := Verify(h, request, [][]byte{secret}, signedAt, time.Hour); err != nil {
			return
		}
		p, _ := Parse(value)
		var signed [][2]string
		for _, name := range p.Headers {
			signed = append(signed, [2]string{name, h.Get(name)})
		}
		if want := Sign(secret, time.Unix(p.T, 0), request, signed); value != want {
			t.Fatalf("Verify accepted %q; Sign writes %q", value, want)
		}
	})
}

// BenchmarkSign is what upstream_signature adds to each request the filter lets through
// with the usual identity: one HMAC-SHA256 over about 300 bytes and the header's text.
func BenchmarkSign(b *testing.B) {
	headers := [][2]string{{"x-auth-request-user", "ada@contoso.example"}, {"x-auth-request-email", "ada@contoso.example"},
		{"x-auth-request-name", "Ada Lovelace"}, {"x-auth-request-oid", "00000000-0000-0000-0000-00000000ada1"},
		{"x-auth-request-tid", "72f988bf-86f1-41af-91ab-2d7cd011db47"}, {"x-auth-request-groups", "a4f7c0d2-1111-4a5b-9c3d-000000000001"},
		{"x-auth-request-user-id", "42"}}
	signer := NewSigner(secret)
	b.ReportAllocs()
	for b.Loop() {
		signer.Sign(signedAt, request, headers)
	}
}

// A Signer used many times signs as Sign does each time.
func TestSignerAgreesWithSign(t *testing.T) {
	signer := NewSigner(secret)
	for i := range 3 {
		at := signedAt.Add(time.Duration(i) * time.Second)
		if got, want := signer.Sign(at, request, identity[:i%2+1]), Sign(secret, at, request, identity[:i%2+1]); got != want {
			t.Fatalf("signature %d: %s, want %s", i, got, want)
		}
	}
}
