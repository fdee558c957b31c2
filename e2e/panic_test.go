package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// A panic fails one operation, not the worker: with the fault-injection build, through
// the runner with one worker, a panic in each kind of callback answers that request (or
// the stream a tick or a call's answer was acting for) with a 500 page naming its
// request id, logs the panic with its stack, and the same VM serves the next request.
func TestPanicFailsOneOperationNotTheWorker(t *testing.T) {
	s := newStack(t, stackOptions{concurrency: 1, runnerArgs: []string{"-wasm", faultModuleFile}})
	b := s.browser()
	do := func(path, accept, fault, requestID string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", s.base+path, nil)
		req.Header.Set("Accept", accept)
		req.Header.Set("X-Request-Id", requestID)
		if fault != "" {
			req.Header.Set("X-Entra-Auth-Fault", fault)
		}
		resp, err := b.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	served := func() {
		t.Helper()
		if status, body := do("/healthz", "text/html", "", "after"); status != 200 {
			t.Fatalf("the next request got %d: %.200s", status, body)
		}
	}

	t.Run("request headers, a browser", func(t *testing.T) {
		status, body := do("/app", "text/html", "request-headers", "req-panic-page")
		if status != 500 || !strings.Contains(body, "req-panic-page") || !strings.Contains(body, "Something went wrong") {
			t.Errorf("got %d: %.300s", status, body)
		}
		served()
	})
	t.Run("request headers, a program", func(t *testing.T) {
		status, body := do("/api/items", "application/json", "request-headers", "req-panic-json")
		var got map[string]string
		if status != 500 || json.Unmarshal([]byte(body), &got) != nil || got["error"] != "internal_error" || got["request_id"] != "req-panic-json" {
			t.Errorf("got %d: %.300s", status, body)
		}
		served()
	})
	t.Run("response headers", func(t *testing.T) {
		if status, body := do("/healthz", "text/html", "response-headers", "req-panic-response"); status != 500 {
			t.Errorf("got %d: %.300s", status, body)
		}
		served()
	})
	t.Run("a tick", func(t *testing.T) {
		do("/healthz", "text/html", "tick", "req-arm-tick")
		if !s.runner.stderr.waitFor("recovered from a panic in OnTick") {
			t.Fatalf("no panic in a tick logged:\n%s", tail(s.runner.stderr.String(), 2000))
		}
		served()
	})
	t.Run("a call's answer, during a sign-in", func(t *testing.T) {
		start := b.get("/app")
		if start.status != 302 {
			t.Fatalf("sign-in start: %d", start.status)
		}
		q := start.location.Query()
		q.Set("mock_user", "ada@contoso.example")
		authorize := *start.location
		authorize.RawQuery = q.Encode()
		back := b.get(authorize.String())
		if back.status != 302 || back.location == nil {
			t.Fatalf("mock authorize: %d", back.status)
		}
		// The callback's token exchange answers; the filter resumes the callback's stream
		// and panics there.
		cb := b.do("GET", back.location.String(), "X-Entra-Auth-Fault", "resumed", "X-Request-Id", "req-panic-callback")
		if cb.status != 500 || !strings.Contains(cb.body, "req-panic-callback") {
			t.Fatalf("callback: %d: %.300s", cb.status, cb.body)
		}
		// A new sign-in, on the same worker, completes.
		if done := s.browser().signIn("/app", "ada@contoso.example"); done.status != 302 || done.location.Path != "/app" {
			t.Fatalf("the next sign-in: %d %v", done.status, done.location)
		}
	})

	log := s.runner.stderr.String()
	for _, want := range []string{
		"request req-panic-page: recovered from a panic in OnHttpRequestHeaders",
		"request req-panic-response: recovered from a panic in OnHttpResponseHeaders",
		"request req-panic-callback: recovered from a panic in the answer of a call to cluster entra",
		"filter.(*stream).OnHttpRequestHeaders", // the stack
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	if strings.Contains(log, "wasm VM 0 failed") {
		t.Errorf("the worker's VM failed:\n%s", tail(log, 2000))
	}
}
