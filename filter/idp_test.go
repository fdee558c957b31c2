package filter

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/proxytest"
	"github.com/tetratelabs/proxy-wasm-go-sdk/proxywasm/types"

	"github.com/entra-auth/entra-auth/internal/entratest"
	"github.com/entra-auth/entra-auth/internal/sharedstate"
)

// A worker whose peer already fetched the provider's metadata takes it from shared data
// on its first tick and fetches nothing itself; a worker that finds a peer's fetch lease
// running waits for that fetch instead of making its own.
func TestWorkersShareTheMetadata(t *testing.T) {
	keys := sharedstate.KeysFor("https://login.microsoftonline.com/" + tenant + "/v2.0/.well-known/openid-configuration")
	t.Run("fetched by another worker", func(t *testing.T) {
		host := newHost(t, testConfig)
		if host.StartPlugin() != types.OnPluginStartStatusOK {
			t.Fatal("plugin did not start")
		}
		jwks := entratest.JWKS(t, entratest.JWK("key-1", &entratest.RSAKey(t, "signing").PublicKey, ""))
		if err := sharedstate.PutMetadata(hostStore{}, keys.Metadata, sharedstate.Metadata{FetchedAt: time.Now(), Discovery: discoveryJSON(), JWKS: jwks}); err != nil {
			t.Fatal(err)
		}
		host.Tick()
		if n := len(host.GetCalloutAttributesFromContext(proxytest.PluginContextID)); n != 0 {
			t.Fatalf("%d fetches, want none: another worker fetched", n)
		}
		id := host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, request("/app", browserAccept), true)
		r := host.GetSentLocalResponse(id)
		if r == nil || r.StatusCode != 302 || !strings.HasPrefix(headerOf(r.Headers, "location"), "https://login.microsoftonline.com/"+tenant+"/oauth2/v2.0/authorize?") {
			t.Fatalf("with the shared metadata: %+v, want the sign-in redirect", r)
		}
	})
	t.Run("a fetch running on another worker", func(t *testing.T) {
		host := newHost(t, testConfig)
		if host.StartPlugin() != types.OnPluginStartStatusOK {
			t.Fatal("plugin did not start")
		}
		now := time.Now()
		if err := sharedstate.TakeLease(hostStore{}, keys.Lease, "another worker", now, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		id := host.InitializeHttpContext()
		host.CallOnRequestHeaders(id, request("/app", browserAccept), true)
		host.Tick()
		if n := len(host.GetCalloutAttributesFromContext(proxytest.PluginContextID)); n != 0 {
			t.Fatalf("%d fetches while another worker held the lease", n)
		}
		if r := host.GetSentLocalResponse(id); r != nil {
			t.Fatalf("answered %+v, want the request to wait for the other worker's fetch", r)
		}
	})
}

// refusingStore is shared data whose host refuses every write.
type refusingStore struct{ hostStore }

func (refusingStore) Set(string, []byte, uint32) error {
	return fmt.Errorf("%w: refused for the test", sharedstate.ErrUnavailable)
}

// Shared data that fails (here: a host that refuses every write) is logged at start and
// costs coordination, never a wrong answer: the metadata is fetched without the lease and
// sign-ins start, but a callback whose state cannot be recorded as used is refused.
func TestSharedDataFailures(t *testing.T) {
	opt := proxytest.NewEmulatorOption().WithVMContext(&vmContext{shared: refusingStore{}}).WithPluginConfiguration([]byte(testConfig))
	host, reset := proxytest.NewHostEmulator(opt)
	defer reset()
	if host.StartPlugin() != types.OnPluginStartStatusOK {
		t.Fatal("plugin did not start")
	}
	warned := strings.Join(host.GetWarnLogs(), "\n")
	for _, want := range []string{"sign-ins will be refused", "each worker refreshes sessions itself"} {
		if !strings.Contains(warned, want) {
			t.Errorf("start did not warn %q: %s", want, warned)
		}
	}
	host.Tick()
	calls := host.GetCalloutAttributesFromContext(proxytest.PluginContextID)
	if len(calls) != 1 {
		t.Fatalf("%d fetches, want the discovery fetch without a lease", len(calls))
	}
	host.CallOnHttpCallResponse(calls[0].CalloutID, [][2]string{{":status", "200"}}, nil, discoveryJSON())
	calls = host.GetCalloutAttributesFromContext(proxytest.PluginContextID)
	host.CallOnHttpCallResponse(calls[len(calls)-1].CalloutID, [][2]string{{":status", "200"}}, nil,
		entratest.JWKS(t, entratest.JWK("key-1", &entratest.RSAKey(t, "signing").PublicKey, "")))
	start := host.InitializeHttpContext()
	host.CallOnRequestHeaders(start, request("/app", browserAccept), true)
	r := host.GetSentLocalResponse(start)
	if r == nil || r.StatusCode != 302 {
		t.Fatalf("sign-in start: %+v, want the redirect", r)
	}
	loc, _ := url.Parse(headerOf(r.Headers, "location"))
	signInCookie, _, _ := strings.Cut(headerOf(r.Headers, "set-cookie"), ";")
	cb := host.InitializeHttpContext()
	host.CallOnRequestHeaders(cb, request("/.auth/callback?code=c&state="+url.QueryEscape(loc.Query().Get("state")), browserAccept, [2]string{"cookie", signInCookie}), true)
	if r := host.GetSentLocalResponse(cb); r == nil || r.StatusCode != 503 || len(host.GetCalloutAttributesFromContext(cb)) != 0 {
		t.Fatalf("a callback whose state cannot be recorded: %+v, want 503 before the code is redeemed", r)
	}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{types.ErrorStatusNotFound, sharedstate.ErrNotFound},
		{types.ErrorStatusCasMismatch, sharedstate.ErrConflict},
		{types.ErrorStatusBadArgument, sharedstate.ErrUnavailable},
	} {
		if got := hostError(tc.err); !errors.Is(got, tc.want) {
			t.Errorf("hostError(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
