package mockentra

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// GraphAudience is Microsoft Graph's application ID, the audience of tokens for Graph.
const GraphAudience = "00000003-0000-0000-c000-000000000000"

// AccessToken describes an access token for the mock to mint, shaped like Entra's.
type AccessToken struct {
	// User is the signed-in user of a delegated token; for an application token (client
	// credentials) leave it zero and set App.
	User User
	// App is the object id of the calling application's service principal, for an
	// application token (sub and oid are both that id).
	App string
	// TenantID is the tenant of an application token (a user's is User.TenantID).
	TenantID string
	// ClientID is the client the token was issued to (azp, appid).
	ClientID string
	// Audience is aud; Scopes go in scp (delegated), Roles in roles.
	Audience      string
	Scopes, Roles []string
	// Version is 1 (issuer https://sts.windows.net/{tid}/) or 2 (the default: issuer
	// IssuerBase/{tid}/v2.0).
	Version    int
	IssuerBase string
	// Lifetime defaults to the mock's token lifetime; Expired mints one that expired.
	Lifetime time.Duration
	Expired  bool
	// GraphNonce adds the nonce header Microsoft Graph's tokens carry.
	GraphNonce bool
	// Header adds header parameters (such as crit); UnknownKey signs with a key the mock
	// never published, under a kid it never published.
	Header     map[string]any
	UnknownKey bool
	// Claims sets claims as given, over the ones minted (a nil value removes one): for
	// tests of what a verifier must refuse in a token signed by the real key.
	Claims map[string]any
}

// MintAccessToken signs an access token with the mock's signing key, as Entra would issue
// it to a client: for tests of APIs that accept bearer tokens.
func (s *Server) MintAccessToken(a AccessToken) (string, error) {
	s.mu.Lock()
	key := s.keys[0]
	s.mu.Unlock()
	now := s.opts.Now()
	lifetime := a.Lifetime
	if lifetime == 0 {
		lifetime = s.opts.TokenLifetime
	}
	tid, sub, oid := a.User.TenantID, pairwiseSubject(a.User.ObjectID, a.Audience), a.User.ObjectID
	if a.App != "" {
		tid, sub, oid = a.TenantID, a.App, a.App
	}
	claims := jwt.MapClaims{
		"aud": a.Audience, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(lifetime).Unix(),
		"tid": tid, "sub": sub, "oid": oid, "uti": randomToken()[:22], "aio": randomToken()[:20],
	}
	if a.Expired {
		claims["iat"], claims["nbf"], claims["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	}
	if a.Version == 1 {
		claims["iss"], claims["ver"], claims["appid"] = "https://sts.windows.net/"+tid+"/", "1.0", a.ClientID
		if a.App == "" {
			claims["upn"], claims["unique_name"], claims["name"] = a.User.Username, a.User.Username, a.User.Name
		}
	} else {
		claims["iss"], claims["ver"], claims["azp"] = a.IssuerBase+"/"+tid+"/v2.0", "2.0", a.ClientID
		if a.App == "" {
			claims["preferred_username"], claims["name"] = a.User.Username, a.User.Name
		}
	}
	if len(a.Scopes) > 0 {
		claims["scp"] = strings.Join(a.Scopes, " ")
	}
	roles := a.Roles
	if roles == nil && a.App == "" {
		roles = a.User.Roles
	}
	if len(roles) > 0 {
		claims["roles"] = roles
	}
	if a.App == "" {
		s.addGroups(claims, a.User)
	}
	for k, v := range a.Claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	token := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	token.Header["kid"] = key.kid
	if a.GraphNonce {
		token.Header["nonce"] = randomToken()[:43]
	}
	for k, v := range a.Header {
		token.Header[k] = v
	}
	signer := key.priv
	if a.UnknownKey {
		signer, token.Header["kid"] = s.rogueKey().priv, randomToken()[:27]
	}
	return token.SignedString(signer)
}

// accessTokenFor is the access token of a token answer: for the one resource among the
// requested scopes (a scope that is a URI, such as api://{client}/access_as_user), or for
// Microsoft Graph (User.Read) when the scopes name none, as Entra issues them.
func (s *Server) accessTokenFor(g *grant, clientID string) (string, error) {
	a := AccessToken{User: g.user, ClientID: clientID, IssuerBase: g.issuerBase, Version: s.opts.AccessTokenVersion}
	for _, scope := range strings.Fields(g.scope) {
		if i := strings.LastIndex(scope, "/"); i > 0 {
			a.Audience = scope[:i]
			a.Scopes = append(a.Scopes, scope[i+1:])
		}
	}
	switch {
	case a.Audience == "":
		a.Audience, a.Scopes, a.GraphNonce, a.Version = GraphAudience, []string{"openid", "profile", "email", "User.Read"}, true, 1
	case a.Version != 1 && strings.HasPrefix(a.Audience, "api://"):
		a.Audience = strings.TrimPrefix(a.Audience, "api://") // v2 tokens name the API by its client id
	}
	return s.MintAccessToken(a)
}

// onBehalfOf serves the on-behalf-of grant: the assertion must be an access token the mock
// issued to this client (aud its client id or api://{client id}), unexpired; the answer is
// a token for the requested resource for the same user.
func (s *Server) onBehalfOf(w http.ResponseWriter, r *http.Request, c Client) {
	if r.PostForm.Get("requested_token_use") != "on_behalf_of" {
		entraError(w, 400, "invalid_request", 90014, "The request must have requested_token_use=on_behalf_of.")
		return
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(r.PostForm.Get("assertion"), claims, s.publishedKey, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(c.ID, "api://"+c.ID), jwt.WithExpirationRequired())
	if err != nil {
		entraError(w, 400, "invalid_grant", 50013, "Assertion failed signature validation, or is expired, or is not for this application: "+err.Error())
		return
	}
	oid, _ := claims["oid"].(string)
	var user User
	for _, u := range s.Users() {
		if u.ObjectID == oid {
			user = u
		}
	}
	if user.ObjectID == "" {
		entraError(w, 400, "invalid_grant", 50034, "The user account does not exist in the directory.")
		return
	}
	a := AccessToken{User: user, ClientID: c.ID, IssuerBase: base(r), Version: 2}
	for _, scope := range strings.Fields(r.PostForm.Get("scope")) {
		if i := strings.LastIndex(scope, "/"); i > 0 {
			a.Audience = scope[:i]
			a.Scopes = append(a.Scopes, scope[i+1:])
		}
	}
	if a.Audience == "" {
		entraError(w, 400, "invalid_scope", 70011, "The scope must name a resource, such as https://graph.microsoft.com/User.Read.")
		return
	}
	if a.Audience == "https://graph.microsoft.com" {
		a.Audience, a.GraphNonce, a.Version = GraphAudience, true, 1
	}
	token, err := s.MintAccessToken(a)
	if err != nil {
		entraError(w, 500, "server_error", 50000, err.Error())
		return
	}
	s.OBORequests.Add(1)
	writeJSON(w, 200, map[string]any{"token_type": "Bearer", "scope": r.PostForm.Get("scope"), "access_token": token,
		"expires_in": int(s.opts.TokenLifetime / time.Second), "ext_expires_in": int(s.opts.TokenLifetime / time.Second)})
}

// addGroups puts the user's groups in a token, or, past the groups limit, Entra's
// overage claims instead: _claim_names and _claim_sources, whose endpoint (the old Azure
// AD Graph, here on a host of the attacker's choosing) a relying party must not call.
func (s *Server) addGroups(claims jwt.MapClaims, u User) {
	switch {
	case len(u.Groups) > s.opts.GroupsLimit:
		claims["_claim_names"] = map[string]string{"groups": "src1"}
		claims["_claim_sources"] = map[string]any{"src1": map[string]string{
			"endpoint": "https://graph.windows.net.evil.example/" + u.TenantID + "/users/" + u.ObjectID + "/getMemberObjects"}}
	case len(u.Groups) > 0:
		claims["groups"] = u.Groups
	}
}

// graphMemberObjects is Microsoft Graph's POST /v1.0/me/getMemberObjects: the signed-in
// user's groups, for a Graph access token the mock issued.
func (s *Server) graphMemberObjects(w http.ResponseWriter, r *http.Request) {
	s.GraphRequests.Add(1)
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, s.publishedKey, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(GraphAudience, "https://graph.microsoft.com"), jwt.WithExpirationRequired())
	if !ok || err != nil {
		writeJSON(w, 401, map[string]any{"error": map[string]string{"code": "InvalidAuthenticationToken", "message": "Access token validation failure."}})
		return
	}
	oid, _ := claims["oid"].(string)
	for _, u := range s.Users() {
		if u.ObjectID == oid {
			groups := u.Groups
			if groups == nil {
				groups = []string{}
			}
			writeJSON(w, 200, map[string]any{"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)", "value": groups})
			return
		}
	}
	writeJSON(w, 404, map[string]any{"error": map[string]string{"code": "Request_ResourceNotFound"}})
}

// checkClientAssertion verifies a private_key_jwt client assertion as Entra does: signed
// (RS256) by the key of a certificate registered on the client, named by x5t#S256; for
// this token endpoint; issued by and about the client; unexpired, short-lived, and its
// jti never seen before.
func (s *Server) checkClientAssertion(r *http.Request, c Client) error {
	if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return errors.New("unsupported client_assertion_type")
	}
	if c.Certificate == nil {
		return errors.New("no certificate is registered for this application")
	}
	cert, err := x509.ParseCertificate(c.Certificate)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(c.Certificate)
	endpoint := base(r) + r.URL.Path
	claims := jwt.MapClaims{}
	tok, err := jwt.ParseWithClaims(r.PostForm.Get("client_assertion"), claims, func(t *jwt.Token) (any, error) {
		if t.Header["x5t#S256"] != base64.RawURLEncoding.EncodeToString(sum[:]) {
			return nil, errors.New("x5t#S256 names no registered certificate")
		}
		return cert.PublicKey, nil
	}, jwt.WithValidMethods([]string{"RS256"}), jwt.WithAudience(endpoint), jwt.WithIssuer(c.ID), jwt.WithSubject(c.ID),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(s.opts.Now))
	if err != nil || !tok.Valid {
		return err
	}
	exp, _ := claims.GetExpirationTime()
	if exp.Sub(s.opts.Now()) > 10*time.Minute {
		return errors.New("the assertion is valid for too long")
	}
	jti, _ := claims["jti"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	if jti == "" || s.jtis[jti] {
		return errors.New("the assertion's jti is missing or was used before")
	}
	s.jtis[jti] = true
	return nil
}

// publishedKey is the public key of a token the mock signed, by its kid.
func (s *Server) publishedKey(t *jwt.Token) (any, error) {
	kid, _ := t.Header["kid"].(string)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if k.kid == kid {
			return &k.priv.PublicKey, nil
		}
	}
	return nil, errors.New("unknown kid")
}
