package flow

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/entra-auth/entra-auth/config"
	"github.com/entra-auth/entra-auth/jwks"
)

// HTTPRequest is a call for the filter to dispatch through the IdP cluster.
type HTTPRequest struct {
	Method    string
	Authority string // :authority, the URL's host
	Path      string // :path, with the query
	Headers   [][2]string
	Body      []byte
}

// Pairs returns the request's headers as proxy_http_call takes them: :method, :path
// and :authority first.
func (r *HTTPRequest) Pairs() [][2]string {
	return append([][2]string{{":method", r.Method}, {":path", r.Path}, {":authority", r.Authority}}, r.Headers...)
}

func requestTo(method, rawURL string) (*HTTPRequest, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%w: %q is not an absolute URL", ErrIdPResponse, rawURL)
	}
	return &HTTPRequest{Method: method, Authority: u.Host, Path: u.RequestURI(), Headers: [][2]string{{"accept", "application/json"}}}, nil
}

// Discovery is what entra-auth uses of the OpenID Provider Configuration.
type Discovery struct {
	// Issuer may contain {tenantid} (the multi-tenant endpoints).
	Issuer                string
	AuthorizationEndpoint string
	TokenEndpoint         string
	JWKSURI               string
	// EndSessionEndpoint is empty when the provider has none.
	EndSessionEndpoint string
}

// DiscoveryRequest is the GET of the configured provider's discovery document.
func DiscoveryRequest(c *config.Config) (*HTTPRequest, error) {
	return requestTo("GET", c.DiscoveryURL())
}

// maxIdPBody bounds the answers read from the identity provider.
const maxIdPBody = 1 << 20

// ParseDiscovery reads the discovery answer. The token and JWKS endpoints must be on the
// authority's host: they are called through idp_cluster, which reaches only that host.
func ParseDiscovery(c *config.Config, status int, body []byte) (*Discovery, error) {
	if err := checkAnswer("discovery document "+c.DiscoveryURL(), status, body); err != nil {
		return nil, err
	}
	doc := gjson.ParseBytes(body)
	d := &Discovery{
		Issuer:                doc.Get("issuer").String(),
		AuthorizationEndpoint: doc.Get("authorization_endpoint").String(),
		TokenEndpoint:         doc.Get("token_endpoint").String(),
		JWKSURI:               doc.Get("jwks_uri").String(),
		EndSessionEndpoint:    doc.Get("end_session_endpoint").String(),
	}
	authority, _ := url.Parse(c.Authority)
	for _, f := range []struct {
		name, value string
		sameHost    bool
	}{
		{"issuer", d.Issuer, false},
		{"authorization_endpoint", d.AuthorizationEndpoint, false},
		{"token_endpoint", d.TokenEndpoint, true},
		{"jwks_uri", d.JWKSURI, true},
	} {
		u, err := url.Parse(f.value)
		if f.value == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("%w: discovery document has no usable %s", ErrIdPResponse, f.name)
		}
		if f.sameHost && !strings.EqualFold(u.Host, authority.Host) {
			return nil, fmt.Errorf("%w: %s %s is not on the authority's host %s, which idp_cluster reaches", ErrIdPResponse, f.name, f.value, authority.Host)
		}
	}
	if d.EndSessionEndpoint != "" {
		if u, err := url.Parse(d.EndSessionEndpoint); err != nil || !u.IsAbs() {
			d.EndSessionEndpoint = ""
		}
	}
	return d, nil
}

// KeysRequest is the GET of the JWKS.
func (d *Discovery) KeysRequest() (*HTTPRequest, error) {
	return requestTo("GET", d.JWKSURI)
}

// ParseKeys reads the JWKS answer.
func ParseKeys(status int, body []byte) (*jwks.Set, error) {
	if err := checkAnswer("key set", status, body); err != nil {
		return nil, err
	}
	set, err := jwks.Parse(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIdPResponse, err)
	}
	return set, nil
}

// checkAnswer sorts a non-200 answer: no answer or a 5xx means the provider is
// unavailable (Envoy answers 503 when it cannot connect and 504 on timeout); anything
// else that is not a 200 with a JSON object is unusable.
func checkAnswer(what string, status int, body []byte) error {
	switch {
	case status == 0:
		return fmt.Errorf("%w: no answer for the %s (connection reset or buffer limit)", ErrIdPUnavailable, what)
	case status >= 500:
		return fmt.Errorf("%w: the %s answered %d", ErrIdPUnavailable, what, status)
	case status != 200:
		return fmt.Errorf("%w: the %s answered %d (check tenant_id and authority): %s", ErrIdPResponse, what, status, snippet(body))
	case len(body) > maxIdPBody:
		return fmt.Errorf("%w: the %s is larger than %d bytes", ErrIdPResponse, what, maxIdPBody)
	case !gjson.ValidBytes(body) || !gjson.ParseBytes(body).IsObject():
		return fmt.Errorf("%w: the %s is not a JSON object", ErrIdPResponse, what)
	}
	return nil
}

// snippet is the start of a body, safe for a log line: errors from Entra carry codes
// and trace ids, never tokens.
func snippet(b []byte) string {
	const n = 200
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, string(b[:min(len(b), n)]))
	if len(b) > n {
		s += "…"
	}
	return s
}
