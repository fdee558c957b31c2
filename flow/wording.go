package flow

import (
	"strconv"
	"strings"
)

// Text from a request (the callback's error and error_description, a header's value)
// never reaches a page or a log line as it came: known OAuth and Entra error codes map to
// fixed wording, anything else to a generic message, and logged values are quoted with
// their control characters escaped, so that nobody can write into a page or forge a log
// line.

// oauthWording are the error codes of RFC 6749 (4.1.2.1, 5.2) and OpenID Connect Core
// (3.1.2.6), in the words a person signing in can act on.
var oauthWording = map[string]string{
	"access_denied":              "Sign-in was cancelled, or consent was refused.",
	"consent_required":           "This application needs consent that has not been given.",
	"interaction_required":       "Entra ID needs you to complete the sign-in interactively.",
	"login_required":             "Entra ID needs you to sign in again.",
	"account_selection_required": "Entra ID needs you to choose an account.",
	"invalid_request":            "Entra ID refused the sign-in request as malformed.",
	"invalid_scope":              "Entra ID refused the permissions this application asked for.",
	"unauthorized_client":        "This application is not allowed to sign users in this way.",
	"unsupported_response_type":  "Entra ID does not support the sign-in this application asked for.",
	"server_error":               "Entra ID met an error while signing you in.",
	"temporarily_unavailable":    "Entra ID is temporarily unavailable.",
	"invalid_grant":              "The sign-in code was already used or has expired.",
	"invalid_client":             "Entra ID did not accept this application's credentials.",
	"unsupported_grant_type":     "Entra ID does not support this kind of token request.",
}

// entraWording are Entra ID error numbers (AADSTS) people meet at sign-in.
var entraWording = map[int64]string{
	50011:  "The reply address registered for this application does not match this site.",
	50020:  "Your account is not from a tenant this application accepts.",
	50105:  "Your account is not assigned to this application. Ask your administrator for access.",
	50126:  "The user name or password is not correct.",
	53003:  "Your organization's Conditional Access policy blocked this sign-in.",
	65001:  "This application needs consent that has not been given.",
	90072:  "Your account does not exist in this application's tenant.",
	700016: "This application is not registered in the directory it signs in with.",
}

// describeOAuthError is what a page says of an OAuth error: the fixed words for a known Entra
// number or OAuth code, else generic, which a page may show as it is.
func describeOAuthError(e *OAuthError, generic string) string {
	for _, n := range e.EntraCodes {
		if w, ok := entraWording[n]; ok {
			return w + " (AADSTS" + strconv.FormatInt(n, 10) + ")"
		}
	}
	if n, ok := entraNumber(e.Description); ok {
		if w, ok := entraWording[n]; ok {
			return w + " (AADSTS" + strconv.FormatInt(n, 10) + ")"
		}
	}
	if w, ok := oauthWording[e.Code]; ok {
		return w + " (" + e.Code + ")"
	}
	return generic
}

// entraNumber reads the AADSTS number an error_description starts with.
func entraNumber(description string) (int64, bool) {
	rest, ok := strings.CutPrefix(description, "AADSTS")
	if !ok {
		return 0, false
	}
	end := 0
	for end < len(rest) && end < 9 && '0' <= rest[end] && rest[end] <= '9' {
		end++
	}
	n, err := strconv.ParseInt(rest[:end], 10, 64)
	return n, err == nil
}

// logSafe quotes request-derived text for a log line: control characters and invalid
// UTF-8 escaped, at most 200 bytes of it.
func logSafe(s string) string {
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strconv.Quote(s)
}

// SafeRequestID returns a request id fit for pages and logs (visible ASCII, no spaces or
// quotes, at most 128 bytes), or "" for one that is not: the caller makes its own.
func SafeRequestID(id string) string {
	if len(id) == 0 || len(id) > 128 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c <= ' ' || c >= 0x7f || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' {
			return ""
		}
	}
	return id
}
