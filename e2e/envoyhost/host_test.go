package envoyhost

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/internal/wasmstub"
)

// These tests drive testdata/hostprobe, a module built with the SDK, through the host
// over real HTTP, and check that each host function behaves as Envoy's does.

var (
	// probeWasm is the probe as make build leaves a module (poll_oneoff answered inside
	// it, see internal/wasmstub); rawProbeWasm is go build's output alone.
	probeWasm, rawProbeWasm []byte
	cacheDir                string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "envoyhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := filepath.Join(dir, "probe.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, "./testdata/hostprobe")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the probe module: %v\n%s", err, msg)
		os.Exit(1)
	}
	if rawProbeWasm, err = os.ReadFile(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if probeWasm, _, err = wasmstub.Stub(rawProbeWasm, provided); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cacheDir = filepath.Join(dir, "cache")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// echo is the upstream: it answers with what it received, as JSON.
type echoed struct {
	Method  string              `json:"method"`
	Path    string              `json:"path"`
	Host    string              `json:"host"`
	Headers map[string][]string `json:"headers"`
	Body    string              `json:"body"`
}

func echoHandler(hits *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if n, _ := strconv.Atoi(r.URL.Query().Get("chunks")); n > 0 {
			for i := 0; i < n; i++ {
				fmt.Fprintf(w, "chunk-%d;", i)
				w.(http.Flusher).Flush()
			}
			return
		}
		body, _ := io.ReadAll(r.Body)
		headers := map[string][]string{}
		for k, v := range r.Header {
			headers[strings.ToLower(k)] = v
		}
		w.Header().Set("content-type", "application/json")
		w.Header().Set("x-upstream", "echo")
		json.NewEncoder(w).Encode(echoed{r.Method, r.URL.RequestURI(), r.Host, headers, string(body)})
	})
}

type logRecorder struct {
	mu    sync.Mutex
	lines []Log
}

func (r *logRecorder) add(l Log) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lines = append(r.lines, l)
}

func (r *logRecorder) find(substr string) (Log, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if strings.Contains(l.Message, substr) {
			return l, true
		}
	}
	return Log{}, false
}

type harness struct {
	host         *Host
	url          string
	upstreamHits *atomic.Int32
	logs         *logRecorder
}

func startProbe(t *testing.T, configure func(*Config)) *harness {
	t.Helper()
	hits := &atomic.Int32{}
	upstream := httptest.NewServer(echoHandler(hits))
	t.Cleanup(upstream.Close)
	logs := &logRecorder{}
	cfg := Config{
		Module:              probeWasm,
		PluginName:          "probe",
		Upstream:            upstream.URL,
		CompilationCacheDir: cacheDir,
		LogLevel:            LogTrace,
		Log:                 logs.add,
	}
	if configure != nil {
		configure(&cfg)
	}
	h, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnContext = h.ConnContext
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		if err := h.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &harness{host: h, url: srv.URL, upstreamHits: hits, logs: logs}
}

// newConn returns a client that opens a new connection for every request, so that
// requests spread over the workers.
func newConn() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

type answer struct {
	status  int
	header  http.Header
	body    string
	jsonMap map[string]any
}

func do(t *testing.T, c *http.Client, method, url, body string, headers ...string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := answer{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &r.jsonMap)
	return r
}

// waitShared polls a shared-data key, through the probe, until ok accepts its value.
func (h *harness) waitShared(t *testing.T, key string, ok func(string) bool) bool {
	t.Helper()
	c := newConn()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ok(do(t, c, "GET", h.url+"/probe/shared?op=get&key="+key, "").str("value")) {
			return true
		}
	}
	return false
}

func (r answer) echo(t *testing.T) echoed {
	t.Helper()
	var e echoed
	if err := json.Unmarshal([]byte(r.body), &e); err != nil {
		t.Fatalf("not an upstream echo (status %d): %q", r.status, r.body)
	}
	return e
}

func (r answer) str(key string) string { return fmt.Sprint(r.jsonMap[key]) }

func TestPassThroughRunsBothSides(t *testing.T) {
	h := startProbe(t, nil)
	r := do(t, nil, "GET", h.url+"/hello?x=1", "", "X-Custom", "yes")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	e := r.echo(t)
	if e.Path != "/hello?x=1" || e.Headers["x-custom"][0] != "yes" || e.Headers["x-probe-vm"] == nil {
		t.Errorf("upstream saw %+v", e)
	}
	if got := r.header.Get("x-probe-response"); got != "seen" {
		t.Errorf("response callback did not run: x-probe-response=%q", got)
	}
	// Envoy forgets the request headers once they have gone upstream.
	if got := r.header.Get("x-probe-request-headers"); got != "unavailable" {
		t.Errorf("request headers in the response phase: %q, want unavailable", got)
	}
	if r.header.Get("x-upstream") != "echo" {
		t.Errorf("upstream headers lost: %v", r.header)
	}
}

func TestRequestHeaderMapIsEnvoys(t *testing.T) {
	h := startProbe(t, nil)
	for _, tc := range []struct {
		method, body string
		eos          bool
	}{{"GET", "", true}, {"POST", "payload", false}} {
		r := do(t, nil, tc.method, h.url+"/probe/headers", tc.body, "X-Mixed-Case", "v1", "X-Mixed-Case", "v2")
		var got struct {
			Headers     [][2]string `json:"headers"`
			Count       int         `json:"count"`
			EndOfStream bool        `json:"end_of_stream"`
		}
		if err := json.Unmarshal([]byte(r.body), &got); err != nil {
			t.Fatalf("%s: %v: %s", tc.method, err, r.body)
		}
		wantFirst := [][2]string{{":authority", strings.TrimPrefix(h.url, "http://")}, {":path", "/probe/headers"}, {":method", tc.method}, {":scheme", "http"}}
		for i, w := range wantFirst {
			if got.Headers[i] != w {
				t.Errorf("%s: header %d = %q, want %q", tc.method, i, got.Headers[i], w)
			}
		}
		var mixed []string
		names := map[string]bool{}
		for _, p := range got.Headers {
			names[p[0]] = true
			if p[0] != strings.ToLower(p[0]) {
				t.Errorf("%s: header name %q is not lower-case", tc.method, p[0])
			}
			if p[0] == "x-mixed-case" {
				mixed = append(mixed, p[1])
			}
		}
		if strings.Join(mixed, ",") != "v1,v2" {
			t.Errorf("%s: repeated header = %q, want both values in order", tc.method, mixed)
		}
		for _, n := range []string{"x-request-id", "x-forwarded-proto", "user-agent"} {
			if !names[n] {
				t.Errorf("%s: no %s header", tc.method, n)
			}
		}
		// The probe adds two headers before reading them all.
		if got.Count+2 != len(got.Headers) || got.EndOfStream != tc.eos {
			t.Errorf("%s: count %d (of %d), end_of_stream %v; want %v", tc.method, got.Count, len(got.Headers), got.EndOfStream, tc.eos)
		}
	}
}

func TestHeaderChangesReachTheUpstream(t *testing.T) {
	h := startProbe(t, nil)
	r := do(t, nil, "GET", h.url+"/probe/rewrite", "", "X-Dup", "first", "X-Dup", "second", "X-Remove", "gone")
	e := r.echo(t)
	if e.Path != "/rewritten?by=probe" {
		t.Errorf("path %q, want the rewritten one", e.Path)
	}
	if e.Headers["x-remove"] != nil || e.Headers["x-added"] == nil {
		t.Errorf("remove/add not applied: %v", e.Headers)
	}
	// Like Envoy's setCopy, replace removes every occurrence and adds one.
	if got := strings.Join(e.Headers["x-dup"], ","); got != "replaced" {
		t.Errorf("x-dup = %q, want replaced alone", got)
	}
}

func TestLocalReplyPassesThroughTheFiltersResponseCallbacks(t *testing.T) {
	h := startProbe(t, nil)
	r := do(t, nil, "GET", h.url+"/probe/local?status=403&body=go+away", "")
	if r.status != 403 || r.body != "go away" {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	if r.header.Get("x-probe-local") != "1" || r.header.Get("content-type") != "text/plain" {
		t.Errorf("reply headers %v", r.header)
	}
	if r.header.Get("x-probe-response") != "seen" {
		t.Errorf("the local reply skipped proxy_on_response_headers")
	}
	if n := h.upstreamHits.Load(); n != 0 {
		t.Errorf("upstream called %d times", n)
	}
}

func TestLocalReplyReplacesUpstreamResponse(t *testing.T) {
	h := startProbe(t, nil)
	r := do(t, nil, "GET", h.url+"/probe/replace-response", "")
	if r.status != 418 || r.header.Get("x-upstream") != "" || !strings.Contains(r.body, "replaced by the filter") {
		t.Fatalf("got %d %v %q", r.status, r.header, r.body)
	}
}

func startCluster(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestDispatchedCalls(t *testing.T) {
	idp := startCluster(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "login.example" {
			http.Error(w, "wrong host "+r.Host, 400)
			return
		}
		w.Header().Set("x-idp", "yes")
		w.WriteHeader(201)
		io.WriteString(w, "created "+r.URL.Path)
	})
	slow := startCluster(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	large := startCluster(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write(make([]byte, 2048))
	})
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	h := startProbe(t, func(c *Config) {
		c.Clusters = map[string]string{"idp": idp, "slow": slow, "large": large, "down": closedURL}
		c.CallResponseLimit = 1024
	})

	cases := []struct {
		name, query      string
		wantStatus       int
		wantField, value string
		alsoField, also  string
	}{
		{"answer", "cluster=idp&path=/token&authority=login.example", 200, "status", "201", "body", "created /token"},
		{"unknown cluster", "cluster=nope&path=/&authority=x", 500, "dispatch", "bad argument", "", ""},
		{"no :authority", "cluster=idp&path=/&authority=x&omit=:authority", 500, "dispatch", "bad argument", "", ""},
		{"no :path", "cluster=idp&path=/&authority=x&omit=:path", 500, "dispatch", "bad argument", "", ""},
		{"timeout is Envoy's 504", "cluster=slow&path=/&authority=x&timeout=100", 200, "status", "504", "body", "upstream request timeout"},
		{"unreachable is Envoy's 503", "cluster=down&path=/&authority=x&timeout=2000", 200, "status", "503", "body", "upstream connect error"},
		{"over the buffer limit resets", "cluster=large&path=/&authority=x", 200, "num_headers", "0", "proxy_status", "11"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, nil, "GET", h.url+"/probe/dispatch?"+tc.query, "")
			if r.status != tc.wantStatus {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			if !strings.Contains(r.str(tc.wantField), tc.value) {
				t.Errorf("%s = %q, want %q (reply %s)", tc.wantField, r.str(tc.wantField), tc.value, r.body)
			}
			if tc.alsoField != "" && !strings.Contains(r.str(tc.alsoField), tc.also) {
				t.Errorf("%s = %q, want %q", tc.alsoField, r.str(tc.alsoField), tc.also)
			}
		})
	}
	t.Run("answer headers include :status", func(t *testing.T) {
		r := do(t, nil, "GET", h.url+"/probe/dispatch?cluster=idp&path=/&authority=login.example", "")
		if !strings.Contains(r.body, `[":status","201"]`) || !strings.Contains(r.body, `["x-idp","yes"]`) {
			t.Errorf("headers: %s", r.body)
		}
	})
}

// A stream paused on a dispatched call must not block its VM: ten streams on one VM
// wait on a cluster that answers only once all ten calls have arrived.
func TestPausedStreamsDoNotBlockTheVM(t *testing.T) {
	const n = 10
	var arrived sync.WaitGroup
	arrived.Add(n)
	allHere := make(chan struct{})
	go func() { arrived.Wait(); close(allHere) }()
	barrier := startCluster(t, func(w http.ResponseWriter, r *http.Request) {
		arrived.Done()
		select {
		case <-allHere:
			io.WriteString(w, "together")
		case <-time.After(5 * time.Second):
			http.Error(w, "calls were serialized", 500)
		}
	})
	h := startProbe(t, func(c *Config) { c.Clusters = map[string]string{"barrier": barrier} })
	var wg sync.WaitGroup
	results := make([]answer, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i] = do(t, nil, "GET", h.url+"/probe/dispatch?cluster=barrier&path=/&authority=x&then=continue", "")
		}(i)
	}
	wg.Wait()
	for i, r := range results {
		e := r.echo(t)
		if got := e.Headers["x-probe-call-status"]; len(got) != 1 || got[0] != "200" {
			t.Errorf("request %d: upstream saw x-probe-call-status %v", i, got)
		}
	}
}

func TestPauseAndContinue(t *testing.T) {
	other := startCluster(t, func(w http.ResponseWriter, r *http.Request) {})
	never := startCluster(t, func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	const idleTimeout = 1500 * time.Millisecond
	h := startProbe(t, func(c *Config) {
		c.Clusters = map[string]string{"other": other, "never": never}
		c.StreamIdleTimeout = idleTimeout
	})
	t.Run("body rewritten", func(t *testing.T) {
		e := do(t, nil, "POST", h.url+"/probe/body", "hello").echo(t)
		if e.Body != "HELLO!" || e.Headers["content-length"][0] != "6" {
			t.Errorf("upstream got %q with content-length %v", e.Body, e.Headers["content-length"])
		}
	})
	// cpp-host turns StopIteration on headers into StopAllIterationAndWatermark: the body
	// does not reach the filter either, and a stream nothing resumes ends with Envoy's
	// stream idle timeout.
	t.Run("StopIteration on headers holds the body too, until the idle timeout", func(t *testing.T) {
		before := h.upstreamHits.Load()
		began := time.Now()
		r := do(t, nil, "POST", h.url+"/probe/pause", "abc")
		if r.status != http.StatusRequestTimeout || r.body != "stream timeout" {
			t.Errorf("got %d %q, want 408 stream timeout", r.status, r.body)
		}
		if took := time.Since(began); took < idleTimeout {
			t.Errorf("answered after %v, before the idle timeout", took)
		}
		if h.upstreamHits.Load() != before {
			t.Error("a paused request reached the upstream")
		}
	})
	t.Run("paused with nothing to resume stays paused", func(t *testing.T) {
		before := h.upstreamHits.Load()
		c := &http.Client{Timeout: 300 * time.Millisecond}
		if _, err := c.Get(h.url + "/probe/pause"); err == nil {
			t.Fatal("a paused request without body completed")
		}
		if h.upstreamHits.Load() != before {
			t.Error("a paused request reached the upstream")
		}
	})
	t.Run("body seen with end of stream", func(t *testing.T) {
		r := do(t, nil, "POST", h.url+"/probe/body-local", "0123456789")
		if r.str("size") != "10" || r.str("end_of_stream") != "true" || r.str("body") != "0123456789" {
			t.Errorf("filter saw %s", r.body)
		}
	})
	t.Run("response paused then resumed", func(t *testing.T) {
		r := do(t, nil, "GET", h.url+"/probe/pause-response?cluster=other", "")
		if r.status != 200 || r.header.Get("x-probe-resumed") != "yes" {
			t.Errorf("got %d %v", r.status, r.header)
		}
		r.echo(t)
	})
	t.Run("response headers held by StopIteration wait for continue, until the idle timeout", func(t *testing.T) {
		r := do(t, nil, "GET", h.url+"/probe/pause-response-leaky?cluster=never", "")
		if r.status != http.StatusRequestTimeout || r.header.Get("x-upstream") != "" {
			t.Errorf("got %d %v; want the response held, then 408", r.status, r.header)
		}
	})
	t.Run("response body buffered across frames and replaced", func(t *testing.T) {
		r := do(t, nil, "GET", h.url+"/probe/wrap-body?chunks=50", "")
		want := ""
		for i := 0; i < 50; i++ {
			want += fmt.Sprintf("chunk-%d;", i)
		}
		if r.body != fmt.Sprintf("wrapped(%d:%s)", len(want), want) {
			t.Errorf("body %q", r.body)
		}
	})
}

func TestSharedDataCASAcrossVMs(t *testing.T) {
	h := startProbe(t, func(c *Config) { c.Concurrency = 2 })
	c := newConn() // a new connection each time: requests alternate between the VMs
	get := func() answer { return do(t, c, "GET", h.url+"/probe/shared?op=get&key=k", "") }
	set := func(value, cas string) answer {
		return do(t, c, "GET", h.url+"/probe/shared?op=set&key=k&value="+value+"&cas="+cas, "")
	}

	if r := get(); r.str("get") != "not found" {
		t.Fatalf("missing key: %s", r.body)
	}
	first := set("one", "0")
	read := get()
	if read.str("value") != "one" || read.str("vm") == first.str("vm") {
		t.Fatalf("value %q read on %s, written on %s: want it visible on the other VM", read.str("value"), read.str("vm"), first.str("vm"))
	}
	cas := read.str("cas")
	if r := set("two", cas); r.str("set") != "ok" {
		t.Fatalf("set with current cas: %s", r.body)
	}
	if r := set("three", cas); r.str("set") != "cas mismatch" {
		t.Fatalf("set with stale cas: %s", r.body)
	}
	if r := get(); r.str("value") != "two" || r.str("cas") == cas {
		t.Fatalf("after conflict: %s", r.body)
	}
}

func TestTicksRunOnEveryVM(t *testing.T) {
	h := startProbe(t, func(c *Config) {
		c.Concurrency = 2
		c.PluginConfiguration = []byte(`{"tick_ms": 5}`)
	})
	c := newConn()
	deadline := time.Now().Add(5 * time.Second)
	seen := map[string]bool{}
	for time.Now().Before(deadline) {
		for i := 0; i < 2; i++ { // two requests on new connections reach both VMs
			r := do(t, c, "GET", h.url+"/probe/vm", "")
			if ticks, _ := strconv.Atoi(r.str("ticks")); ticks > 2 {
				seen[r.str("vm")] = true
			}
		}
		total, _ := strconv.Atoi(do(t, c, "GET", h.url+"/probe/shared?op=get&key=ticks", "").str("value"))
		if len(seen) == 2 && total >= 10 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("ticks did not run on both VMs (saw %v)", seen)
}

func TestSharedQueueSignalsTheRegisteringVM(t *testing.T) {
	h := startProbe(t, func(c *Config) { c.Concurrency = 2 })
	c := newConn()
	r := do(t, c, "GET", h.url+"/probe/queue?value=hello", "")
	if r.str("enqueue") != "ok" || r.str("missing") != "not found" {
		t.Fatalf("queue: %s", r.body)
	}
	if !h.waitShared(t, "queue-last", func(v string) bool { return strings.HasPrefix(v, "hello@vm-") }) {
		t.Fatal("proxy_on_queue_ready never dequeued the item")
	}
}

func TestMetrics(t *testing.T) {
	h := startProbe(t, nil)
	do(t, nil, "GET", h.url+"/probe/metrics", "")
	r := do(t, nil, "GET", h.url+"/probe/metrics", "")
	want := map[string]string{
		"requests": "2", "gauge": "6",
		"increment_counter_by_zero": "2", // BadArgument: counters only go up
		"get_histogram":             "2", // BadArgument: histograms cannot be read back
		"get_unknown":               "1", // NotFound
	}
	for k, v := range want {
		if r.str(k) != v {
			t.Errorf("%s = %s, want %s", k, r.str(k), v)
		}
	}
	if m, ok := h.host.Metric("probe_sizes"); !ok || m.Kind != "histogram" || len(m.Samples) != 2 || m.Samples[0] != 42 {
		t.Errorf("histogram %+v", m)
	}
	if m, _ := h.host.Metric("probe_requests"); m.Value != 2 {
		t.Errorf("counter %+v", m)
	}
}

func TestProperties(t *testing.T) {
	h := startProbe(t, func(c *Config) { c.VMID = "vm-one"; c.RootID = "root-one" })
	r := do(t, nil, "GET", h.url+"/probe/props?q=1", "")
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(h.url, "http://"))
	want := map[string]string{
		"plugin_name": "probe", "plugin_vm_id": "vm-one", "plugin_root_id": "root-one",
		"path": "/probe/props?q=1", "url_path": "/probe/props", "method": "GET", "scheme": "http",
		"host": strings.TrimPrefix(h.url, "http://"), "protocol": "HTTP/1.1", "destination_port": port,
		"unknown": "error: not found", "set": "ok", "state": "kept",
	}
	for k, v := range want {
		if r.str(k) != v {
			t.Errorf("%s = %q, want %q", k, r.str(k), v)
		}
	}
	if !strings.HasPrefix(r.str("source"), "127.0.0.1:") || r.str("id") == "" {
		t.Errorf("source %q id %q", r.str("source"), r.str("id"))
	}
	if !strings.Contains(r.body, `[":path","/probe/props?q=1"]`) {
		t.Errorf("request.headers: %s", r.body)
	}
	ts, _ := strconv.ParseFloat(r.str("time"), 64)
	if d := time.Since(time.Unix(0, int64(ts))); d < 0 || d > time.Minute {
		t.Errorf("request.time is %v ago", d)
	}
}

func TestEnvironmentAndVMConfiguration(t *testing.T) {
	h := startProbe(t, func(c *Config) {
		c.Env = map[string]string{"PROBE_ENV": "hello", "OTHER": "x"}
		c.VMConfiguration = []byte(`{"vm": "config"}`)
	})
	r := do(t, nil, "GET", h.url+"/probe/env?key=PROBE_ENV", "")
	if r.str("value") != "hello" || r.str("environ") != "[OTHER=x PROBE_ENV=hello]" {
		t.Errorf("env: %s", r.body)
	}
	if got := do(t, nil, "GET", h.url+"/probe/vm", "").str("vm_config"); got != `{"vm": "config"}` {
		t.Errorf("vm config %q", got)
	}
}

func TestPluginStartFailureCarriesTheModulesWords(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{"plugin", Config{PluginConfiguration: []byte(`{"fail_start": true}`)}, []string{"proxy_on_configure returned false", "told to fail: fail_start is true"}},
		{"vm", Config{VMConfiguration: []byte(`{"fail_vm_start": true}`)}, []string{"proxy_on_vm_start returned false"}},
		// The Go runtime prints a panic to stderr in pieces; the error has it whole.
		{"panic", Config{PluginConfiguration: []byte(`{"panic_start": true}`)}, []string{"proxy_on_configure", "panic: probe: told to panic at start\n"}},
		// Without its own poll_oneoff, a Go module's panic dies of Envoy 1.33's ENOSYS on
		// the way out (freezetheworld sleeps), and the panic's words are lost...
		{"panic, raw module, 1.33", Config{Module: rawProbeWasm, PluginConfiguration: []byte(`{"panic_start": true}`)},
			[]string{"fatal error: wasi_snapshot_preview1.poll_oneoff", "panic during panic"}},
		// ...which the newest Envoy answers with success.
		{"panic, raw module, newest", Config{Module: rawProbeWasm, Envoy: EnvoyNewest, PluginConfiguration: []byte(`{"panic_start": true}`)},
			[]string{"panic: probe: told to panic at start\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			if cfg.Module == nil {
				cfg.Module = probeWasm
			}
			cfg.CompilationCacheDir, cfg.Log = cacheDir, func(Log) {}
			h, err := New(context.Background(), cfg)
			if err == nil {
				h.Close(context.Background())
				t.Fatal("started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestLesserHostCalls(t *testing.T) {
	h := startProbe(t, func(c *Config) {
		c.LogLevel = LogInfo
		c.VMConfiguration = []byte("abc")
	})
	r := do(t, nil, "GET", h.url+"/probe/abi", "")
	want := map[string]string{
		"log_level": "2", "log_level_status": "0", "now_status": "0",
		"request_headers_size_status": "0",
		"call_headers_size_status":    "2", // no call response now: BadArgument
		"vm_config_buffer_status":     "0", "vm_config_length": "3",
		"plugin_config_buffer_status": "1",  // readable only in proxy_on_configure
		"grpc_call":                   "12", // Unimplemented by this host
		"foreign":                     "not found",
		"proxy_done":                  "1", // NotFound: the plugin is not shutting down
		"set_effective_context":       "2", // no such context
		"response_headers_now":        "bad argument",
		"call_body_now":               "not found",
	}
	for k, v := range want {
		if r.str(k) != v {
			t.Errorf("%s = %s, want %s", k, r.str(k), v)
		}
	}
	now, _ := strconv.ParseFloat(r.str("now"), 64)
	if d := time.Since(time.Unix(0, int64(now))); d < 0 || d > time.Minute {
		t.Errorf("proxy_get_current_time_nanoseconds is %v off", d)
	}
}

func TestLogs(t *testing.T) {
	h := startProbe(t, func(c *Config) { c.LogLevel = LogInfo })
	do(t, nil, "GET", h.url+"/probe/log", "")
	for _, tc := range []struct {
		msg   string
		level LogLevel
	}{{"probe: warn line", LogWarn}, {"probe: stdout line", LogInfo}, {"probe: stderr line", LogError}} {
		l, ok := h.logs.find(tc.msg)
		if !ok || l.Level != tc.level || strings.HasSuffix(l.Message, "\n") {
			t.Errorf("%q: logged %v at %v", tc.msg, ok, l.Level)
		}
	}
	for _, below := range []string{"probe: trace line", "probe: debug line"} {
		if _, ok := h.logs.find(below); ok {
			t.Errorf("%q logged below the level", below)
		}
	}
}

func TestClockAndRandomness(t *testing.T) {
	h := startProbe(t, nil)
	a := do(t, nil, "GET", h.url+"/probe/clock", "")
	b := do(t, nil, "GET", h.url+"/probe/clock", "")
	if len(a.str("random")) != 64 || a.str("random") == b.str("random") || a.str("err") != "ok" {
		t.Errorf("random: %q then %q", a.str("random"), b.str("random"))
	}
	now, _ := strconv.ParseFloat(a.str("now"), 64)
	if d := time.Since(time.Unix(0, int64(now))); d < 0 || d > time.Minute {
		t.Errorf("time.Now in the module is %v off", d)
	}
}

// A trap (here a Go panic) fails the VM; what happens to requests then is the plugin's
// failure_policy: 503 for good (FAIL_CLOSED, the default), the filter skipped
// (FAIL_OPEN), or a new VM after the reload backoff (FAIL_RELOAD).
func TestTrapFailsTheVMAsTheFailurePolicySays(t *testing.T) {
	// Envoy measures the backoff from the VM's start, so the first two requests must
	// come well within it, even on a loaded machine.
	const backoff = 1500 * time.Millisecond
	for _, tc := range []struct {
		policy FailurePolicy
		// trapped is the status of the request whose callback trapped; after, of the
		// next one; later, of one after the reload backoff.
		trapped, after, later int
		filtered              bool // the later request went through the filter
	}{
		{FailClosed, 503, 503, 503, false},
		{FailOpen, 200, 200, 200, false},
		{FailReload, 503, 503, 200, true},
	} {
		t.Run(fmt.Sprint(tc.policy), func(t *testing.T) {
			h := startProbe(t, func(c *Config) { c.FailurePolicy, c.ReloadBackoff = tc.policy, backoff })
			if r := do(t, nil, "GET", h.url+"/probe/panic", ""); r.status != tc.trapped {
				t.Fatalf("the request that trapped: %d %q, want %d", r.status, r.body, tc.trapped)
			}
			if r := do(t, nil, "GET", h.url+"/hello", ""); r.status != tc.after {
				t.Fatalf("right after the trap: %d, want %d", r.status, tc.after)
			}
			time.Sleep(backoff)
			r := do(t, nil, "GET", h.url+"/hello", "")
			if r.status != tc.later {
				t.Fatalf("after the backoff: %d, want %d", r.status, tc.later)
			}
			if filtered := r.header.Get("x-probe-response") != ""; filtered != tc.filtered {
				t.Errorf("after the backoff, through the filter: %v, want %v", filtered, tc.filtered)
			}
			if l, ok := h.logs.find("failed"); !ok || l.Level != LogCritical {
				t.Errorf("no critical log of the failure")
			}
		})
	}
}

func TestCloseStreamResetsTheConnection(t *testing.T) {
	h := startProbe(t, nil)
	if _, err := http.Get(h.url + "/probe/close"); err == nil {
		t.Fatal("the client got a response")
	}
	if r := do(t, nil, "GET", h.url+"/hello", ""); r.status != 200 {
		t.Fatalf("the VM did not survive a reset stream: %d", r.status)
	}
}

func TestStreamContextEnds(t *testing.T) {
	h := startProbe(t, nil)
	do(t, nil, "GET", h.url+"/hello", "")
	if !h.waitShared(t, "last-done", func(v string) bool { return strings.HasSuffix(v, " /hello") }) {
		t.Fatal("proxy_on_log never ran for the finished stream")
	}
}

func TestConnectionsStayOnTheirWorker(t *testing.T) {
	h := startProbe(t, func(c *Config) { c.Concurrency = 2 })
	keepAlive := &http.Client{Timeout: 5 * time.Second}
	vms := map[string]bool{}
	for i := 0; i < 5; i++ {
		vms[do(t, keepAlive, "GET", h.url+"/hello", "").echo(t).Headers["x-probe-vm"][0]] = true
	}
	if len(vms) != 1 {
		t.Errorf("one connection used %d VMs", len(vms))
	}
	fresh := newConn()
	for i := 0; i < 4; i++ {
		vms[do(t, fresh, "GET", h.url+"/hello", "").echo(t).Headers["x-probe-vm"][0]] = true
	}
	if len(vms) != 2 {
		t.Errorf("new connections used %d VMs, want both", len(vms))
	}
}

func TestUpstreamFailuresAreEnvoysLocalReplies(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	h := startProbe(t, func(c *Config) { c.Upstream = closedURL })
	r := do(t, nil, "GET", h.url+"/hello", "")
	if r.status != 503 || !strings.Contains(r.body, "upstream connect error") {
		t.Fatalf("got %d %q", r.status, r.body)
	}
	if r.header.Get("x-probe-response") != "seen" {
		t.Error("the router's reply did not pass through the filter")
	}
}

func TestRequestBodyLimit(t *testing.T) {
	h := startProbe(t, func(c *Config) { c.RequestBodyLimit = 10 })
	if r := do(t, nil, "POST", h.url+"/hello", "01234567890"); r.status != 413 {
		t.Fatalf("got %d", r.status)
	}
	if r := do(t, nil, "POST", h.url+"/hello", "0123456789"); r.status != 200 {
		t.Fatalf("got %d", r.status)
	}
}

func TestShutdownWaitsForProxyDone(t *testing.T) {
	logs := &logRecorder{}
	h, err := New(context.Background(), Config{
		Module: probeWasm, CompilationCacheDir: cacheDir, Log: logs.add,
		PluginConfiguration: []byte(`{"delay_done": true, "tick_ms": 10}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := logs.find("done later"); !ok {
		t.Error("proxy_on_done was not called")
	}
	if _, ok := logs.find("proxy_done was not called"); ok {
		t.Error("the host gave up waiting although the module called proxy_done")
	}
}

// seenHeaders asks the probe for the request headers it was given.
func seenHeaders(t *testing.T, h *harness, headers ...string) map[string][]string {
	t.Helper()
	r := do(t, nil, "GET", h.url+"/probe/headers", "", headers...)
	var got struct {
		Headers [][2]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(r.body), &got); err != nil {
		t.Fatalf("%v: %s", err, r.body)
	}
	out := map[string][]string{}
	for _, p := range got.Headers {
		out[p[0]] = append(out[p[0]], p[1])
	}
	return out
}

// :scheme, x-forwarded-proto and x-forwarded-for as Envoy's connection manager derives
// them (ConnectionManagerUtility::mutateRequestHeaders), over a plain-HTTP listener.
func TestSchemeAndForwardingHeadersAreEnvoys(t *testing.T) {
	for _, tc := range []struct {
		name             string
		useRemoteAddress bool
		trustedHops      int
		headers          []string
		scheme, xfp, xff string
	}{
		{"no forwarding headers", false, 0, nil, "http", "http", ""},
		// Without use_remote_address Envoy believes the client: an edge listener must set it.
		{"client says https, not an edge", false, 0, []string{"X-Forwarded-Proto", "https"}, "https", "https", ""},
		{"client says https, edge", true, 0, []string{"X-Forwarded-Proto", "https", "X-Forwarded-For", "203.0.113.9"}, "http", "http", "203.0.113.9,127.0.0.1"},
		{"client says https, behind one trusted proxy", true, 1, []string{"X-Forwarded-Proto", "https", "X-Forwarded-For", "203.0.113.9"}, "https", "https", "203.0.113.9,127.0.0.1"},
		{"no valid scheme in x-forwarded-proto", false, 0, []string{"X-Forwarded-Proto", "ftp"}, "http", "ftp", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startProbe(t, func(c *Config) { c.UseRemoteAddress, c.XFFNumTrustedHops = tc.useRemoteAddress, tc.trustedHops })
			got := seenHeaders(t, h, tc.headers...)
			if s := strings.Join(got[":scheme"], "|"); s != tc.scheme {
				t.Errorf(":scheme = %q, want %q", s, tc.scheme)
			}
			if s := strings.Join(got["x-forwarded-proto"], "|"); s != tc.xfp {
				t.Errorf("x-forwarded-proto = %q, want %q", s, tc.xfp)
			}
			if s := strings.Join(got["x-forwarded-for"], "|"); s != tc.xff {
				t.Errorf("x-forwarded-for = %q, want %q", s, tc.xff)
			}
		})
	}
}

// Envoy keeps some headers inline and merges their repeats into one value before a
// filter sees them; other repeated headers stay apart.
func TestRepeatedHeadersMergeAsEnvoysCodecsMergeThem(t *testing.T) {
	h := startProbe(t, nil)
	got := seenHeaders(t, h, "Authorization", "Bearer a", "Authorization", "Bearer b",
		"X-Custom", "1", "X-Custom", "2", "Cookie", "a=1", "Cookie", "b=2")
	for name, want := range map[string][]string{
		"authorization": {"Bearer a,Bearer b"},
		"x-custom":      {"1", "2"},
		"cookie":        {"a=1", "b=2"}, // HTTP/1: cookie lines stay apart
	} {
		if !slices.Equal(got[name], want) {
			t.Errorf("%s = %q, want %q", name, got[name], want)
		}
	}
	// Over HTTP/2, Envoy's codec joins cookie fields with "; ".
	if merged := mergeRepeated(headerMap{{"cookie", "a=1"}, {"x", "1"}, {"cookie", "b=2"}}, true); !slices.Equal(merged, headerMap{{"cookie", "a=1; b=2"}, {"x", "1"}}) {
		t.Errorf("HTTP/2 cookies merged into %q", merged)
	}
}
