package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/entra-auth/entra-auth/e2e/envoyhost"
)

// BenchmarkCompileModule measures what Envoy pays once per module: compiling the .wasm
// (wazero's compiler, no cache).
func BenchmarkCompileModule(b *testing.B) {
	module := readModule(b)
	ctx := context.Background()
	for b.Loop() {
		r := wazero.NewRuntime(ctx)
		if _, err := r.CompileModule(ctx, module); err != nil {
			b.Fatal(err)
		}
		r.Close(ctx)
	}
	b.ReportMetric(float64(len(module))/(1<<20), "module-MiB")
}

// BenchmarkStartVM measures what each worker pays: instantiating the compiled module
// and running _initialize, proxy_on_vm_start and proxy_on_configure (compiled code
// comes from the cache, as it would after the first worker).
func BenchmarkStartVM(b *testing.B) {
	module := readModule(b)
	cache := b.TempDir()
	ctx := context.Background()
	start := func() *envoyhost.Host {
		h, err := envoyhost.New(ctx, envoyhost.Config{Module: module, CompilationCacheDir: cache,
			PluginConfiguration: []byte(`{"tenant_id":"contoso"}`), Log: func(envoyhost.Log) {}})
		if err != nil {
			b.Fatal(err)
		}
		return h
	}
	start().Close(ctx) // fill the cache
	for b.Loop() {
		start().Close(ctx)
	}
}

// BenchmarkRequest compares one request three ways: to the upstream alone; through a
// plain Go reverse proxy (the cost of the extra HTTP hop); and through the pass-through
// filter in the runner's host. The last two differ by what the filter adds per request:
// the host's bookkeeping, the VM calls and the filter's own work.
func BenchmarkRequest(b *testing.B) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "hello")
	}))
	defer upstream.Close()
	ctx := context.Background()
	host, err := envoyhost.New(ctx, envoyhost.Config{Module: readModule(b), Upstream: upstream.URL,
		CompilationCacheDir: b.TempDir(), Log: func(envoyhost.Log) {}})
	if err != nil {
		b.Fatal(err)
	}
	defer host.Close(ctx)
	proxy := httptest.NewUnstartedServer(host)
	proxy.Config.ConnContext = host.ConnContext
	proxy.Start()
	defer proxy.Close()

	upstreamURL, _ := url.Parse(upstream.URL)
	plain := httptest.NewServer(httputil.NewSingleHostReverseProxy(upstreamURL))
	defer plain.Close()

	for _, target := range []struct{ name, url string }{
		{"upstream-alone", upstream.URL},
		{"reverse-proxy", plain.URL},
		{"through-filter", proxy.URL},
	} {
		b.Run(target.name, func(b *testing.B) {
			client := &http.Client{}
			req, _ := http.NewRequest("GET", target.url+"/page", nil)
			req.Header.Set("Accept", "text/html")
			req.Header.Set("X-Auth-Request-User", "forged")
			b.ReportAllocs()
			for b.Loop() {
				resp, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatal(resp.Status)
				}
			}
		})
	}
}
