package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a system under test running as its own process.
type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	// exited is closed once the process has exited and been waited for.
	exited chan struct{}
}

// start runs argv, on CPU cpu when pin is set (taskset), with its output in logPath,
// and waits until addr accepts connections.
func start(name string, pin bool, cpu int, env []string, logPath, addr string, argv ...string) (*process, error) {
	if pin {
		argv = append([]string{"taskset", "-c", strconv.Itoa(cpu)}, argv...)
	}
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, log: log, exited: make(chan struct{})}
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		close(p.exited)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return p, nil
		}
		select {
		case err := <-exited:
			log.Close()
			return nil, fmt.Errorf("%s exited before listening on %s (%v); see %s", name, addr, err, logPath)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not listen on %s within a minute; see %s", name, addr, logPath)
		}
	}
}

// stop asks the process to stop (SIGTERM, so that it can write what it must, a profile
// say) and kills it if it has not within five seconds.
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.log.Close()
}

// cpuTime is the CPU time all the process's threads have run, from
// /proc/PID/task/*/schedstat (nanoseconds, unlike /proc/PID/stat's clock ticks).
// Threads that have exited are not counted; Go programs keep theirs.
func (p *process) cpuTime() (time.Duration, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", p.cmd.Process.Pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("%s: no /proc schedstat (Linux only): %v", p.name, err)
	}
	var total time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(task)
		if err != nil {
			continue // the thread exited
		}
		ns, err := parseSchedstat(string(b))
		if err != nil {
			return 0, fmt.Errorf("%s: %s: %w", p.name, task, err)
		}
		total += ns
	}
	return total, nil
}

// parseSchedstat reads the first field of a schedstat line: time on a CPU, in ns.
func parseSchedstat(line string) (time.Duration, error) {
	fields := strings.Fields(line)
	if len(fields) < 1 {
		return 0, errors.New("empty schedstat")
	}
	ns, err := strconv.ParseInt(fields[0], 10, 64)
	return time.Duration(ns), err
}

// rss is the process's resident set size now (VmRSS) and its high-water mark (VmHWM),
// in bytes.
func (p *process) rss() (now, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, err
	}
	if now, err = statusKiB(string(b), "VmRSS:"); err != nil {
		return 0, 0, err
	}
	peak, err = statusKiB(string(b), "VmHWM:")
	return now, peak, err
}

// statusKiB reads the field of /proc/PID/status that starts with name, in bytes.
func statusKiB(status, name string) (int64, error) {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			return parseKiB(v)
		}
	}
	return 0, fmt.Errorf("no %s line in /proc status", name)
}

// parseKiB reads "  12345 kB" as bytes.
func parseKiB(v string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
	return n << 10, err
}
