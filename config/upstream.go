package config

import (
	"net/url"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/upstreamsig"
)

// validateUpstream reads what the filter sends on, and fetches for, the upstream:
// forward_access_token, obo_scopes, obo_header, graph_cluster, graph_url and
// upstream_signature.
func validateUpstream(p *parser, c *Config) {
	p.parseDownstream(c)
	p.parseGraph(c)
	c.UpstreamSignature = p.parseUpstreamSignature()
}

// DefaultOBOHeader carries the on-behalf-of token to the upstream; its x-auth-request-
// prefix means a client's copy is always removed first.
const DefaultOBOHeader = "x-auth-request-obo-token"

// parseDownstream reads forward_access_token, obo_scopes and obo_header.
func (p *parser) parseDownstream(c *Config) {
	c.ForwardAccessToken = strings.ToLower(p.string("forward_access_token", ""))
	if c.ForwardAccessToken != "" && !isHeaderName(c.ForwardAccessToken) {
		p.fail("forward_access_token", "must be a header name, such as x-auth-request-access-token or authorization")
	}
	c.OBOScopes = p.strings("obo_scopes", true)
	c.OBOHeader = strings.ToLower(p.string("obo_header", DefaultOBOHeader))
	if !isHeaderName(c.OBOHeader) {
		p.fail("obo_header", "must be a header name")
	}
	if len(c.OBOScopes) > 0 && c.OBOHeader == c.ForwardAccessToken {
		p.fail("obo_header", "is the header forward_access_token uses; choose another")
	}
}

func isHeaderName(s string) bool {
	return s != "" && !strings.HasPrefix(s, ":") && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}

// DefaultGraphURL is Microsoft Graph's address.
const DefaultGraphURL = "https://graph.microsoft.com"

// parseGraph reads graph_cluster and graph_url.
func (p *parser) parseGraph(c *Config) {
	c.GraphCluster = p.string("graph_cluster", "")
	c.GraphURL = strings.TrimRight(p.string("graph_url", DefaultGraphURL), "/")
	if u, err := url.Parse(c.GraphURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		p.fail("graph_url", "must be Graph's address, such as %s", DefaultGraphURL)
	}
}

// parseUpstreamSignature reads upstream_signature: {"secret_env": NAME} (or an inline
// "secret"), the key the filter signs what it sends upstream with (package upstreamsig).
func (p *parser) parseUpstreamSignature() []byte {
	block := p.root.Get("upstream_signature")
	if !block.Exists() {
		return nil
	}
	if !block.IsObject() {
		p.fail("upstream_signature", "must be an object with secret_env, naming a VM environment variable that holds the secret")
		return nil
	}
	sub := p.sub(block, "upstream_signature.")
	defer func() { p.problems = append(p.problems, sub.problems...) }()
	sub.known(block, "secret", "secret_env")
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
