package session

import "errors"

var (
	// ErrInvalid is wrapped by every reason a cookie does not open: it is no session.
	ErrInvalid = errors.New("session: invalid cookie")
	// ErrKey reports an unusable cookie secret (configuration, not traffic).
	ErrKey = errors.New("session: unusable cookie secret")
	// ErrTooLarge reports a value that would not fit in the allowed cookies.
	ErrTooLarge = errors.New("session: value too large for the cookie limit")
)
