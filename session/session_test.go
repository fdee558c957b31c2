package session

import (
	"bytes"
	"crypto/rand"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func newCodec(t testing.TB, keys ...[]byte) *Codec {
	t.Helper()
	c, err := NewCodec(keys, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewCodecRefusesBadSecrets(t *testing.T) {
	k := newKey(t)
	for name, keys := range map[string][][]byte{
		"none":      nil,
		"too short": {make([]byte, 16)},
		"too long":  {make([]byte, 33)},
		"repeated":  {k, newKey(t), k},
	} {
		if _, err := NewCodec(keys, rand.Reader); !errors.Is(err, ErrKey) {
			t.Errorf("%s: err %v, want ErrKey", name, err)
		}
	}
}

func TestSealOpen(t *testing.T) {
	oldKey, newKey1, foreign := newKey(t), newKey(t), newKey(t)
	current := newCodec(t, newKey1, oldKey) // rotated: new key first, old still opens
	before := newCodec(t, oldKey)
	stranger := newCodec(t, foreign)
	plain := []byte("the payload")
	sealed, err := current.Seal("__Host-entra-auth", plain)
	if err != nil {
		t.Fatal(err)
	}
	sealedBefore, _ := before.Seal("__Host-entra-auth", plain)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cases := []struct {
		name, purpose, text string
		codec               *Codec
		ok                  bool
	}{
		{"round trip", "__Host-entra-auth", sealed, current, true},
		{"sealed before rotation", "__Host-entra-auth", sealedBefore, current, true},
		{"new key unknown to an old proxy", "__Host-entra-auth", sealed, before, false},
		{"foreign key", "__Host-entra-auth", sealed, stranger, false},
		{"another cookie's value", "__Host-entra-auth-state", sealed, current, false},
		{"tampered ciphertext", "__Host-entra-auth", flip(sealed, len(sealed)-5), current, false},
		{"tampered nonce", "__Host-entra-auth", flip(sealed, 10), current, false},
		{"truncated", "__Host-entra-auth", sealed[:len(sealed)-3], current, false},
		{"shorter than the overhead", "__Host-entra-auth", sealed[:20], current, false},
		{"not base64url", "__Host-entra-auth", sealed[:10] + "!" + sealed[11:], current, false},
		{"empty", "__Host-entra-auth", "", current, false},
		{"huge", "__Host-entra-auth", strings.Repeat("A", MaxSealedSize+1), current, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.codec.Open(tc.purpose, tc.text)
			if tc.ok {
				if err != nil || !bytes.Equal(got, plain) {
					t.Fatalf("Open = %q, %v", got, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", err)
			}
		})
	}
}

func TestSealUsesAFreshNonceEachTime(t *testing.T) {
	c := newCodec(t, newKey(t))
	a, _ := c.Seal("c", []byte("same"))
	b, _ := c.Seal("c", []byte("same"))
	if a == b {
		t.Fatal("two seals of the same value are equal: nonce reused")
	}
}

func TestSessionPayloadRoundTrip(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := &Session{
		Issuer: "https://login.microsoftonline.com/t/v2.0", Subject: "sub", ObjectID: "oid", TenantID: "tid",
		Username: "ada@contoso.com", Email: "ada@contoso.com", Name: "Ada Lovelace",
		Groups: []string{"g1", "g2"}, Roles: []string{"Admin"}, LoginHint: "hint",
		UserID: "42", SyncFingerprint: "fp",
		ID: "sid", Nonce: "n", AccessToken: "at", RefreshToken: "rt", AccessExpires: now.Add(time.Hour),
		IssuedAt: now, Expires: now.Add(8 * time.Hour),
		ACRs: []string{"c1", "c7"}, AMR: []string{"pwd", "mfa"}, AuthTime: now.Add(-time.Minute),
		ChallengePage: "k3Yv0cRdYF7y2Qqm", ChallengeAt: now.Add(-time.Second),
	}
	got, err := UnmarshalSession(s.Marshal())
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if s.Expired(now.Add(8*time.Hour-time.Second)) || !s.Expired(now.Add(8*time.Hour)) {
		t.Error("Expired is off by one")
	}
}

func TestSignInPayloadRoundTrip(t *testing.T) {
	s := &SignIn{State: "st", Nonce: "n", CodeVerifier: "v", ReturnTo: "/x?y=1", RedirectURI: "https://app/.auth/callback", Expires: time.Unix(1_800_000_000, 0),
		ACRs: []string{"c1", "c2"}, MaxAge: 15 * time.Minute, Challenged: true}
	got, err := UnmarshalSignIn(s.Marshal())
	if err != nil || !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
}

func TestUnmarshalRefusesMalformedPayloads(t *testing.T) {
	valid := (&Session{Subject: "s", Expires: time.Unix(1, 0)}).Marshal()
	for name, b := range map[string][]byte{
		"empty":              {},
		"wrong version":      append([]byte{9}, valid[1:]...),
		"length past end":    {payloadV1, tagSubject, 50, 'a'},
		"bad number":         {payloadV1, tagExpires, 0x80},
		"no expiry":          (&Session{Subject: "s"}).Marshal(),
		"no subject":         (&Session{Expires: time.Unix(1, 0)}).Marshal(),
		"truncated varint":   {payloadV1, tagSubject, 0xff},
		"signin as session":  (&SignIn{State: "s", Nonce: "n", CodeVerifier: "v", Expires: time.Unix(1, 0)}).Marshal(),
		"too many groups":    append(valid, bytes.Repeat([]byte{tagGroup, 1, 'g'}, maxListItems+1)...),
		"too many contexts":  append(valid, bytes.Repeat([]byte{tagACR, 2, 'c', '1'}, maxListItems+1)...),
		"too many methods":   append(valid, bytes.Repeat([]byte{tagAMR, 3, 'p', 'w', 'd'}, maxListItems+1)...),
		"huge length prefix": {payloadV1, tagName, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if _, err := UnmarshalSession(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
	}
	// Unknown fields (text or number) from a newer version are skipped.
	newer := append(valid, 0x7e, 2, 'h', 'i', numberTag|0x33, 4)
	if _, err := UnmarshalSession(newer); err != nil {
		t.Errorf("unknown fields: %v", err)
	}
}

func TestSplitJoin(t *testing.T) {
	long := strings.Repeat("abcdefghij", 1000) // 10,000 bytes
	cases := []struct {
		name       string
		value      string
		maxValue   int
		wantChunks int
	}{
		{"fits", "short", 3500, 1},
		{"exactly fits", strings.Repeat("x", 3500), 3500, 1},
		{"three", long, 3500, 3},
		{"many", long, 1000, 11},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cookies, err := Split("__Host-s", tc.value, tc.maxValue, 20)
			if err != nil {
				t.Fatal(err)
			}
			if len(cookies) != tc.wantChunks {
				t.Fatalf("%d chunks, want %d", len(cookies), tc.wantChunks)
			}
			pairs := map[string]string{}
			for _, c := range cookies {
				if len(c.Value) > tc.maxValue {
					t.Errorf("%s has %d bytes", c.Name, len(c.Value))
				}
				pairs[c.Name] = c.Value
			}
			jar := jarOf(pairs)
			got, found, err := Join(jar, "__Host-s", 20)
			if err != nil || !found || got != tc.value {
				t.Fatalf("Join: found %v, err %v, equal %v", found, err, got == tc.value)
			}
			if n := len(Present(jar, "__Host-s", 20)); n != tc.wantChunks {
				t.Errorf("Present found %d", n)
			}
		})
	}
	if _, err := Split("s", long, 100, 20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over maxChunks: %v", err)
	}
}

func TestJoinRefusesIncompleteSets(t *testing.T) {
	for name, jar := range map[string]Jar{
		"missing chunk":   NewJar("s=3.aaa; s.1=bbb"),
		"count too large": NewJar("s=50.aaa"),
		"count one":       NewJar("s=1.aaa"),
		"count garbage":   NewJar("s=x.aaa"),
	} {
		if _, found, err := Join(jar, "s", 10); !found || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: found %v err %v", name, found, err)
		}
	}
	if _, found, err := Join(NewJar("other=x"), "s", 10); found || err != nil {
		t.Errorf("absent cookie: found %v err %v", found, err)
	}
}

// jarOf makes a jar holding cookies.
func jarOf(cookies map[string]string) Jar {
	var pairs []string
	for name, value := range cookies {
		pairs = append(pairs, name+"="+value)
	}
	return NewJar(strings.Join(pairs, "; "))
}

func TestJar(t *testing.T) {
	jar := NewJar(`a=1; b="2";  c=3`, "a=ignored; d=4; junk; =x; e=")
	for name, want := range map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": ""} {
		if got, ok := jar.Get(name); !ok || got != want {
			t.Errorf("%s = %q %v, want %q", name, got, ok, want)
		}
	}
	if _, ok := jar.Get("junk"); ok {
		t.Error("a pair without = was read")
	}
	if names := jar.Names("a"); len(names) != 1 {
		t.Errorf("Names(a) = %v", names)
	}
	many := NewJar(strings.Repeat("k=v; ", MaxCookies) + "late=1")
	if _, ok := many.Get("late"); ok {
		t.Errorf("read a cookie past the first %d", MaxCookies)
	}
}

func TestSetCookieAttributes(t *testing.T) {
	host := Attributes{Secure: true, SameSite: "Lax"}
	if got := host.Set(Cookie{"__Host-a", "v"}, 60); got != "__Host-a=v; Path=/; Max-Age=60; Secure; HttpOnly; SameSite=Lax" {
		t.Errorf("got %q", got)
	}
	shared := Attributes{Domain: "contoso.com", Secure: true, SameSite: "Lax"}
	if got := shared.Clear("__Secure-a"); got != "__Secure-a=; Path=/; Max-Age=0; Domain=contoso.com; Secure; HttpOnly; SameSite=Lax" {
		t.Errorf("got %q", got)
	}
}

func TestWithoutTakesOutOnlyTheNamedCookies(t *testing.T) {
	ours := func(name string) bool {
		return name == "s" || strings.HasPrefix(name, "s.") || strings.HasPrefix(name, "s-signin-")
	}
	for _, tc := range []struct {
		name    string
		headers []string
		want    string
		dropped bool
	}{
		{"none of ours", []string{"a=1; b=2"}, "", false},
		{"ours in the middle", []string{"a=1; s=secret; b=2"}, "a=1; b=2", true},
		{"chunks and sign-in", []string{"s=1.x; s.1=y", "s-signin-abc=z; theme=dark"}, "theme=dark", true},
		{"only ours", []string{"s=secret"}, "", true},
		{"duplicates of ours", []string{"s=one; a=1; s=two"}, "a=1", true},
		{"others kept as sent", []string{`a="quoted"; b=; c=x=y;;d`}, "", false},
		{"others kept as sent, ours dropped", []string{`a="quoted"; s=1; b=; c=x=y;;d`}, `a="quoted"; b=; c=x=y; d`, true},
		{"spaces around our name", []string{"a=1; s =secret;\ts.1=x"}, "a=1", true},
		{"more than MaxCookies", []string{strings.Repeat("x=1; ", 150) + "s=secret"}, strings.TrimSuffix(strings.Repeat("x=1; ", 150), "; "), true},
	} {
		got, dropped := Without(tc.headers, ours)
		if got != tc.want || dropped != tc.dropped {
			t.Errorf("%s: Without(%q) = %q, %v; want %q, %v", tc.name, tc.headers, got, dropped, tc.want, tc.dropped)
		}
	}
}

// Whatever the Cookie headers, Without keeps every pair that is not ours, in order, and
// none that is.
func FuzzWithout(f *testing.F) {
	for _, s := range []string{"a=1; s=2", "s=1;s=2;s.1=3", "s-signin-x=1; b", ";;=;", "s"} {
		f.Add(s, "c=3")
	}
	ours := func(name string) bool {
		return name == "s" || strings.HasPrefix(name, "s.") || strings.HasPrefix(name, "s-signin-")
	}
	pairs := func(headers ...string) []string {
		var out []string
		for _, h := range headers {
			for _, p := range strings.Split(h, ";") {
				if p = strings.TrimSpace(p); p != "" {
					out = append(out, p)
				}
			}
		}
		return out
	}
	f.Fuzz(func(t *testing.T, h1, h2 string) {
		kept, dropped := Without([]string{h1, h2}, ours)
		var want []string
		anyOurs := false
		for _, p := range pairs(h1, h2) {
			name, _, _ := strings.Cut(p, "=")
			if ours(strings.TrimSpace(name)) {
				anyOurs = true
				continue
			}
			want = append(want, p)
		}
		if dropped != anyOurs {
			t.Fatalf("dropped = %v for %q, %q", dropped, h1, h2)
		}
		if dropped && kept != strings.Join(want, "; ") {
			t.Fatalf("Without(%q, %q) = %q, want %q", h1, h2, kept, strings.Join(want, "; "))
		}
		for _, p := range pairs(kept) {
			if name, _, _ := strings.Cut(p, "="); dropped && ours(strings.TrimSpace(name)) {
				t.Fatalf("%q kept one of ours: %q", kept, p)
			}
		}
	})
}

func TestJoinAllGivesEveryWayDuplicatesGoTogether(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		want   []string
		err    bool
	}{
		{"one plain", "s=abc", []string{"abc"}, false},
		{"one chunked", "s=2.ab; s.1=cd", []string{"abcd"}, false},
		{"plain twice", "s=abc; s=xyz", []string{"abc", "xyz"}, false},
		{"the same value twice", "s=abc; other=1; s=abc", []string{"abc"}, false},
		{"a planted chunk", "s=2.ab; s.1=cd; s.1=zz", []string{"abcd", "abzz"}, false},
		{"a planted first chunk", "s=junk; s=2.ab; s.1=cd", []string{"junk", "abcd"}, false},
		{"one complete, one incomplete", "s=3.ab; s=2.xy; s.1=cd", []string{"xycd"}, false},
		{"none complete", "s=3.ab; s.1=cd", nil, true},
		{"too many ways", "s=3.a; s.1=b; s.1=c; s.1=d; s.2=e; s.2=f", nil, true},
	} {
		got, found, err := JoinAll(NewJar(tc.header), "s", 8)
		if !found || (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("%s: JoinAll = %q, %v, %v; want %q (error %v)", tc.name, got, found, err, tc.want, tc.err)
		}
	}
	for header, once := range map[string]bool{"s=a; s.1=b": true, "s=a; t=s": true, "s=a; s=b": false, "s.1=a; s.1=b": false, "s=a; s.01=b": true, "s=a; s.16=b": false} {
		if got := NewJar(header).sentOnce("s"); got != once {
			t.Errorf("sentOnce(%q) = %v, want %v", header, got, once)
		}
	}
}

// Whatever duplicates a jar holds, JoinAll returns at most MaxCandidates distinct
// values, each one the jar can really put together.
func FuzzJoinAll(f *testing.F) {
	f.Add("s=2.ab; s.1=cd; s.1=zz; s=x")
	f.Add("s=3.a; s.1=b; s.2=c; s=3.d; s.2=e")
	f.Add("s=99.x; s.1=")
	f.Fuzz(func(t *testing.T, header string) {
		jar := NewJar(header)
		values, found, err := JoinAll(jar, "s", 4)
		if found != (len(jar.All("s")) > 0) {
			t.Fatalf("found = %v for %q", found, header)
		}
		if len(values) > MaxCandidates || (err == nil && found && len(values) == 0) {
			t.Fatalf("%d candidates, err %v, for %q", len(values), err, header)
		}
		seen := map[string]bool{}
		for _, v := range values {
			if seen[v] {
				t.Fatalf("candidate %q twice", v)
			}
			seen[v] = true
			if len(v) > len(header) {
				t.Fatalf("candidate %q longer than the header", v)
			}
		}
	})
}
