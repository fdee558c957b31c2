package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(xs ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range xs {
			ds = append(ds, time.Duration(x)*time.Millisecond)
		}
		return ds
	}
	for _, tc := range []struct {
		in   []time.Duration
		q    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.99, 7 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 0.5, 3 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.99, 10 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.9, 9 * time.Millisecond},
		{ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.5, 5 * time.Millisecond},
	} {
		if got := percentile(tc.in, tc.q); got != tc.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tc.in, tc.q, got, tc.want)
		}
	}
}

func TestMedianAndSpread(t *testing.T) {
	if got := median([]float64{3, 1, 2}); got != 2 {
		t.Errorf("median of 3 values = %v", got)
	}
	if got := median([]float64{4, 1, 3, 2}); got != 2.5 {
		t.Errorf("median of 4 values = %v", got)
	}
	if got := spread([]float64{300, 100, 200}, "%.0f"); got != "200 [100–300]" {
		t.Errorf("spread = %q", got)
	}
}

func TestProcParsers(t *testing.T) {
	ns, err := parseSchedstat("123456789 2000 17\n")
	if err != nil || ns != 123456789 {
		t.Errorf("parseSchedstat = %v, %v", ns, err)
	}
	if _, err := parseSchedstat(""); err == nil {
		t.Error("an empty schedstat parsed")
	}
	status := "Name:\toauth2-proxy\nVmPeak:\t  999999 kB\nVmHWM:\t   28272 kB\nVmRSS:\t   20000 kB\n"
	for name, want := range map[string]int64{"VmHWM:": 28272 << 10, "VmRSS:": 20000 << 10} {
		if got, err := statusKiB(status, name); err != nil || got != want {
			t.Errorf("statusKiB(%s) = %v, %v", name, got, err)
		}
	}
	if _, err := statusKiB("Name:\tx\n", "VmHWM:"); err == nil {
		t.Error("a status without VmHWM parsed")
	}
}

// The closed loop counts only answered requests, and stops at the first that is not
// 200 (a session that stopped working must not pass for throughput).
func TestClosedLoop(t *testing.T) {
	var served, failAfter atomic.Int64
	failAfter.Store(1 << 62)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Cookie") != "s=1" {
			http.Error(w, "no cookie", 401)
			return
		}
		if served.Add(1) > failAfter.Load() {
			http.Redirect(w, r, "/login", 302)
		}
	}))
	defer srv.Close()
	n, err := closedLoop(target{name: "t", url: srv.URL, cookie: "s=1"}, 4, 200*time.Millisecond)
	if err != nil || n == 0 || n > served.Load() {
		t.Fatalf("closedLoop = %d, %v (served %d)", n, err, served.Load())
	}
	failAfter.Store(served.Load() + 10)
	if _, err := closedLoop(target{name: "t", url: srv.URL, cookie: "s=1"}, 4, time.Second); err == nil || !strings.Contains(err.Error(), "302") {
		t.Fatalf("a target answering 302 gave %v", err)
	}
}

// The open loop sends at the rate asked, whatever the answers' speed.
func TestOpenLoopKeepsTheRate(t *testing.T) {
	var served atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		time.Sleep(20 * time.Millisecond) // slower than the interval: needs several in flight
	}))
	defer srv.Close()
	lat, _, err := openLoop(target{name: "t", url: srv.URL}, 200, 500*time.Millisecond, 16)
	if err != nil || len(lat) != 100 || served.Load() != 100 {
		t.Fatalf("openLoop: %d latencies, %d served, %v; want 100", len(lat), served.Load(), err)
	}
	if p50 := percentile(lat, 0.5); p50 < 20*time.Millisecond {
		t.Errorf("p50 %v is below the server's 20ms", p50)
	}
}

func TestCookieHeader(t *testing.T) {
	if got := cookieHeader(map[string]string{"b": "2", "a": "1"}); got != "a=1; b=2" {
		t.Errorf("cookieHeader = %q", got)
	}
}
