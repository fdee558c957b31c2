package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// target is one system under test as the load generator sees it: a URL and the Cookie
// header of a signed-in browser (empty for the upstream alone).
type target struct {
	name, url, cookie string
}

// newClient is an HTTP/1.1 client that keeps up to conns connections open to one host.
func newClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
			DisableCompression: true, IdleConnTimeout: time.Minute},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
}

// do sends one request like a browser's and reports whether the answer was 200.
func do(ctx context.Context, c *http.Client, t target) error {
	req, err := http.NewRequestWithContext(ctx, "GET", t.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/html")
	if t.cookie != "" {
		req.Header.Set("Cookie", t.cookie)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %s answered %d, want 200 (is the session still signed in?)", t.name, t.url, resp.StatusCode)
	}
	return nil
}

// closedLoop keeps conns requests in flight for d: each connection sends its next
// request when the previous one is answered. It returns the number answered.
func closedLoop(t target, conns int, d time.Duration) (int64, error) {
	c := newClient(conns)
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if err := do(ctx, c, t); err != nil {
					if ctx.Err() == nil {
						once.Do(func() { firstErr = err; cancel() })
					}
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return done.Load(), firstErr
}

// openLoop sends rate requests a second for d, on a schedule that does not wait for
// answers (up to workers in flight), and returns each request's latency from when it was
// sent, and how late the sending ran behind the schedule at the 99th percentile. The
// load generator shares a CPU with the upstream, so its own lateness is reported apart
// rather than charged to the system under test; a large lag means the rate is too high
// for this machine.
func openLoop(t target, rate float64, d time.Duration, workers int) (latencies []time.Duration, lag time.Duration, err error) {
	c := newClient(workers)
	defer c.CloseIdleConnections()
	n := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	due := make(chan time.Time, n)
	latencies = make([]time.Duration, n)
	lags := make([]time.Duration, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for at := range due {
				sent := time.Now()
				if err := do(context.Background(), c, t); err != nil {
					once.Do(func() { firstErr = err })
					continue
				}
				i := next.Add(1) - 1
				latencies[i], lags[i] = time.Since(sent), sent.Sub(at)
			}
		}()
	}
	start := time.Now()
	for i := range n {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		due <- at
	}
	close(due)
	wg.Wait()
	done := next.Load()
	return latencies[:done], percentile(lags[:done], 0.99), firstErr
}

// percentile is the q-quantile (0 < q ≤ 1) of ds by the nearest-rank method; ds is
// sorted in place.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	rank := int(q*float64(len(ds)) + 0.999999999)
	return ds[min(max(rank, 1), len(ds))-1]
}

// median of xs (sorted in place).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}
