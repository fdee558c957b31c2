package jwks

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/entra-auth/entra-auth/internal/entratest"
)

func TestAccessVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	signer, stranger := entratest.RSAKey(t, "a"), entratest.RSAKey(t, "b")
	keys := mustParse(t, entratest.JWKS(t, entratest.JWK("k1", &signer.PublicKey, issuerV2)))
	apiURI := "api://" + clientID
	v1Issuer := "https://sts.windows.net/" + tenant + "/"

	delegated := func(change func(*token)) string {
		tk := token{jwt.SigningMethodRS256, signer, map[string]any{"kid": "k1"}, jwt.MapClaims{
			"aud": clientID, "iss": issuerV2, "tid": tenant, "sub": "pairwise-1", "oid": "object-1", "ver": "2.0",
			"iat": now.Unix() - 60, "nbf": now.Unix() - 60, "exp": now.Unix() + 3600,
			"scp": "access_as_user Items.Read", "name": "Ada Lovelace", "preferred_username": "ada@contoso.com",
		}}
		if change != nil {
			change(&tk)
		}
		return tk.sign(t)
	}
	single := AccessConfig{Audiences: []string{clientID, apiURI}, Issuer: issuerV2, ClockSkew: 2 * time.Minute, Now: func() time.Time { return now }}
	multi := single
	multi.Issuer, multi.AllowedTenants = template, []string{tenant}

	for _, tc := range []struct {
		name    string
		cfg     AccessConfig
		raw     string
		wantErr error
	}{
		{name: "v2 delegated", raw: delegated(nil)},
		{name: "v1 delegated", raw: delegated(func(tk *token) {
			tk.claims["iss"], tk.claims["aud"], tk.claims["ver"] = v1Issuer, apiURI, "1.0"
		})},
		{name: "application token", raw: delegated(func(tk *token) {
			delete(tk.claims, "scp")
			tk.claims["roles"], tk.claims["sub"] = []string{"Items.ReadAll"}, "object-1"
		})},
		{name: "multi-tenant, allowed", cfg: multi, raw: delegated(nil)},
		{name: "ID token (no scp)", raw: delegated(func(tk *token) { delete(tk.claims, "scp"); tk.claims["nonce"] = "n" }), wantErr: ErrNotAccessToken},
		{name: "ID token with app roles", raw: delegated(func(tk *token) { delete(tk.claims, "scp"); tk.claims["roles"] = []string{"Admin"} }), wantErr: ErrNotAccessToken},
		{name: "Graph token (nonce header)", raw: delegated(func(tk *token) {
			tk.header["nonce"] = "abc"
			tk.claims["aud"] = "00000003-0000-0000-c000-000000000000"
		}), wantErr: ErrNotAccessToken},
		{name: "another audience", raw: delegated(func(tk *token) { tk.claims["aud"] = "api://other" }), wantErr: ErrAudience},
		{name: "v1 issuer of another tenant", raw: delegated(func(tk *token) {
			tk.claims["iss"], tk.claims["tid"] = "https://sts.windows.net/"+other+"/", other
		}), wantErr: ErrTenant},
		{name: "issuer not matching tid", raw: delegated(func(tk *token) { tk.claims["iss"] = "https://sts.windows.net/" + other + "/" }), wantErr: ErrIssuer},
		{name: "foreign issuer", raw: delegated(func(tk *token) { tk.claims["iss"] = "https://evil.example/" + tenant + "/v2.0" }), wantErr: ErrIssuer},
		{name: "expired", raw: delegated(func(tk *token) { tk.claims["exp"] = now.Unix() - 600 }), wantErr: ErrExpired},
		{name: "no exp", raw: delegated(func(tk *token) { delete(tk.claims, "exp") }), wantErr: ErrClaims},
		{name: "crit header", raw: delegated(func(tk *token) { tk.header["crit"] = []string{"x"} }), wantErr: ErrAlgorithm},
		{name: "signed by a stranger", raw: delegated(func(tk *token) { tk.key = stranger }), wantErr: ErrSignature},
		{name: "unknown kid", raw: delegated(func(tk *token) { tk.header["kid"] = "k9" }), wantErr: ErrUnknownKey},
		{name: "HS256", raw: delegated(func(tk *token) { tk.method, tk.key = jwt.SigningMethodHS256, []byte("secret") }), wantErr: ErrAlgorithm},
		{name: "oversized", raw: strings.Repeat("a", MaxTokenSize+1), wantErr: ErrMalformed},
		{name: "garbage", raw: "Bearer x", wantErr: ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.Issuer == "" {
				cfg = single
			}
			claims, err := NewAccessVerifier(cfg).Verify(tc.raw, keys)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || claims.String("oid") != "object-1" {
				t.Fatalf("%v %v", claims, err)
			}
		})
	}
	c, _ := NewAccessVerifier(single).Verify(delegated(nil), keys)
	if got := c.Scopes(); strings.Join(got, ",") != "access_as_user,Items.Read" {
		t.Errorf("scopes %v", got)
	}
}
