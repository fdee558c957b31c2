// Package upstreamsig signs what entra-auth tells the application behind it, and checks
// that signature in the application: proof that a request's identity headers were set
// by the filter, not by a client that reached the application some other way (a port
// left open, a route around the proxy) or smuggled a header past it.
//
// The filter, with upstream_signature configured, adds to every request it lets through
// one header, x-auth-request-signature:
//
//	v1;t=1764400000;h=x-auth-request-user,x-auth-request-email;s=BASE64URL
//
// t is when the filter signed (Unix seconds), h the headers it set, in the order signed
// (none for a request it let through without an identity, such as a skip_paths one), s
// the HMAC-SHA256, base64url without padding, of the version, t, the request's method,
// authority (host) and path (with its query) as the application receives them, and each
// header of h with its value, every field length-prefixed (see Message). The secret is
// shared by the filter and the application.
//
// Verify is the application's side: the signature must be well formed, made with one
// of the secrets it accepts (a list, for rotation), no older or newer than its allowed
// skew, for this method, authority and path, over the headers the request carries; and
// the request may carry no identity header the filter did not sign.
//
// Why HMAC and not a signed JWT: the filter signs every request, and an RSA or ECDSA
// signature costs milliseconds inside the Wasm VM (RS256 signing of a client assertion
// takes 11.7 ms there) where an HMAC costs microseconds; and the application and the
// proxy in front of it are one deployment, which can share a secret as they already
// share the user-sync secret.
package upstreamsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	// Header is the header the filter adds.
	Header = "x-auth-request-signature"
	// Version is the first field of the header's value, and of the message signed.
	Version = "v1"
	// IdentityPrefix starts the name of every identity header the filter sets.
	IdentityPrefix = "x-auth-request-"
	// MinSecretBytes is the shortest secret accepted: 32 bytes, as the output of the MAC.
	MinSecretBytes = 32
	// MaxHeaders bounds the names a signature may list.
	MaxHeaders = 32
)

// Request is what a signature binds of the request, as the application receives it.
type Request struct {
	Method    string // GET, POST, ...
	Authority string // the Host header (HTTP/1.1) or :authority
	Path      string // the request target: path and query, as sent
}

// Errors Verify returns, each wrapped with the detail.
var (
	ErrMissing   = errors.New("upstreamsig: no signature header")
	ErrMalformed = errors.New("upstreamsig: malformed signature header")
	ErrStale     = errors.New("upstreamsig: signature outside the allowed clock skew")
	ErrSignature = errors.New("upstreamsig: signature does not match")
	ErrUnsigned  = errors.New("upstreamsig: identity header the filter did not sign")
)

// Message is the byte string the MAC covers: each field as its length in decimal, a
// colon, the field and a newline. The fields: the version, t in decimal, the method,
// the authority, the path, then each signed header's name and value.
func Message(t int64, r Request, headers [][2]string) []byte {
	size := 0
	add := func(n int) { size += len(strconv.Itoa(n)) + 2 + n }
	ts := strconv.FormatInt(t, 10)
	for _, f := range []string{Version, ts, r.Method, r.Authority, r.Path} {
		add(len(f))
	}
	for _, h := range headers {
		add(len(h[0]))
		add(len(h[1]))
	}
	out := make([]byte, 0, size)
	put := func(f string) {
		out = strconv.AppendInt(out, int64(len(f)), 10)
		out = append(out, ':')
		out = append(out, f...)
		out = append(out, '\n')
	}
	for _, f := range []string{Version, ts, r.Method, r.Authority, r.Path} {
		put(f)
	}
	for _, h := range headers {
		put(h[0])
		put(h[1])
	}
	return out
}

// Sign returns the value of the signature header for a request let through at t with
// headers set (lower-case names, each at most once). The caller checks the secret's
// length (MinSecretBytes) when it is configured.
func Sign(secret []byte, t time.Time, r Request, headers [][2]string) string {
	return NewSigner(secret).Sign(t, r, headers)
}

// A Signer signs with one secret, keeping the keyed MAC between signatures (Go's HMAC
// then skips hashing the key's pads again). It is not safe for concurrent use: a Wasm VM
// runs one thread, and a filter keeps one per VM.
type Signer struct {
	mac hash.Hash
}

// NewSigner returns a Signer for secret.
func NewSigner(secret []byte) *Signer {
	return &Signer{mac: hmac.New(sha256.New, secret)}
}

// Sign is the package's Sign with the Signer's secret.
func (s *Signer) Sign(t time.Time, r Request, headers [][2]string) string {
	unix := t.Unix()
	mac := s.mac
	mac.Reset()
	mac.Write(Message(unix, r, headers))
	var b strings.Builder
	b.Grow(64 + 24*len(headers))
	b.WriteString(Version)
	b.WriteString(";t=")
	b.WriteString(strconv.FormatInt(unix, 10))
	b.WriteString(";h=")
	for i, h := range headers {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(h[0])
	}
	b.WriteString(";s=")
	b.WriteString(base64.RawURLEncoding.EncodeToString(mac.Sum(nil)))
	return b.String()
}

// Parsed is a signature header's fields.
type Parsed struct {
	T       int64
	Headers []string
	MAC     []byte
}

// Parse reads a signature header's value. It accepts exactly what Sign writes: the four
// fields in order, a positive decimal t, lower-case header names of letters, digits and
// hyphens without repeats, and a 32-byte MAC in unpadded base64url.
func Parse(value string) (Parsed, error) {
	var p Parsed
	rest, ok := strings.CutPrefix(value, Version+";t=")
	if !ok {
		return p, fmt.Errorf("%w: it must start with %q", ErrMalformed, Version+";t=")
	}
	ts, rest, ok := strings.Cut(rest, ";h=")
	if !ok || ts == "" || len(ts) > 18 || strings.TrimLeft(ts, "0123456789") != "" || ts[0] == '0' {
		return p, fmt.Errorf("%w: t must be Unix seconds, then ;h=", ErrMalformed)
	}
	p.T, _ = strconv.ParseInt(ts, 10, 64) // 18 digits fit
	names, sig, ok := strings.Cut(rest, ";s=")
	if !ok {
		return p, fmt.Errorf("%w: ;s= is missing", ErrMalformed)
	}
	if names != "" {
		p.Headers = strings.Split(names, ",")
	}
	if len(p.Headers) > MaxHeaders {
		return p, fmt.Errorf("%w: more than %d headers", ErrMalformed, MaxHeaders)
	}
	for i, name := range p.Headers {
		if !validName(name) {
			return p, fmt.Errorf("%w: header name %d is not a lower-case token", ErrMalformed, i+1)
		}
		if slices.Contains(p.Headers[:i], name) {
			return p, fmt.Errorf("%w: %s is listed twice", ErrMalformed, name)
		}
	}
	// Checked by hand: Go's decoder skips \r and \n, which must not make a second
	// spelling of one signature.
	if len(sig) != base64.RawURLEncoding.EncodedLen(sha256.Size) || strings.Trim(sig, base64URLAlphabet) != "" {
		return p, fmt.Errorf("%w: s must be %d characters of base64url", ErrMalformed, base64.RawURLEncoding.EncodedLen(sha256.Size))
	}
	mac, err := base64.RawURLEncoding.Strict().DecodeString(sig)
	if err != nil {
		return p, fmt.Errorf("%w: s is not base64url", ErrMalformed)
	}
	p.MAC = mac
	return p, nil
}

const base64URLAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func validName(name string) bool {
	if name == "" || len(name) > 64 || name[0] == '-' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// Verify checks the signature header of a request that reached the application: h is
// the request's headers (an http.Header, or any map of names to values; names are
// matched without regard to case), secrets the secrets
// accepted, now the application's clock and maxSkew how far t may be from it either way
// (30 seconds is a good start; the clocks of the proxy and the application should be
// synchronized). An identity header is one whose name, lower-cased and with '_' taken
// for '-' (as CGI, WSGI and PHP fold names), starts with x-auth-request-; each the
// request carries must be signed, and each signed one must be there exactly once.
func Verify(h map[string][]string, r Request, secrets [][]byte, now time.Time, maxSkew time.Duration) error {
	values := headerValues(h, Header)
	switch len(values) {
	case 0:
		return ErrMissing
	case 1:
	default:
		return fmt.Errorf("%w: sent %d times", ErrMalformed, len(values))
	}
	p, err := Parse(values[0])
	if err != nil {
		return err
	}
	if skew := now.Sub(time.Unix(p.T, 0)); skew > maxSkew || skew < -maxSkew {
		return fmt.Errorf("%w: signed %v from now", ErrStale, skew.Round(time.Second))
	}
	signed := make([][2]string, len(p.Headers))
	for i, name := range p.Headers {
		v := headerValues(h, name)
		if len(v) != 1 {
			return fmt.Errorf("%w: %s is signed but sent %d times", ErrSignature, name, len(v))
		}
		signed[i] = [2]string{name, v[0]}
	}
	for name := range h {
		folded := strings.ReplaceAll(strings.ToLower(name), "_", "-")
		if !strings.HasPrefix(folded, IdentityPrefix) || folded == Header {
			continue
		}
		if !slices.Contains(p.Headers, strings.ToLower(name)) {
			return fmt.Errorf("%w: %s", ErrUnsigned, name)
		}
	}
	msg := Message(p.T, r, signed)
	for _, secret := range secrets {
		mac := hmac.New(sha256.New, secret)
		mac.Write(msg)
		if hmac.Equal(mac.Sum(nil), p.MAC) {
			return nil
		}
	}
	return ErrSignature
}

// headerValues are the values of every key of h equal to name but for case. (The
// package does without net/http and net/textproto, which would weigh on the filter's
// module, which imports it to sign.)
func headerValues(h map[string][]string, name string) []string {
	var out []string
	for k, v := range h {
		if strings.EqualFold(k, name) {
			out = append(out, v...)
		}
	}
	return out
}
