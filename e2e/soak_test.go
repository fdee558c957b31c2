package e2e

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

// The soak tests run the module through the runner as Envoy 1.33 answers (poll_oneoff
// ENOSYS, only three imports allowed inside the allocator), with a small GOGC so that
// the garbage collector runs often, and count VM failures.

// soakGOGC makes collections frequent (about 1,750 in the two VMs over the soak, counted
// once by the host's poll_oneoff calls, one per collection's start); each starts inside
// some allocation, many inside proxy_on_memory_allocate, where Envoy 1.33 forbids all
// but three imports.
const soakGOGC = "10"

// soakClient sends requests as many browsers and API clients would, keeping
// connections open, following no redirects and holding no cookies of its own.
func soakClient() *http.Client {
	return &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tlsFiles.pool},
			MaxIdleConns: 64, MaxIdleConnsPerHost: 64},
	}
}

// answer is what the soak looks at in a response.
type answer struct {
	status   int
	location string
	cookies  string // the Set-Cookie values as a Cookie header
	body     string
}

func soakDo(client *http.Client, rawURL string, headers ...string) (answer, error) {
	req, err := http.NewRequest("GET", rawURL, nil)
	if err != nil {
		return answer{}, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return answer{status: resp.StatusCode, location: resp.Header.Get("Location"), cookies: cookieHeader(resp), body: string(body)}, nil
}

// soakSignIn walks one sign-in: the signed-out redirect, the mock's authorize step (not
// through the filter), and the callback. It returns the session's Cookie header.
func soakSignIn(client *http.Client, s *stack) (string, error) {
	start, err := soakDo(client, s.base+"/app", "Accept", "text/html")
	if err != nil || start.status != 302 || !strings.HasPrefix(start.location, s.mockURL) {
		return "", fmt.Errorf("sign-in start: %d %v", start.status, err)
	}
	authorize, _ := url.Parse(start.location)
	q := authorize.Query()
	q.Set("mock_user", "ada@contoso.example")
	authorize.RawQuery = q.Encode()
	back, err := soakDo(client, authorize.String())
	if err != nil || back.status != 302 {
		return "", fmt.Errorf("mock authorize: %d %v", back.status, err)
	}
	done, err := soakDo(client, back.location, "Accept", "text/html", "Cookie", start.cookies)
	if err != nil || done.status != 302 || done.location != "/app" {
		return "", fmt.Errorf("callback: %d %q %v %.200s", done.status, done.location, err, done.body)
	}
	return done.cookies, nil
}

// TestSoakOnEnvoy133 sends 200,000 requests of every kind through the runner answering
// as Envoy 1.33, with the garbage collector running often, and expects not one VM
// failure: every request answered as it should be.
func TestSoakOnEnvoy133(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 requests; run without -short (make test does)")
	}
	const total = 200_000
	secret := newCookieSecret()
	s := newStack(t, stackOptions{
		config: map[string]any{"api_audiences": apiAudiences, "cookie_secret": secret},
		env:    map[string]string{"GOGC": soakGOGC},
	})
	client := soakClient()
	cookie, err := soakSignIn(client, s)
	if err != nil {
		t.Fatal(err)
	}
	var resealMu sync.Mutex
	reseal := resealer(t, secret, cookie)
	mint := func() (string, error) {
		return s.mock.MintAccessToken(mockentra.AccessToken{User: s.mock.Users()[0], Audience: mockentra.DemoClientID,
			Scopes: []string{"access_as_user"}, IssuerBase: s.mockURL})
	}
	token, err := mint()
	if err != nil {
		t.Fatal(err)
	}

	// Out of every 100 requests: 40 skip path, 30 signed in (opened-session cache hit),
	// 8 cache miss (a cookie the VM has not seen), 8 signed-out redirects, 10 bearer
	// hits, 2 bearer misses, and 1 sign-in (its redirect and its callback: 2 requests).
	kinds := []struct {
		name  string
		share int
		run   func() (int, error) // requests sent through the filter
	}{
		{"skip path", 40, func() (int, error) {
			return 1, expect(soakDo(client, s.base+"/healthz"))(200)
		}},
		{"signed in", 30, func() (int, error) {
			return 1, expect(soakDo(client, s.base+"/page", "Accept", "text/html", "Cookie", cookie, "X-Auth-Request-User", "forged"))(200)
		}},
		{"cache miss", 8, func() (int, error) {
			resealMu.Lock()
			fresh := reseal()
			resealMu.Unlock()
			return 1, expect(soakDo(client, s.base+"/page", "Accept", "text/html", "Cookie", fresh))(200)
		}},
		{"signed-out redirect", 8, func() (int, error) {
			return 1, expect(soakDo(client, s.base+"/page", "Accept", "text/html"))(302)
		}},
		{"bearer hit", 10, func() (int, error) {
			return 1, expect(soakDo(client, s.base+"/api/items", "Accept", "application/json", "Authorization", "Bearer "+token))(200)
		}},
		{"bearer miss", 2, func() (int, error) {
			fresh, err := mint()
			if err != nil {
				return 0, err
			}
			return 1, expect(soakDo(client, s.base+"/api/items", "Accept", "application/json", "Authorization", "Bearer "+fresh))(200)
		}},
		{"sign-in with callback", 2, func() (int, error) {
			_, err := soakSignIn(client, s)
			return 2, err
		}},
	}
	var schedule []int // kind index for each slot of 100
	for i, k := range kinds {
		for range k.share {
			schedule = append(schedule, i)
		}
	}

	var (
		sent     atomic.Int64
		perKind  = make([]atomic.Int64, len(kinds))
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	began := time.Now()
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; sent.Load() < total && firstErr.Load() == nil; i += 8 {
				k := schedule[(i*37)%len(schedule)] // interleave the kinds
				n, err := kinds[k].run()
				if err != nil {
					firstErr.CompareAndSwap(nil, fmt.Errorf("%s, after %d requests: %w", kinds[k].name, sent.Load(), err))
					return
				}
				sent.Add(int64(n))
				perKind[k].Add(int64(n))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(began)
	var counts []string
	for i, k := range kinds {
		counts = append(counts, fmt.Sprintf("%s %d", k.name, perKind[i].Load()))
	}
	t.Logf("%d requests in %v (%.0f/s): %s", sent.Load(), elapsed.Round(time.Millisecond), float64(sent.Load())/elapsed.Seconds(), strings.Join(counts, ", "))
	if err, _ := firstErr.Load().(error); err != nil {
		t.Fatalf("%v\nrunner log:\n%s", err, tail(s.runner.stderr.String(), 3000))
	}
	if log := s.runner.stderr.String(); strings.Contains(log, "failed") || strings.Contains(log, "restricted") {
		t.Errorf("the runner logged a failure:\n%s", tail(log, 3000))
	}
}

// expect turns an answer into an error unless its status is want.
func expect(a answer, err error) func(want int) error {
	return func(want int) error {
		if err != nil {
			return err
		}
		if a.status != want {
			return fmt.Errorf("status %d, want %d: %.200s", a.status, want, a.body)
		}
		return nil
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// TestModuleWithoutItsOwnPollOneoffDies is the soak's control: the same module without
// its own poll_oneoff (go build's poll_oneoff import kept) dies on Envoy 1.33 within a
// few thousand requests, at the start of a collection, and lives on the newest Envoy,
// which answers success and allows the call inside the allocator.
func TestModuleWithoutItsOwnPollOneoffDies(t *testing.T) {
	const limit = 30_000
	died := 0
	for _, release := range []string{"1.33", "newest"} {
		t.Run(release, func(t *testing.T) {
			// The module's own GOGC (50): with the soak's 10, the module dies on 1.33
			// before it serves, in proxy_on_configure ("poll_oneoff failed").
			s := newStack(t, stackOptions{runnerArgs: []string{"-wasm", unfixedModuleFile, "-envoy", release}})
			client := soakClient()
			n := limit
			if release == "newest" {
				n = max(3*died, 5000) // well past where 1.33 died
			}
			for i := range n {
				a, err := soakDo(client, s.base+"/healthz")
				if err != nil {
					t.Fatal(err)
				}
				if a.status == 200 {
					continue
				}
				if release == "newest" {
					t.Fatalf("request %d: %d on the newest Envoy\n%s", i, a.status, tail(s.runner.stderr.String(), 3000))
				}
				// Two deaths, depending on where the collection starts: inside the
				// allocator (Envoy traps the restricted call), or at a callback's end (the
				// runtime throws on ENOSYS).
				if a.status != 503 || !s.runner.stderr.waitFor("failed") || !strings.Contains(s.runner.stderr.String(), "poll_oneoff") {
					t.Fatalf("request %d: %d, and no poll_oneoff in the log:\n%s", i, a.status, tail(s.runner.stderr.String(), 3000))
				}
				died = i
				t.Logf("the module without its own poll_oneoff failed at request %d", i)
				return
			}
			if release == "1.33" {
				t.Fatalf("the module without its own poll_oneoff survived %d requests on Envoy 1.33: the soak would prove nothing", n)
			}
		})
	}
}
