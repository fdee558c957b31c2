package flow

import (
	"slices"
	"strings"

	"github.com/entra-auth/entra-auth/upstreamsig"
)

// Signed returns headers with the signature header added, when upstream_signature is
// configured: what the filter sets on a request it lets through, signed with the
// request's method, authority and path (as judged and sent upstream) and the time. The
// caller has removed every client-sent copy of the signature header (it is an
// x-auth-request-* one). Without the setting, headers come back unchanged.
func (f *Flow) Signed(r *Request, headers [][2]string) [][2]string {
	if f.cfg.UpstreamSignature == nil {
		return headers
	}
	lower := make([][2]string, len(headers))
	for i, h := range headers {
		lower[i] = [2]string{strings.ToLower(h[0]), h[1]}
	}
	if f.signer == nil {
		f.signer = upstreamsig.NewSigner(f.cfg.UpstreamSignature)
	}
	value := f.signer.Sign(f.now(), upstreamsig.Request{Method: r.Method, Authority: r.Authority, Path: r.Path}, lower)
	return append(slices.Clip(headers), [2]string{upstreamsig.Header, value})
}
