package flow

import (
	"strings"
	"testing"
)

// Text a client writes (the callback's error and error_description can be anything)
// never reaches a page or a log line as it came.
func TestNothingVerbatimFromTheRequest(t *testing.T) {
	f, _ := newFlow(t, "")
	forged := &OAuthError{Kind: ErrSignInRefused, Code: "<script>alert(1)</script>", Description: "evil\n[critical] forged line"}
	for _, tc := range []struct {
		name   string
		err    *OAuthError
		want   string
		absent []string
	}{
		{"unknown code", forged, "Entra ID did not sign you in.", []string{"<script", "evil", "forged"}},
		{"known code", &OAuthError{Kind: ErrSignInRefused, Code: "access_denied", Description: "<b>x</b>"}, "Sign-in was cancelled, or consent was refused. (access_denied)", []string{"<b>"}},
		{"known Entra number in the description", &OAuthError{Kind: ErrSignInRefused, Code: "invalid_request",
			Description: "AADSTS50105: Your administrator has configured <evil>"}, "not assigned to this application", []string{"<evil>"}},
		{"known Entra number in error_codes", &OAuthError{Kind: ErrTokenEndpoint, Code: "invalid_client", EntraCodes: []int64{700016}}, "(AADSTS700016)", nil},
		{"token endpoint, unknown code", &OAuthError{Kind: ErrTokenEndpoint, Code: "x\ny"}, "a reason this proxy does not know", []string{"x\ny"}},
	} {
		msg := f.Explain(tc.err).Message
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%s: %q lacks %q", tc.name, msg, tc.want)
		}
		for _, a := range tc.absent {
			if strings.Contains(msg, a) {
				t.Errorf("%s: %q carries the client's %q", tc.name, msg, a)
			}
		}
	}
	if logged := forged.Error(); strings.ContainsAny(logged, "\n\r") || !strings.Contains(logged, `\n[critical]`) {
		t.Errorf("logged as %q: control characters must be escaped", logged)
	}
	if logged := logSafe(strings.Repeat("a", 1000)); len(logged) > 210 {
		t.Errorf("logSafe kept %d bytes", len(logged))
	}
}

func TestSafeRequestID(t *testing.T) {
	for id, want := range map[string]bool{
		"req-1": true, "5b0f0c7e-8d43-4ad7-a1f1-1f0e3e7d2b1a": true, "a.b:c_d": true,
		"": false, "has space": false, "<script>": false, `quo"te`: false, "new\nline": false,
		strings.Repeat("a", 129): false, "ünicode": false,
	} {
		if got := SafeRequestID(id) == id && id != ""; got != want {
			t.Errorf("SafeRequestID(%q) kept = %v, want %v", id, got, want)
		}
	}
}
