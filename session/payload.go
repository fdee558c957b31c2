package session

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Session is what a signed-in browser carries, sealed: who the user is, for the identity
// headers and /.auth/me, how long the session lasts, and the tokens that keep it alive.
type Session struct {
	// ID names the session from sign-in to its end, across token refreshes.
	ID                                  string
	Issuer, Subject, ObjectID, TenantID string
	// Username is preferred_username, else upn, else email.
	Username, Email, Name string
	Groups, Roles         []string
	// LoginHint is the ID token's login_hint, for a quiet logout.
	LoginHint string
	// UserID is what the application's user-sync endpoint answered, if anything;
	// SyncFingerprint summarises what was sent to it, so a later sync can be skipped
	// when nothing changed.
	UserID, SyncFingerprint string
	// Nonce is the sign-in's nonce: an ID token from a refresh may repeat it, and must not
	// carry another.
	Nonce string
	// AccessToken and RefreshToken are the token endpoint's latest; AccessExpires is when
	// the access token does. Without a refresh token (no offline_access) nothing is
	// refreshed and the session simply lasts until Expires.
	AccessToken, RefreshToken string
	AccessExpires             time.Time
	// IssuedAt is when the user signed in; Expires ends the session whatever happens.
	IssuedAt, Expires time.Time
	// How the user signed in, from the latest ID token: ACRs are the Conditional Access
	// authentication contexts satisfied (Entra's acrs claim: c1..c99), AMR the
	// authentication methods (amr), AuthTime when the user last actively authenticated
	// (auth_time).
	ACRs, AMR []string
	AuthTime  time.Time
	// ChallengePage and ChallengeAt record the last sign-in the application asked for
	// with a claims challenge: the page (a digest of its path), and when. One round per
	// page in a while bounds an application that keeps asking.
	ChallengePage string
	ChallengeAt   time.Time
}

// Expired reports whether the session is over at now.
func (s *Session) Expired(now time.Time) bool { return !now.Before(s.Expires) }

// SignIn is the state of one sign-in in progress, sealed in a short-lived cookie named
// after its state, so that several tabs can sign in at once.
type SignIn struct {
	State, Nonce, CodeVerifier string
	// ReturnTo is the same-origin path to go back to after sign-in.
	ReturnTo string
	// RedirectURI is the redirect_uri sent to the authorize endpoint; the token request
	// must repeat it.
	RedirectURI string
	Expires     time.Time
	// A step-up sign-in's requirement, checked against the ID token it ends with: one of
	// ACRs (authentication contexts), and an authentication no older than MaxAge.
	ACRs   []string
	MaxAge time.Duration
	// Challenged marks a sign-in the application asked for with a claims challenge.
	Challenged bool
}

// The payload format: a version byte, then fields as (tag, uvarint length, bytes) for
// text and (tag, varint) for numbers such as Unix times; a number's tag has the high bit
// set, so every field can be skipped without knowing it. Decoders skip unknown tags, so
// fields can be added without a new version; a removed field's tag is never reused.
const payloadV1 = 1

const (
	tagIssuer byte = iota + 1
	tagSubject
	tagObjectID
	tagTenantID
	tagUsername
	tagEmail
	tagName
	tagGroup
	tagRole
	tagLoginHint
	tagState
	tagNonce
	tagCodeVerifier
	tagReturnTo
	tagRedirectURI
	tagUserID
	tagSyncFingerprint
	tagSessionID
	tagAccessToken
	tagRefreshToken
	tagACR
	tagAMR
	tagChallengePage
)

const (
	numberTag        byte = 0x80
	tagIssuedAt           = numberTag | 1
	tagExpires            = numberTag | 2
	tagAccessExpires      = numberTag | 3
	tagAuthTime           = numberTag | 4
	tagMaxAge             = numberTag | 5
	tagChallengeAt        = numberTag | 6
	tagChallenged         = numberTag | 7
)

// maxListItems bounds repeated fields (groups, roles) when decoding.
const maxListItems = 1000

// Marshal encodes the session.
func (s *Session) Marshal() []byte {
	b := make([]byte, 0, 128+len(s.Groups)*40+len(s.AccessToken)+len(s.RefreshToken))
	b = append(b, payloadV1)
	b = appendText(b, tagSessionID, s.ID)
	b = appendText(b, tagIssuer, s.Issuer)
	b = appendText(b, tagSubject, s.Subject)
	b = appendText(b, tagObjectID, s.ObjectID)
	b = appendText(b, tagTenantID, s.TenantID)
	b = appendText(b, tagUsername, s.Username)
	b = appendText(b, tagEmail, s.Email)
	b = appendText(b, tagName, s.Name)
	for _, g := range s.Groups {
		b = appendField(b, tagGroup, g)
	}
	for _, r := range s.Roles {
		b = appendField(b, tagRole, r)
	}
	b = appendText(b, tagLoginHint, s.LoginHint)
	b = appendText(b, tagUserID, s.UserID)
	b = appendText(b, tagSyncFingerprint, s.SyncFingerprint)
	b = appendText(b, tagNonce, s.Nonce)
	b = appendText(b, tagAccessToken, s.AccessToken)
	b = appendText(b, tagRefreshToken, s.RefreshToken)
	b = appendTime(b, tagAccessExpires, s.AccessExpires)
	b = appendTime(b, tagIssuedAt, s.IssuedAt)
	b = appendTime(b, tagExpires, s.Expires)
	for _, a := range s.ACRs {
		b = appendField(b, tagACR, a)
	}
	for _, a := range s.AMR {
		b = appendField(b, tagAMR, a)
	}
	b = appendTime(b, tagAuthTime, s.AuthTime)
	b = appendText(b, tagChallengePage, s.ChallengePage)
	b = appendTime(b, tagChallengeAt, s.ChallengeAt)
	return b
}

// UnmarshalSession decodes what Marshal encoded. A session without an expiry is invalid.
func UnmarshalSession(b []byte) (*Session, error) {
	s := &Session{}
	var groups, roles, acrs, amr int
	err := decode(b, func(tag byte, text string, n int64) error {
		switch tag {
		case tagACR:
			if acrs++; acrs > maxListItems {
				return fmt.Errorf("%w: too many authentication contexts", ErrInvalid)
			}
			s.ACRs = append(s.ACRs, text)
		case tagAMR:
			if amr++; amr > maxListItems {
				return fmt.Errorf("%w: too many authentication methods", ErrInvalid)
			}
			s.AMR = append(s.AMR, text)
		case tagAuthTime:
			s.AuthTime = time.Unix(n, 0)
		case tagChallengePage:
			s.ChallengePage = text
		case tagChallengeAt:
			s.ChallengeAt = time.Unix(n, 0)
		case tagIssuer:
			s.Issuer = text
		case tagSubject:
			s.Subject = text
		case tagObjectID:
			s.ObjectID = text
		case tagTenantID:
			s.TenantID = text
		case tagUsername:
			s.Username = text
		case tagEmail:
			s.Email = text
		case tagName:
			s.Name = text
		case tagGroup:
			if groups++; groups > maxListItems {
				return fmt.Errorf("%w: too many groups", ErrInvalid)
			}
			s.Groups = append(s.Groups, text)
		case tagRole:
			if roles++; roles > maxListItems {
				return fmt.Errorf("%w: too many roles", ErrInvalid)
			}
			s.Roles = append(s.Roles, text)
		case tagLoginHint:
			s.LoginHint = text
		case tagUserID:
			s.UserID = text
		case tagSyncFingerprint:
			s.SyncFingerprint = text
		case tagSessionID:
			s.ID = text
		case tagNonce:
			s.Nonce = text
		case tagAccessToken:
			s.AccessToken = text
		case tagRefreshToken:
			s.RefreshToken = text
		case tagAccessExpires:
			s.AccessExpires = time.Unix(n, 0)
		case tagIssuedAt:
			s.IssuedAt = time.Unix(n, 0)
		case tagExpires:
			s.Expires = time.Unix(n, 0)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.Expires.IsZero() || s.Subject == "" {
		return nil, fmt.Errorf("%w: session without subject or expiry", ErrInvalid)
	}
	return s, nil
}

// Marshal encodes the sign-in state.
func (s *SignIn) Marshal() []byte {
	b := make([]byte, 0, 256)
	b = append(b, payloadV1)
	b = appendText(b, tagState, s.State)
	b = appendText(b, tagNonce, s.Nonce)
	b = appendText(b, tagCodeVerifier, s.CodeVerifier)
	b = appendText(b, tagReturnTo, s.ReturnTo)
	b = appendText(b, tagRedirectURI, s.RedirectURI)
	b = appendTime(b, tagExpires, s.Expires)
	for _, a := range s.ACRs {
		b = appendField(b, tagACR, a)
	}
	if s.MaxAge > 0 {
		b = append(b, tagMaxAge)
		b = binary.AppendVarint(b, int64(s.MaxAge/time.Second))
	}
	if s.Challenged {
		b = append(b, tagChallenged)
		b = binary.AppendVarint(b, 1)
	}
	return b
}

// UnmarshalSignIn decodes what SignIn.Marshal encoded.
func UnmarshalSignIn(b []byte) (*SignIn, error) {
	s := &SignIn{}
	err := decode(b, func(tag byte, text string, n int64) error {
		switch tag {
		case tagState:
			s.State = text
		case tagNonce:
			s.Nonce = text
		case tagCodeVerifier:
			s.CodeVerifier = text
		case tagReturnTo:
			s.ReturnTo = text
		case tagRedirectURI:
			s.RedirectURI = text
		case tagExpires:
			s.Expires = time.Unix(n, 0)
		case tagACR:
			if len(s.ACRs) >= maxListItems {
				return fmt.Errorf("%w: too many authentication contexts", ErrInvalid)
			}
			s.ACRs = append(s.ACRs, text)
		case tagMaxAge:
			s.MaxAge = time.Duration(n) * time.Second
		case tagChallenged:
			s.Challenged = n == 1
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if s.State == "" || s.Nonce == "" || s.CodeVerifier == "" || s.Expires.IsZero() {
		return nil, fmt.Errorf("%w: incomplete sign-in state", ErrInvalid)
	}
	return s, nil
}

func isNumber(tag byte) bool { return tag&numberTag != 0 }

func appendField(b []byte, tag byte, s string) []byte {
	b = append(b, tag)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// appendText leaves out empty text: absent and empty decode the same.
func appendText(b []byte, tag byte, s string) []byte {
	if s == "" {
		return b
	}
	return appendField(b, tag, s)
}

func appendTime(b []byte, tag byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	b = append(b, tag)
	return binary.AppendVarint(b, t.Unix())
}

// decode walks the fields of a payload, bounds-checking every length. The text fields
// are slices of one string copied from b: one allocation rather than one per field.
func decode(raw []byte, field func(tag byte, text string, n int64) error) error {
	if len(raw) == 0 || raw[0] != payloadV1 {
		return fmt.Errorf("%w: unknown payload version", ErrInvalid)
	}
	all := string(raw)
	b := raw[1:]
	for len(b) > 0 {
		tag := b[0]
		b = b[1:]
		if isNumber(tag) {
			n, size := binary.Varint(b)
			if size <= 0 {
				return fmt.Errorf("%w: bad number field", ErrInvalid)
			}
			b = b[size:]
			if err := field(tag, "", n); err != nil {
				return err
			}
			continue
		}
		length, size := binary.Uvarint(b)
		if size <= 0 || length > uint64(len(b)-size) {
			return fmt.Errorf("%w: bad field length", ErrInvalid)
		}
		start := len(raw) - len(b) + size
		text := all[start : start+int(length)]
		b = b[size+int(length):]
		if err := field(tag, text, 0); err != nil {
			return err
		}
	}
	return nil
}
