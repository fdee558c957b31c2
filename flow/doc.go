// Package flow is the OpenID Connect authorization-code flow of entra-auth as pure Go:
// given the plugin configuration (package config), it classifies requests and turns
// each step of a sign-in into plain values: the redirect to Entra ID (with state, nonce
// and PKCE S256), the token request to dispatch, the session to seal, the cookies to
// set, the identity headers to pass upstream. It does no I/O and imports no proxy-wasm
// package; the filter performs what it decides. Time and randomness are injected.
//
// Each network exchange is two pure steps: build the request (method, URL, headers,
// body), then handle the answer (status, body) into a typed result or an error.
//
// Specifications: OpenID Connect Core 1.0 (authorization code flow, nonce), RFC 6749
// (OAuth 2.0, error responses), RFC 7636 (PKCE), RFC 6265bis (cookie prefixes),
// and Microsoft identity platform v2.0 endpoints.
package flow
