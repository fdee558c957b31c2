package session

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxCookies bounds how many cookies of a request are looked at, so that a request with
// thousands of cookies costs no more than one with a hundred.
const MaxCookies = 100

// Jar is the cookies of one request, read on demand from its Cookie header values
// (HTTP/2 may split them over several headers). Nothing is parsed up front: inside a Wasm
// VM, building a map of every cookie costs more than scanning for the few that matter.
type Jar struct {
	headers []string
}

// NewJar returns the jar of a request's Cookie header values.
func NewJar(headers ...string) Jar { return Jar{headers: headers} }

// each calls fn for the first MaxCookies name=value pairs, until fn returns false.
// Malformed pairs are skipped; quoted values are unquoted.
func (j Jar) each(fn func(name, value string) bool) {
	n := 0
	for _, h := range j.headers {
		for h != "" && n < MaxCookies {
			var pair string
			pair, h, _ = strings.Cut(h, ";")
			name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
			if !ok || name == "" {
				continue
			}
			n++
			if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
				value = value[1 : len(value)-1]
			}
			if !fn(name, value) {
				return
			}
		}
	}
}

// Get returns the first value of the cookie called name.
func (j Jar) Get(name string) (value string, found bool) {
	j.each(func(n, v string) bool {
		if n == name {
			value, found = v, true
			return false
		}
		return true
	})
	return value, found
}

// All returns every value of the cookie called name, distinct, in the order sent.
func (j Jar) All(name string) []string {
	var values []string
	j.each(func(n, v string) bool {
		if n == name && !slices.Contains(values, v) {
			values = append(values, v)
		}
		return true
	})
	return values
}

// Names lists the distinct names of the jar's cookies that start with prefix.
func (j Jar) Names(prefix string) []string {
	var names []string
	j.each(func(n, _ string) bool {
		if strings.HasPrefix(n, prefix) && !slices.Contains(names, n) {
			names = append(names, n)
		}
		return true
	})
	return names
}

// Without returns the Cookie header a request should go on with once the cookies drop
// names are taken out: every other pair as the client sent it, in order, joined by "; "
// (one header where HTTP/1 may have had several). dropped reports whether any was taken
// out; when none was, kept is not built. Unlike the jar it reads every pair, however
// many: what goes upstream is never cut short. A name is compared without the spaces
// around it ("s =x" is taken for s), as lenient cookie parsers read it.
func Without(headers []string, drop func(name string) bool) (kept string, dropped bool) {
	for _, h := range headers {
		for rest := h; rest != "" && !dropped; {
			var pair string
			pair, rest, _ = strings.Cut(rest, ";")
			name, _, _ := strings.Cut(pair, "=")
			dropped = drop(strings.TrimSpace(name))
		}
	}
	if !dropped {
		return "", false
	}
	var b strings.Builder
	for _, h := range headers {
		for rest := h; rest != ""; {
			var pair string
			pair, rest, _ = strings.Cut(rest, ";")
			pair = strings.TrimSpace(pair)
			name, _, _ := strings.Cut(pair, "=")
			if pair == "" || drop(strings.TrimSpace(name)) {
				continue
			}
			if b.Len() > 0 {
				b.WriteString("; ")
			}
			b.WriteString(pair)
		}
	}
	return b.String(), true
}

// Cookie is a name and value to set.
type Cookie struct{ Name, Value string }

// chunkName is the name of chunk i of the cookie called name: name, name.1, name.2, ...
func chunkName(name string, i int) string {
	if i == 0 {
		return name
	}
	return name + "." + strconv.Itoa(i)
}

// Split cuts value into cookies whose values are at most maxValue bytes: name, name.1,
// name.2, and so on. When there is more than one, the first value starts with the count
// and a dot ("3.…"), which base64url text never contains, so Join knows how many to read.
// It fails with ErrTooLarge beyond maxChunks cookies.
func Split(name, value string, maxValue, maxChunks int) ([]Cookie, error) {
	if len(value) <= maxValue {
		return []Cookie{{name, value}}, nil
	}
	// The count prefix takes room in the first chunk: at most "99." for 99 chunks.
	n := (len(value) + 3 + maxValue - 1) / maxValue
	if n > maxChunks || n > 99 {
		return nil, fmt.Errorf("%w: %d bytes need %d cookies, the limit is %d", ErrTooLarge, len(value), n, maxChunks)
	}
	prefix := strconv.Itoa(n) + "."
	cookies := make([]Cookie, 0, n)
	first := maxValue - len(prefix)
	cookies = append(cookies, Cookie{name, prefix + value[:first]})
	for rest, i := value[first:], 1; rest != ""; i++ {
		size := min(maxValue, len(rest))
		cookies = append(cookies, Cookie{chunkName(name, i), rest[:size]})
		rest = rest[size:]
	}
	return cookies, nil
}

// Join reassembles what Split made from the jar, taking the first value of each cookie:
// for a jar where each is sent once (JoinAll says when). found is false when the cookie
// is absent; an incomplete or malformed set is ErrInvalid. At most maxChunks are read.
func Join(jar Jar, name string, maxChunks int) (value string, found bool, err error) {
	first, ok := jar.Get(name)
	if !ok {
		return "", false, nil
	}
	count, rest, chunked := strings.Cut(first, ".")
	if !chunked {
		return first, true, nil
	}
	n, err := strconv.Atoi(count)
	if err != nil || n < 2 || n > maxChunks {
		return "", true, fmt.Errorf("%w: bad chunk count %q", ErrInvalid, count)
	}
	var b strings.Builder
	b.WriteString(rest)
	for i := 1; i < n; i++ {
		part, ok := jar.Get(chunkName(name, i))
		if !ok {
			return "", true, fmt.Errorf("%w: chunk %d of %d is missing", ErrInvalid, i, n)
		}
		b.WriteString(part)
	}
	return b.String(), true, nil
}

// sentOnce reports whether the cookie called name, and each of its numbered chunks that
// is there, appear at most once in the jar: one scan, nothing allocated.
func (j Jar) sentOnce(name string) bool {
	seen := [16]uint8{} // by chunk number; a name whose number is past 15 counts as a repeat
	once := true
	j.each(func(n, _ string) bool {
		i, ok := chunkIndex(n, name)
		if !ok {
			return true
		}
		if i >= len(seen) || seen[i] > 0 {
			once = false
			return false
		}
		seen[i]++
		return true
	})
	return once
}

// chunkIndex reports whether n is name (0) or one of its chunks name.i (i).
func chunkIndex(n, name string) (int, bool) {
	rest, ok := strings.CutPrefix(n, name)
	switch {
	case !ok:
		return 0, false
	case rest == "":
		return 0, true
	case len(rest) < 2 || rest[0] != '.':
		return 0, false
	}
	i, err := strconv.Atoi(rest[1:])
	if err != nil || i < 1 || strconv.Itoa(i) != rest[1:] {
		return 0, false
	}
	return i, true
}

// MaxCandidates bounds the ways JoinAll puts duplicate cookies together.
const MaxCandidates = 4

// JoinAll reassembles what Split made from the jar in every way the jar allows. A name
// sent more than once (a sibling subdomain can set a cookie of the same name with a
// Domain of its own, and the browser then sends both, in an order the server cannot
// rely on) gives one candidate per distinct value: none is chosen by its position, and
// the caller decides which, if any, to trust. found is false when the cookie is absent.
// Candidates that are incomplete or malformed are left out; when none is left, the
// error says why. More than MaxCandidates is ErrInvalid.
func JoinAll(jar Jar, name string, maxChunks int) (values []string, found bool, err error) {
	if jar.sentOnce(name) {
		// The common case, without the bookkeeping: the cookie once, each chunk once.
		value, found, err := Join(jar, name, maxChunks)
		if err != nil || !found {
			return nil, found, err
		}
		return []string{value}, true, nil
	}
	firsts := jar.All(name)
	if len(firsts) == 0 {
		return nil, false, nil
	}
	for _, first := range firsts {
		count, rest, chunked := strings.Cut(first, ".")
		if !chunked {
			if values = appendCandidate(values, first); len(values) > MaxCandidates {
				return nil, true, fmt.Errorf("%w: %s was sent too many times", ErrInvalid, name)
			}
			continue
		}
		n, convErr := strconv.Atoi(count)
		if convErr != nil || n < 2 || n > maxChunks {
			err = fmt.Errorf("%w: bad chunk count %q", ErrInvalid, count)
			continue
		}
		partial := []string{rest}
		for i := 1; i < n && len(partial) > 0; i++ {
			parts := jar.All(chunkName(name, i))
			if len(parts) == 0 {
				err = fmt.Errorf("%w: chunk %d of %d is missing", ErrInvalid, i, n)
				partial = nil
				break
			}
			if len(partial)*len(parts) > MaxCandidates {
				return nil, true, fmt.Errorf("%w: %s and its chunks were sent too many times", ErrInvalid, name)
			}
			var next []string
			for _, p := range partial {
				for _, part := range parts {
					next = append(next, p+part)
				}
			}
			partial = next
		}
		for _, v := range partial {
			values = appendCandidate(values, v)
		}
		if len(values) > MaxCandidates {
			return nil, true, fmt.Errorf("%w: %s and its chunks were sent too many times", ErrInvalid, name)
		}
	}
	if len(values) == 0 {
		return nil, true, err
	}
	return values, true, nil
}

func appendCandidate(values []string, v string) []string {
	if slices.Contains(values, v) {
		return values
	}
	return append(values, v)
}

// Present lists the cookies of the jar that belong to the cookie called name (its chunks
// up to maxChunks), so that stale ones can be cleared.
func Present(jar Jar, name string, maxChunks int) []string {
	var names []string
	for i := 0; i < maxChunks; i++ {
		if _, ok := jar.Get(chunkName(name, i)); ok {
			names = append(names, chunkName(name, i))
		}
	}
	return names
}

// Attributes are the Set-Cookie attributes entra-auth uses. Path is always / and
// HttpOnly always set.
type Attributes struct {
	// Domain, when set, shares the cookie with subdomains; it rules out the __Host- prefix.
	Domain string
	// Secure restricts the cookie to HTTPS. Required by the __Host- and __Secure- prefixes.
	Secure bool
	// SameSite is Lax, Strict or None.
	SameSite string
}

// Set returns a Set-Cookie header value for c that lives maxAge seconds.
func (a Attributes) Set(c Cookie, maxAge int) string {
	var b strings.Builder
	b.Grow(len(c.Name) + len(c.Value) + 80)
	b.WriteString(c.Name)
	b.WriteByte('=')
	b.WriteString(c.Value)
	b.WriteString("; Path=/; Max-Age=")
	b.WriteString(strconv.Itoa(maxAge))
	if a.Domain != "" {
		b.WriteString("; Domain=")
		b.WriteString(a.Domain)
	}
	if a.Secure {
		b.WriteString("; Secure")
	}
	b.WriteString("; HttpOnly")
	if a.SameSite != "" {
		b.WriteString("; SameSite=")
		b.WriteString(a.SameSite)
	}
	return b.String()
}

// Clear returns a Set-Cookie header value that deletes the cookie called name.
func (a Attributes) Clear(name string) string {
	return a.Set(Cookie{Name: name}, 0)
}
