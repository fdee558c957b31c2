package mockentra

// Demo identities, used by `make run` and the end-to-end tests.
const (
	DemoTenant       = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	DemoDomain       = "contoso.example"
	DemoOtherTenant  = "9188040d-6c67-4c5b-b112-36a304b66dad"
	DemoClientID     = "6731de76-14a6-49ae-97bc-6eba6914391e"
	DemoClientSecret = "demo-secret-not-for-production"
)

// DemoUsers are test users of the demo tenant, and one of another tenant.
func DemoUsers() []User {
	return []User{
		{Username: "ada@contoso.example", Name: "Ada Lovelace", Email: "ada@contoso.example", ObjectID: "00000000-0000-0000-0000-00000000ada1",
			TenantID: DemoTenant, Groups: []string{"a4f7c0d2-1111-4a5b-9c3d-000000000001", "a4f7c0d2-1111-4a5b-9c3d-000000000002"}, Roles: []string{"Admin"}},
		{Username: "grace@contoso.example", Name: "Grace Hopper", Email: "grace@contoso.example", ObjectID: "00000000-0000-0000-0000-0000000096ac",
			TenantID: DemoTenant, Groups: []string{"a4f7c0d2-1111-4a5b-9c3d-000000000002"}},
		{Username: "alan@fabrikam.example", Name: "Alan Turing", Email: "alan@fabrikam.example", ObjectID: "00000000-0000-0000-0000-00000000a1a9",
			TenantID: DemoOtherTenant},
	}
}

// DemoOptions is a mock with the demo tenant, client and users. redirectURIs registers
// callback URLs (none: any).
func DemoOptions(redirectURIs ...string) Options {
	return Options{
		TenantID: DemoTenant, Domain: DemoDomain,
		Clients: []Client{{ID: DemoClientID, Secret: DemoClientSecret, RedirectURIs: redirectURIs}},
		Users:   DemoUsers(),
	}
}
