package mockentra

import (
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// base is the scheme and host the request reached: endpoints and issuers are built on it.
func base(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// tenantOf resolves the {tenant} path segment: the tenant GUID or domain (single
// tenant), common or organizations (multi-tenant). Anything else is Entra's AADSTS90002.
func (s *Server) tenantOf(r *http.Request) (tenant string, multi bool, ok bool) {
	t := r.PathValue("tenant")
	switch {
	case t == s.opts.TenantID || (s.opts.Domain != "" && strings.EqualFold(t, s.opts.Domain)):
		return s.opts.TenantID, false, true
	case t == "common" || t == "organizations":
		return t, true, true
	}
	return "", false, false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("content-type", "application/json; charset=utf-8")
	w.Header().Set("cache-control", "no-store, no-cache")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// entraError answers as Entra does: an OAuth error with AADSTS code, timestamp and ids.
func entraError(w http.ResponseWriter, status int, code string, aadsts int, description string) {
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s", aadsts, description, randomID(), randomID(), time.Now().UTC().Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{aadsts},
		"timestamp":         time.Now().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          randomID(),
		"correlation_id":    randomID(),
	})
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request) {
	s.DiscoveryRequests.Add(1)
	tenant, multi, ok := s.tenantOf(r)
	if !ok {
		entraError(w, 400, "invalid_tenant", 90002, fmt.Sprintf("Tenant '%s' not found.", r.PathValue("tenant")))
		return
	}
	b, seg := base(r), r.PathValue("tenant")
	issuer := b + "/" + tenant + "/v2.0"
	if multi {
		issuer = b + "/{tenantid}/v2.0"
	}
	writeJSON(w, 200, map[string]any{
		"token_endpoint":                        b + "/" + seg + "/oauth2/v2.0/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"jwks_uri":                              b + "/" + seg + "/discovery/v2.0/keys",
		"response_modes_supported":              []string{"query", "fragment", "form_post"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"issuer":                                issuer,
		"request_uri_parameter_supported":       false,
		"userinfo_endpoint":                     "https://graph.microsoft.com/oidc/userinfo",
		"authorization_endpoint":                b + "/" + seg + "/oauth2/v2.0/authorize",
		"device_authorization_endpoint":         b + "/" + seg + "/oauth2/v2.0/devicecode",
		"http_logout_supported":                 true,
		"frontchannel_logout_supported":         true,
		"end_session_endpoint":                  b + "/" + seg + "/oauth2/v2.0/logout",
		"claims_supported": []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
			"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash",
			"c_hash", "email"},
		"kerberos_endpoint":     b + "/" + seg + "/kerberos",
		"tenant_region_scope":   "EU",
		"cloud_instance_name":   "microsoftonline.com",
		"cloud_graph_host_name": "graph.windows.net",
		"msgraph_host":          "graph.microsoft.com",
		"rbac_url":              "https://pas.windows.net",
	})
}

func (s *Server) jwks(w http.ResponseWriter, r *http.Request) {
	s.KeysRequests.Add(1)
	_, multi, ok := s.tenantOf(r)
	if !ok {
		entraError(w, 400, "invalid_tenant", 90002, "Tenant not found.")
		return
	}
	// As Entra: a tenant's key set names the tenant's issuer; the common and
	// organizations key sets name the template, {tenantid} to be put in.
	issuer := base(r) + "/" + s.opts.TenantID + "/v2.0"
	if multi {
		issuer = base(r) + "/{tenantid}/v2.0"
	}
	s.mu.Lock()
	keys := append([]*signingKey(nil), s.keys...)
	s.mu.Unlock()
	var out []map[string]any
	for _, k := range keys {
		out = append(out, map[string]any{
			"kty": "RSA", "use": "sig", "kid": k.kid, "x5t": k.kid,
			"n":      base64.RawURLEncoding.EncodeToString(k.priv.N.Bytes()),
			"e":      base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes()),
			"x5c":    []string{base64.StdEncoding.EncodeToString(k.cert)},
			"issuer": issuer,
		})
	}
	writeJSON(w, 200, map[string]any{"keys": out})
}

func (s *Server) client(id string) (Client, bool) {
	for _, c := range s.opts.Clients {
		if c.ID == id {
			return c, true
		}
	}
	return Client{}, false
}

var signInPage = template.Must(template.New("signin").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Sign in to your account</title>
<style>body{font-family:system-ui,sans-serif;max-width:28em;margin:3em auto}a.user{display:block;border:1px solid #ccc;border-radius:4px;padding:.8em;margin:.5em 0;text-decoration:none;color:#222}a.user:hover{background:#f3f3f3}small{color:#666}</style>
</head><body><h1>Pick an account</h1><p><small>Mock Entra ID: no password, pick a test user.</small></p>
{{range .}}<a class="user" id="user-{{.Username}}" href="{{.Link}}"><b>{{.Name}}</b><br><small>{{.Username}}</small></a>{{end}}
</body></html>`))

// authorize checks the request as Entra does and shows the sign-in page; with
// mock_user it signs that user in at once.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	tenant, multi, ok := s.tenantOf(r)
	if !ok {
		http.Error(w, "AADSTS90002: Tenant not found.", 400)
		return
	}
	q := r.URL.Query()
	c, known := s.client(q.Get("client_id"))
	if !known {
		http.Error(w, "AADSTS700016: Application with identifier '"+q.Get("client_id")+"' was not found in the directory.", 400)
		return
	}
	redirect := q.Get("redirect_uri")
	if len(c.RedirectURIs) > 0 && !slices.Contains(c.RedirectURIs, redirect) {
		http.Error(w, "AADSTS50011: The redirect URI '"+redirect+"' specified in the request does not match the redirect URIs configured for the application.", 400)
		return
	}
	back := func(params url.Values) {
		if st := q.Get("state"); st != "" {
			params.Set("state", st)
		}
		http.Redirect(w, r, redirect+"?"+params.Encode(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		back(url.Values{"error": {"unsupported_response_type"}, "error_description": {"AADSTS70005: response_type is not enabled for the client."}})
		return
	case !strings.Contains(" "+q.Get("scope")+" ", " openid "):
		back(url.Values{"error": {"invalid_request"}, "error_description": {"AADSTS900144: The request body must contain the following parameter: 'scope' with openid."}})
		return
	case q.Get("code_challenge") != "" && q.Get("code_challenge_method") != "S256":
		back(url.Values{"error": {"invalid_request"}, "error_description": {"AADSTS501491: Invalid code challenge method."}})
		return
	}
	s.mu.Lock()
	authorizeError, faults := s.faults.AuthorizeError, s.faults
	s.mu.Unlock()
	if authorizeError != "" {
		back(url.Values{"error": {authorizeError}, "error_description": {"AADSTS65004: User declined to consent to access the app."}})
		return
	}
	if name := q.Get("mock_user"); name != "" {
		user, ok := s.user(name, tenant, multi)
		if !ok {
			http.Error(w, "AADSTS50034: The user account "+name+" does not exist in the directory.", 400)
			return
		}
		acrs, err := requestedContexts(q.Get("claims"))
		if err != nil {
			back(url.Values{"error": {"invalid_request"}, "error_description": {"AADSTS90014: " + err.Error()}})
			return
		}
		switch {
		case faults.StepUpUnsatisfied:
			acrs = nil
		case len(acrs) > 1:
			acrs = acrs[:1] // the first asked for
		}
		authenticated := s.opts.Now()
		if faults.AuthTimeAgo > 0 && q.Get("prompt") != "login" {
			maxAge, err := strconv.Atoi(q.Get("max_age"))
			if err != nil || time.Duration(maxAge)*time.Second >= faults.AuthTimeAgo {
				authenticated = authenticated.Add(-faults.AuthTimeAgo)
			}
		}
		code := randomToken() + randomToken()
		s.mu.Lock()
		s.codes[code] = &grant{user: user, clientID: c.ID, redirectURI: redirect, challenge: q.Get("code_challenge"),
			nonce: q.Get("nonce"), scope: q.Get("scope"), issuerBase: base(r), expires: s.opts.Now().Add(10 * time.Minute),
			sessionID: randomID(), authenticated: authenticated, acrs: acrs}
		s.mu.Unlock()
		back(url.Values{"code": {code}, "session_state": {randomID()}})
		return
	}
	type choice struct{ Name, Username, Link string }
	var choices []choice
	for _, u := range s.Users() {
		if !multi && u.TenantID != tenant {
			continue
		}
		link := *r.URL
		lq := link.Query()
		lq.Set("mock_user", u.Username)
		link.RawQuery = lq.Encode()
		choices = append(choices, choice{u.Name, u.Username, link.String()})
	}
	w.Header().Set("content-type", "text/html; charset=utf-8")
	_ = signInPage.Execute(w, choices)
}

func (s *Server) user(username, tenant string, multi bool) (User, bool) {
	for _, u := range s.Users() {
		if strings.EqualFold(u.Username, username) && (multi || u.TenantID == tenant) {
			return u, true
		}
	}
	return User{}, false
}

// token serves the authorization_code and refresh_token grants.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	s.TokenRequests.Add(1)
	if err := r.ParseForm(); err != nil {
		entraError(w, 400, "invalid_request", 900144, "The request body must be form encoded.")
		return
	}
	clientID, secret, basic := r.BasicAuth()
	if basic {
		clientID, _ = url.QueryUnescape(clientID)
		secret, _ = url.QueryUnescape(secret)
		if f := r.PostForm.Get("client_id"); f != "" && f != clientID {
			entraError(w, 400, "invalid_request", 900144, "client_id in the body and in Basic differ.")
			return
		}
	} else {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	c, known := s.client(clientID)
	if !known {
		entraError(w, 400, "unauthorized_client", 700016, "Application with identifier '"+clientID+"' was not found in the directory.")
		return
	}
	if r.PostForm.Get("client_assertion_type") != "" {
		if err := s.checkClientAssertion(r, c); err != nil {
			entraError(w, 401, "invalid_client", 700027, "Client assertion failed signature validation: "+err.Error())
			return
		}
	} else if c.Secret == "" || subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1 {
		entraError(w, 401, "invalid_client", 7000215, "Invalid client secret provided.")
		return
	}
	var g *grant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		s.mu.Lock()
		g = s.codes[code]
		reused := g != nil && g.used
		if g != nil {
			g.used = true
		}
		s.mu.Unlock()
		switch {
		case g == nil:
			entraError(w, 400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
			return
		case reused:
			entraError(w, 400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.")
			return
		case s.opts.Now().After(g.expires):
			entraError(w, 400, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity.")
			return
		case g.clientID != c.ID:
			entraError(w, 400, "invalid_grant", 70000, "The provided value for the 'code' parameter is not valid: issued to another client.")
			return
		case g.redirectURI != r.PostForm.Get("redirect_uri"):
			entraError(w, 400, "invalid_grant", 50148, "The redirect_uri does not match the one used in the authorization request.")
			return
		case g.challenge != "" && s256(r.PostForm.Get("code_verifier")) != g.challenge:
			entraError(w, 400, "invalid_grant", 501481, "The Code_Verifier does not match the code_challenge supplied in the authorization request.")
			return
		}
	case "refresh_token":
		s.mu.Lock()
		g = s.refresh[r.PostForm.Get("refresh_token")]
		if g != nil {
			delete(s.refresh, r.PostForm.Get("refresh_token")) // rotated: each refresh token works once
		}
		s.mu.Unlock()
		if g == nil || g.clientID != c.ID {
			entraError(w, 400, "invalid_grant", 700082, "The refresh token has expired or is invalid.")
			return
		}
		// The refreshed ID token repeats the sign-in's nonce, as Entra's do.
		g = &grant{user: s.current(g.user), clientID: g.clientID, scope: g.scope, nonce: g.nonce, issuerBase: g.issuerBase, sessionID: g.sessionID, authenticated: g.authenticated}
		s.RefreshRequests.Add(1)
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		s.onBehalfOf(w, r, c)
		return
	default:
		entraError(w, 400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
		return
	}
	idToken, err := s.idToken(g, c.ID)
	if err != nil {
		entraError(w, 500, "server_error", 50000, err.Error())
		return
	}
	accessToken, err := s.accessTokenFor(g, c.ID)
	if err != nil {
		entraError(w, 500, "server_error", 50000, err.Error())
		return
	}
	refresh := randomToken() + randomToken()
	s.mu.Lock()
	s.refresh[refresh] = g
	s.mu.Unlock()
	resp := map[string]any{
		"token_type": "Bearer", "scope": g.scope, "expires_in": int(s.opts.TokenLifetime / time.Second),
		"ext_expires_in": int(s.opts.TokenLifetime / time.Second), "access_token": accessToken, "id_token": idToken,
	}
	if strings.Contains(" "+g.scope+" ", " offline_access ") {
		resp["refresh_token"] = refresh
	}
	writeJSON(w, 200, resp)
}

// idToken mints an ID token shaped like Entra's v2 tokens, bent by the fault switches.
func (s *Server) idToken(g *grant, clientID string) (string, error) {
	s.mu.Lock()
	f := s.faults
	key := s.keys[0]
	s.mu.Unlock()
	now := s.opts.Now()
	tid := g.user.TenantID
	issuer := g.issuerBase + "/" + tid + "/v2.0"
	claims := jwt.MapClaims{
		"aud": clientID, "iss": issuer, "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(s.opts.TokenLifetime).Unix(),
		"aio": randomToken()[:20], "email": g.user.Email, "name": g.user.Name, "oid": g.user.ObjectID,
		"preferred_username": g.user.Username, "rh": "0.AAAA" + randomToken()[:16], "sid": g.sessionID,
		"sub": pairwiseSubject(g.user.ObjectID, clientID), "tid": tid, "uti": randomToken()[:22], "ver": "2.0",
		"login_hint": "O.CiQ" + base64.RawURLEncoding.EncodeToString([]byte(g.user.ObjectID+"."+tid)),
		// How the user signed in: when (auth_time, an optional claim of Entra's), and with
		// what (amr): a password here.
		"auth_time": g.authenticated.Unix(), "amr": []string{"pwd"},
	}
	if len(g.acrs) > 0 { // Entra lists the contexts only when the app asked for them
		claims["acrs"] = g.acrs
		claims["amr"] = []string{"pwd", "mfa"}
	}
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	s.addGroups(claims, g.user)
	if len(g.user.Roles) > 0 {
		claims["roles"] = g.user.Roles
	}
	switch {
	case f.WrongAudience:
		claims["aud"] = "00000003-0000-0000-c000-000000000000"
	case f.WrongIssuer:
		claims["iss"] = "https://sts.windows.net/" + tid + "/"
	case f.WrongTenant:
		other := "9188040d-6c67-4c5b-b112-36a304b66dad"
		claims["tid"], claims["iss"] = other, g.issuerBase+"/"+other+"/v2.0"
	case f.WrongNonce:
		claims["nonce"] = "not-the-nonce"
	case f.Expired:
		claims["iat"], claims["nbf"], claims["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
	}
	token := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	token.Header["kid"] = key.kid
	signer := key.priv
	switch {
	case f.BadSignature:
		signer = s.rogueKey().priv
	case f.UnknownKID:
		signer, token.Header["kid"] = s.rogueKey().priv, randomToken()[:27] // a kid never seen before
	case f.NoKID:
		delete(token.Header, "kid")
	}
	return token.SignedString(signer)
}

// pairwiseSubject is a subject per user and application, as Entra's sub is.
func pairwiseSubject(oid, clientID string) string {
	return s256(oid + "|" + clientID)[:43]
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after := q.Get("post_logout_redirect_uri")
	s.mu.Lock()
	s.logouts = append(s.logouts, Logout{PostLogoutRedirectURI: after, LogoutHint: q.Get("logout_hint")})
	s.mu.Unlock()
	if after == "" {
		w.Header().Set("content-type", "text/html; charset=utf-8")
		fmt.Fprint(w, "<!doctype html><p>You signed out of your account.</p>")
		return
	}
	http.Redirect(w, r, after, http.StatusFound)
}

// requestedContexts reads the authentication contexts an OpenID Connect claims request
// asks for in the ID token ({"id_token":{"acrs":{"essential":true,"value":"c1"}}}, or
// "values"), as Entra does; a claims request that is not JSON is refused, as Entra
// refuses it.
func requestedContexts(claims string) ([]string, error) {
	if claims == "" {
		return nil, nil
	}
	var req struct {
		IDToken struct {
			ACRs struct {
				Essential bool     `json:"essential"`
				Value     string   `json:"value"`
				Values    []string `json:"values"`
			} `json:"acrs"`
		} `json:"id_token"`
	}
	if err := json.Unmarshal([]byte(claims), &req); err != nil {
		return nil, fmt.Errorf("the claims parameter is not valid JSON: %v", err)
	}
	a := req.IDToken.ACRs
	if a.Value != "" {
		return []string{a.Value}, nil
	}
	return a.Values, nil
}
