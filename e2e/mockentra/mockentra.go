// Package mockentra is a stand-in for Microsoft Entra ID's v2.0 endpoints, faithful where a
// relying party can tell: the discovery document with Entra's fields and its {tenantid}
// issuer on the multi-tenant endpoints; a JWKS whose RSA keys carry kid, x5t and x5c but
// no alg; an authorize endpoint with a sign-in page where a person picks a test user (or
// a mock_user parameter for programs); authorization codes bound to the client, the
// redirect URI and the PKCE challenge, usable once; a token endpoint for the
// authorization_code and refresh_token grants that answers errors as Entra does (AADSTS
// codes, trace and correlation ids); ID tokens shaped like Entra's v2 tokens; and an
// end-session endpoint. Switches inject the faults a relying party must survive.
package mockentra

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// User is a test user.
type User struct {
	// Username is preferred_username (and upn).
	Username, Name, Email string
	ObjectID, TenantID    string
	Groups, Roles         []string
}

// Client is a registered application.
type Client struct {
	ID, Secret string
	// Certificate (DER) is a certificate registered as a credential: client assertions
	// signed with its key are accepted.
	Certificate []byte
	// RedirectURIs are the registered callback URLs; empty accepts any.
	RedirectURIs []string
}

// Faults change what the mock does, to test how a relying party copes.
type Faults struct {
	BadSignature  bool // sign ID tokens with an unpublished key under a published kid
	UnknownKID    bool // sign with an unpublished key and kid
	NoKID         bool // leave kid out of the header
	WrongAudience bool
	WrongIssuer   bool
	WrongTenant   bool // tid of another tenant (with the matching issuer)
	WrongNonce    bool
	Expired       bool
	// AuthorizeError makes the authorize endpoint redirect back with this error code.
	AuthorizeError string
	// StepUpUnsatisfied signs users in without satisfying the authentication contexts a
	// claims request asks for (as when no Conditional Access policy targets them);
	// otherwise the first context asked for is satisfied and listed in acrs.
	StepUpUnsatisfied bool
	// AuthTimeAgo makes ID tokens say the user authenticated that long ago (a session
	// Entra kept), unless the authorize request said prompt=login or a max_age that is
	// shorter: then the user signs in afresh.
	AuthTimeAgo time.Duration
	// Delay slows, and Status fails, an endpoint: "discovery", "keys", "authorize",
	// "token", "logout".
	Delay  map[string]time.Duration
	Status map[string]int
}

// Options configure a mock.
type Options struct {
	// TenantID is the home tenant's GUID; Domain its verified domain.
	TenantID, Domain string
	Clients          []Client
	Users            []User
	// TokenLifetime of ID and access tokens; default one hour.
	TokenLifetime time.Duration
	// AccessTokenVersion is the version of access tokens for an API (1 or 2, the
	// default), as the API's registration sets accessTokenAcceptedVersion.
	AccessTokenVersion int
	// GroupsLimit is how many groups a token carries before it leaves them out and
	// points to Graph instead (groups overage); default 200, as Entra's JWTs.
	GroupsLimit int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Server is the mock. It is safe for concurrent use.
type Server struct {
	opts Options

	mu      sync.Mutex
	keys    []*signingKey // keys[0] signs; all are published
	faults  Faults
	codes   map[string]*grant
	jtis    map[string]bool // client assertion ids seen
	refresh map[string]*grant
	logouts []Logout

	// rogue signs the tokens of the signature and kid faults: a key never published, made
	// once (a 2048-bit key per token would make the token endpoint slower than a
	// proxy's timeout under load).
	rogue     *signingKey
	rogueOnce sync.Once

	// Counters, for tests of caching and rate limits.
	DiscoveryRequests, KeysRequests, TokenRequests atomic.Int64
	// RefreshRequests and OBORequests count the refresh_token and on-behalf-of grants
	// the mock honoured.
	RefreshRequests, OBORequests atomic.Int64
	// GraphRequests counts Microsoft Graph calls (getMemberObjects).
	GraphRequests atomic.Int64
}

// Logout records an end-session request.
type Logout struct{ PostLogoutRedirectURI, LogoutHint string }

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
	cert []byte // self-signed, for x5c and x5t
}

// grant is what a code or refresh token stands for.
type grant struct {
	user          User
	clientID      string
	redirectURI   string
	challenge     string
	nonce, scope  string
	issuerBase    string
	expires       time.Time
	used          bool
	sessionID     string
	authenticated time.Time
	// acrs are the authentication contexts the sign-in satisfied.
	acrs []string
}

// New returns a mock with one signing key.
func New(opts Options) *Server {
	if opts.TokenLifetime == 0 {
		opts.TokenLifetime = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.GroupsLimit == 0 {
		opts.GroupsLimit = 200
	}
	opts.Users = slices.Clone(opts.Users) // UpdateUser changes the mock's copy
	s := &Server{opts: opts, codes: map[string]*grant{}, refresh: map[string]*grant{}, jtis: map[string]bool{}}
	s.keys = []*signingKey{newSigningKey()}
	return s
}

func newSigningKey() *signingKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "accounts.accesscontrol.windows.net"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(5 * 365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		panic(err)
	}
	sum := sha1.Sum(der) // x5t is the SHA-1 thumbprint, as Entra publishes it
	return &signingKey{kid: base64.RawURLEncoding.EncodeToString(sum[:]), priv: priv, cert: der}
}

func (s *Server) rogueKey() *signingKey {
	s.rogueOnce.Do(func() { s.rogue = newSigningKey() })
	return s.rogue
}

// RevokeRefreshTokens invalidates every refresh token issued so far, as an administrator
// revoking a user's sessions (or a password change) does: their next use is invalid_grant.
func (s *Server) RevokeRefreshTokens() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refresh = map[string]*grant{}
}

// Rotate makes a new key the signing key; the old ones stay published.
func (s *Server) Rotate() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = append([]*signingKey{newSigningKey()}, s.keys...)
}

// SetFaults replaces the fault switches.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// Logouts returns the end-session requests received so far.
func (s *Server) Logouts() []Logout {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Logout(nil), s.logouts...)
}

// Users returns the test users.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]User(nil), s.opts.Users...)
}

// UpdateUser changes a test user in the directory, as an administrator renaming someone or
// changing their groups would: later sign-ins and refreshes carry the change. It reports
// whether the user exists.
func (s *Server) UpdateUser(username string, change func(*User)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.opts.Users {
		if strings.EqualFold(s.opts.Users[i].Username, username) {
			u := s.opts.Users[i]
			u.Groups, u.Roles = slices.Clone(u.Groups), slices.Clone(u.Roles) // grants keep the old lists
			change(&u)
			s.opts.Users[i] = u
			return true
		}
	}
	return false
}

// current is the directory's record of u now (u itself if it was removed).
func (s *Server) current(u User) User {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, now := range s.opts.Users {
		if now.ObjectID == u.ObjectID && now.TenantID == u.TenantID {
			return now
		}
	}
	return u
}

// Handler serves the endpoints under /{tenant}/...
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", s.fault("discovery", s.discovery))
	mux.HandleFunc("GET /{tenant}/discovery/v2.0/keys", s.fault("keys", s.jwks))
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/authorize", s.fault("authorize", s.authorize))
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", s.fault("token", s.token))
	mux.HandleFunc("GET /{tenant}/oauth2/v2.0/logout", s.fault("logout", s.logout))
	mux.HandleFunc("POST /v1.0/me/getMemberObjects", s.fault("graph", s.graphMemberObjects))
	return mux
}

// fault applies the endpoint's delay and failure switches.
func (s *Server) fault(endpoint string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		delay, status := s.faults.Delay[endpoint], s.faults.Status[endpoint]
		s.mu.Unlock()
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.Context().Done():
				return
			}
		}
		if status != 0 {
			http.Error(w, http.StatusText(status), status)
			return
		}
		h(w, r)
	}
}

func randomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:4]) + "-" + hex.EncodeToString(b[4:6]) + "-" + hex.EncodeToString(b[6:8]) + "-" + hex.EncodeToString(b[8:10]) + "-" + hex.EncodeToString(b[10:])
}

func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
