package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// result is what the rounds measured for one target.
type result struct {
	target `json:"-"`
	Name   string `json:"name"`
	proc   *process
	// One value per round.
	Throughput []float64 `json:"throughput_rps"`
	P50        []float64 `json:"p50_us"`
	P99        []float64 `json:"p99_us"`
	CPU        []float64 `json:"cpu_us_per_request,omitempty"`
	// Lag is how late the open-loop sender ran, p99, µs.
	Lag []float64 `json:"open_loop_send_lag_p99_us"`
	// RSS and PeakRSS are the process's resident set size at the end and its high-water
	// mark (start-up included: compiling the module, when wazero's cache is cold), MiB.
	RSS     float64 `json:"rss_mib,omitempty"`
	PeakRSS float64 `json:"peak_rss_mib,omitempty"`
}

// report is the JSON written with -json.
type report struct {
	Date        time.Time `json:"date"`
	Machine     string    `json:"machine"`
	Pinned      bool      `json:"pinned"`
	Rounds      int       `json:"rounds"`
	Conns       int       `json:"closed_loop_connections"`
	Duration    string    `json:"closed_loop_duration"`
	Rate        float64   `json:"open_loop_rate_rps"`
	OpenLength  string    `json:"open_loop_duration"`
	Targets     []*result `json:"targets"`
	Ratio       float64   `json:"throughput_ratio_entra_auth_to_oauth2_proxy"`
	ModuleBytes int64     `json:"module_bytes"`
}

func measure(o options, targets []*result) error {
	for _, t := range targets {
		t.Name = t.name
		fmt.Printf("warm-up %s (%s)\n", t.name, o.warmup)
		if _, err := closedLoop(t.target, o.conns, o.warmup); err != nil {
			return err
		}
	}
	for round := 1; round <= o.rounds; round++ {
		for _, t := range targets {
			var before time.Duration
			if t.proc != nil {
				var err error
				if before, err = t.proc.cpuTime(); err != nil {
					return err
				}
			}
			n, err := closedLoop(t.target, o.conns, o.duration)
			if err != nil {
				return err
			}
			t.Throughput = append(t.Throughput, float64(n)/o.duration.Seconds())
			line := fmt.Sprintf("round %d closed loop %-16s %8.0f req/s", round, t.name, float64(n)/o.duration.Seconds())
			if t.proc != nil {
				after, err := t.proc.cpuTime()
				if err != nil {
					return err
				}
				cpu := float64((after - before).Microseconds()) / float64(n)
				t.CPU = append(t.CPU, cpu)
				line += fmt.Sprintf("  %6.1f CPU-µs/req", cpu)
			}
			fmt.Println(line)
		}
	}
	rate := o.rate
	if rate == 0 {
		slowest := median(slices.Clone(targets[1].Throughput))
		for _, t := range targets[2:] {
			slowest = min(slowest, median(slices.Clone(t.Throughput)))
		}
		rate = float64(int(slowest/2/100)) * 100
		rate = max(rate, 100)
	}
	for round := 1; round <= o.rounds; round++ {
		for _, t := range targets {
			lat, lag, err := openLoop(t.target, rate, o.openDuration, o.workers)
			if err != nil {
				return err
			}
			p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
			t.P50 = append(t.P50, float64(p50.Nanoseconds())/1e3)
			t.P99 = append(t.P99, float64(p99.Nanoseconds())/1e3)
			t.Lag = append(t.Lag, float64(lag.Nanoseconds())/1e3)
			fmt.Printf("round %d open loop %.0f req/s %-16s p50 %8s  p99 %8s  (sending ran %s late at p99)\n",
				round, rate, t.name, p50.Round(time.Microsecond), p99.Round(time.Microsecond), lag.Round(time.Microsecond))
		}
	}
	for _, t := range targets {
		if t.proc != nil {
			now, peak, err := t.proc.rss()
			if err != nil {
				return err
			}
			t.RSS, t.PeakRSS = float64(now)/(1<<20), float64(peak)/(1<<20)
		}
	}

	fmt.Printf("\n%d rounds; closed loop: %d connections for %s; open loop: %.0f req/s for %s; pinned to CPUs: %v\n",
		o.rounds, o.conns, o.duration, rate, o.openDuration, o.pin)
	fmt.Println("medians over the rounds, [min–max] beside them")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "target\tthroughput req/s\tp50 µs\tp99 µs\tCPU µs/req\tRSS MiB (peak)\t")
	for _, t := range targets {
		cpu, rss := "-", "-"
		if t.proc != nil {
			cpu, rss = spread(t.CPU, "%.1f"), fmt.Sprintf("%.1f (%.1f)", t.RSS, t.PeakRSS)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Name, spread(t.Throughput, "%.0f"), spread(t.P50, "%.0f"), spread(t.P99, "%.0f"), cpu, rss)
	}
	tw.Flush()

	ratio := median(slices.Clone(targets[1].Throughput)) / median(slices.Clone(targets[2].Throughput))
	if o.jsonOut != "" || o.chart != "" {
		host, _ := os.Hostname()
		rep := report{Date: time.Now().UTC(), Machine: machine(host), Pinned: o.pin, Rounds: o.rounds, Conns: o.conns,
			Duration: o.duration.String(), Rate: rate, OpenLength: o.openDuration.String(), Targets: targets, Ratio: ratio}
		if st, err := os.Stat(o.wasm); err == nil {
			rep.ModuleBytes = st.Size()
		}
		if o.jsonOut != "" {
			b, _ := json.MarshalIndent(rep, "", "  ")
			if err := os.WriteFile(o.jsonOut, append(b, '\n'), 0o644); err != nil {
				return err
			}
		}
		if o.chart != "" {
			if err := writeChart(o.chart, &rep); err != nil {
				return err
			}
			fmt.Println("chart:", o.chart)
		}
	}
	fmt.Printf("signed-in throughput ratio entra-auth/oauth2-proxy: %.2f\n", ratio)
	return nil
}

// spread is "median [min–max]".
func spread(xs []float64, format string) string {
	lo, hi := slices.Min(xs), slices.Max(xs)
	return fmt.Sprintf(format+" ["+format+"–"+format+"]", median(slices.Clone(xs)), lo, hi)
}

// machine describes the CPU, from /proc/cpuinfo.
func machine(host string) string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return host
	}
	cpus := 0
	model := ""
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			cpus++
			model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return fmt.Sprintf("%d × %s", cpus, model)
}
