module github.com/entra-auth/entra-auth

go 1.24.0

require (
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/tetratelabs/proxy-wasm-go-sdk v0.24.0
	github.com/tetratelabs/wazero v1.11.0
	github.com/tidwall/gjson v1.20.2
	golang.org/x/crypto v0.48.0
)

require (
	github.com/tidwall/match v1.1.1 // indirect
	github.com/tidwall/pretty v1.3.0 // indirect
	golang.org/x/sys v0.41.0 // indirect
)
