package flow

import (
	"fmt"
	"strings"
)

// NormalizePath returns the path of an origin-form request target as an upstream will
// read it, so that skip_paths and rules judge the path the upstream serves (RFC 3986):
// percent-encoded unreserved characters decoded and other encodings' hex in upper case
// (6.2.2.1, 6.2.2.2), repeated slashes merged, and dot segments removed (5.2.4), a ".."
// never climbing above the root. The query is kept as it came. A path with an encoded
// "/" or "\", a raw "\", a control character (raw or encoded), a broken percent-encoding
// or a double one ("%25" before two hex digits), or a fragment is ErrPath: servers
// disagree on those, so no answer given here would be safe.
func NormalizePath(target string) (string, error) {
	if !strings.HasPrefix(target, "/") {
		return "", fmt.Errorf("%w: it does not start with /", ErrPath)
	}
	path, query, hasQuery := strings.Cut(target, "?")
	if plainPath(path) {
		return target, nil // nothing to decode, merge or remove: no allocation
	}
	if strings.Contains(path, "#") {
		return "", fmt.Errorf("%w: a fragment", ErrPath)
	}
	decoded, err := decodeUnreserved(path)
	if err != nil {
		return "", err
	}
	out := removeDotSegments(decoded)
	if hasQuery {
		out += "?" + query
	}
	return out, nil
}

// plainPath reports whether path is already normal: no percent sign, backslash, "#" or
// control character, no empty segment and no dot segment. Most paths are.
func plainPath(path string) bool {
	for i := 0; i < len(path); i++ {
		switch c := path[i]; {
		case c == '%' || c == '\\' || c == '#' || c < 0x20 || c == 0x7f:
			return false
		case c == '/' && i+1 < len(path) && path[i+1] == '/':
			return false
		case c == '.' && path[i-1] == '/' && (i+1 == len(path) || path[i+1] == '/' ||
			(path[i+1] == '.' && (i+2 == len(path) || path[i+2] == '/'))):
			return false
		}
	}
	return true
}

// decodeUnreserved decodes percent-encoded unreserved characters, upper-cases the hex of
// the other encodings, and refuses what cannot be judged safely.
func decodeUnreserved(path string) (string, error) {
	var b strings.Builder
	b.Grow(len(path))
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '\\':
			return "", fmt.Errorf("%w: a backslash", ErrPath)
		case c < 0x20 || c == 0x7f:
			return "", fmt.Errorf("%w: a control character", ErrPath)
		case c != '%':
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
			return "", fmt.Errorf("%w: a broken percent-encoding", ErrPath)
		}
		v := unhex(path[i+1])<<4 | unhex(path[i+2])
		switch {
		case v == '/' || v == '\\':
			return "", fmt.Errorf("%w: an encoded slash or backslash", ErrPath)
		case v < 0x20 || v == 0x7f:
			return "", fmt.Errorf("%w: an encoded control character", ErrPath)
		case isUnreserved(v):
			b.WriteByte(v)
		default:
			b.WriteByte('%')
			b.WriteByte(upperHex(path[i+1]))
			b.WriteByte(upperHex(path[i+2]))
		}
		i += 2
	}
	out := b.String()
	// An encoded "%" before two hex digits, there from the start or once its neighbours
	// were decoded ("%25%32%65" is "%252e"): an upstream that decodes twice would find
	// another character there than the one judged.
	for i := strings.Index(out, "%25"); i >= 0; {
		if i+4 < len(out) && isHex(out[i+3]) && isHex(out[i+4]) {
			return "", fmt.Errorf("%w: a double percent-encoding", ErrPath)
		}
		next := strings.Index(out[i+3:], "%25")
		if next < 0 {
			break
		}
		i += 3 + next
	}
	return out, nil
}

// removeDotSegments merges repeated slashes and removes "." and ".." segments (RFC 3986
// 5.2.4) from a path that starts with "/". A path that ended in a dot segment, or a
// slash, ends in a slash.
func removeDotSegments(path string) string {
	var out []string
	segments := strings.Split(path[1:], "/")
	for i, seg := range segments {
		last := i == len(segments)-1
		switch seg {
		case "", ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/")
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func upperHex(c byte) byte {
	if 'a' <= c && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}
