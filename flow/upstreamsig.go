package flow

import (
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/upstreamsig"
)

// parseUpstreamSignature reads upstream_signature: {"secret_env": NAME} (or an inline
// "secret"), the key the filter signs what it sends upstream with (package upstreamsig).
func (p *configParser) parseUpstreamSignature() []byte {
	block := p.root.Get("upstream_signature")
	if !block.Exists() {
		return nil
	}
	if !block.IsObject() {
		p.fail("upstream_signature", "must be an object with secret_env, naming a VM environment variable that holds the secret")
		return nil
	}
	sub := &configParser{root: block, prefix: "upstream_signature.", getenv: p.getenv}
	defer func() { p.problems = append(p.problems, sub.problems...) }()
	known := []string{"secret", "secret_env"}
	block.ForEach(func(k, _ gjson.Result) bool {
		if !slices.Contains(known, k.String()) {
			sub.fail(k.String(), "unknown key; the keys are: %s", strings.Join(known, ", "))
		}
		return true
	})
	if inline := block.Get("secret"); inline.Exists() && inline.Type != gjson.String {
		sub.fail("secret", "must be a string (one secret: the application may accept several while you rotate)")
		return nil
	}
	secret, ok := sub.secret("secret", true)
	if !ok {
		return nil
	}
	if len(secret) < upstreamsig.MinSecretBytes {
		sub.fail("secret", "must be at least %d characters (for example: openssl rand -base64 32)", upstreamsig.MinSecretBytes)
		return nil
	}
	return []byte(secret)
}

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
