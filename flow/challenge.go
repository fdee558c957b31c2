package flow

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/session"
)

// Claims challenges from the application (follow_claims_challenges): an application that
// checks tokens itself (Continuous Access Evaluation, a Conditional Access context of its
// own) answers 401 with WWW-Authenticate: Bearer error="insufficient_claims",
// claims="<base64 of a claims request>". For a browser's GET, the filter turns that into
// a sign-in asking Entra for those claims and back to the page, instead of showing the
// 401; once per page and session within claimsRoundWindow, so that an application that
// keeps asking cannot loop the browser.

// claimsRoundWindow is how long after one claims-challenge sign-in for a page another
// challenge for it is passed on to the browser rather than followed.
const claimsRoundWindow = 5 * time.Minute

// maxClaimsRequest bounds a claims request taken from an application.
const maxClaimsRequest = 2048

// ClaimsChallenge reads an upstream answer: for a 401 whose WWW-Authenticate values hold
// a Bearer challenge with error="insufficient_claims" and claims="...", the claims
// request, decoded and checked (a JSON object of at most maxClaimsRequest bytes whose
// members are id_token, access_token or userinfo). It returns "" for any other answer,
// and ErrClaimsRequest for a challenge whose claims cannot be passed on.
func ClaimsChallenge(status int, wwwAuthenticate []string) (string, error) {
	if status != 401 {
		return "", nil
	}
	for _, v := range wwwAuthenticate {
		scheme, params, _ := strings.Cut(strings.TrimSpace(v), " ")
		if !strings.EqualFold(scheme, "Bearer") || authParam(params, "error") != "insufficient_claims" {
			continue
		}
		encoded := authParam(params, "claims")
		if encoded == "" {
			return "", fmt.Errorf("%w: no claims parameter", ErrClaimsRequest)
		}
		return checkClaimsRequest(encoded)
	}
	return "", nil
}

// authParam returns the value of the auth-param name in params (name="value" or
// name=token, comma-separated), or "". Values of claims challenges (base64, error codes)
// hold no quote or backslash, so escapes are not undone: a value with one is refused by
// the checks that follow.
func authParam(params, name string) string {
	for len(params) > 0 {
		params = strings.TrimLeft(params, " ,")
		key, rest, ok := strings.Cut(params, "=")
		if !ok {
			return ""
		}
		var value string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return ""
			}
			value, params = rest[1:1+end], rest[2+end:]
		} else {
			value, params, _ = strings.Cut(rest, ",")
		}
		if strings.EqualFold(strings.TrimSpace(key), name) {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

func checkClaimsRequest(encoded string) (string, error) {
	if len(encoded) > 2*maxClaimsRequest {
		return "", fmt.Errorf("%w: longer than %d bytes", ErrClaimsRequest, maxClaimsRequest)
	}
	var raw []byte
	var err error
	trimmed := strings.TrimRight(encoded, "=")
	if strings.ContainsAny(trimmed, "-_") {
		raw, err = base64.RawURLEncoding.DecodeString(trimmed)
	} else {
		raw, err = base64.RawStdEncoding.DecodeString(trimmed)
	}
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: not base64", ErrClaimsRequest)
	case len(raw) > maxClaimsRequest:
		return "", fmt.Errorf("%w: longer than %d bytes", ErrClaimsRequest, maxClaimsRequest)
	case !gjson.ValidBytes(raw) || !gjson.ParseBytes(raw).IsObject():
		return "", fmt.Errorf("%w: not a JSON object", ErrClaimsRequest)
	}
	var bad string
	gjson.ParseBytes(raw).ForEach(func(k, v gjson.Result) bool {
		switch k.String() {
		case "id_token", "access_token", "userinfo":
			if v.IsObject() {
				return true
			}
		}
		bad = k.String()
		return false
	})
	if bad != "" {
		return "", fmt.Errorf("%w: member %q is not id_token, access_token or userinfo with an object", ErrClaimsRequest, bad)
	}
	return string(raw), nil
}

// FollowsClaimsChallenge reports whether a claims challenge the application answered r
// with is to be followed: follow_claims_challenges is on, r is a browser's GET with a
// session, and no claims-challenge sign-in for this page happened within the window.
func (f *Flow) FollowsClaimsChallenge(r *Request, s *session.Session) bool {
	if !f.cfg.FollowClaimsChallenges || s == nil || r.Method != "GET" || !r.IsBrowser() {
		return false
	}
	return s.ChallengePage != pageKey(SafeReturnPath(r.Path)) || !f.now().Before(s.ChallengeAt.Add(claimsRoundWindow))
}

// pageKey names a page in the session cookie in a few bytes, however long its path.
func pageKey(path string) string {
	sum := sha256.Sum256([]byte(path))
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// StartClaimsChallenge starts the sign-in the application asked for: the authorize
// request carries its claims request, and the browser comes back to the page. The
// session it ends with records the round (ChallengeRound).
func (f *Flow) StartClaimsChallenge(r *Request, d *Discovery, claims string) (*Response, error) {
	return f.startSignIn(r, d, r.Path, signInOptions{claims: claims})
}

// ChallengeRound records on a session made by a claims-challenge sign-in which page
// asked, and when.
func (f *Flow) ChallengeRound(cb *Callback, s *session.Session) {
	if cb.SignIn.Challenged {
		s.ChallengePage, s.ChallengeAt = pageKey(cb.SignIn.ReturnTo), f.now()
	}
}
