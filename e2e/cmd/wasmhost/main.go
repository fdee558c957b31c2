// Command wasmhost runs a Proxy-Wasm HTTP filter the way Envoy 1.33+ would, without
// Envoy: an HTTP listener whose requests pass through the module (on wazero) and then to
// an upstream, with dispatched calls going to named clusters.
//
//	go run ./e2e/cmd/wasmhost -wasm dist/entra-auth.wasm -config plugin.json \
//	    -listen 127.0.0.1:8080 -upstream http://127.0.0.1:3000 \
//	    -cluster entra=https://login.microsoftonline.com -cluster user_sync=http://127.0.0.1:9000 \
//	    [-concurrency 2] [-env KEY=VALUE | -env KEY]... [-tls-cert FILE -tls-key FILE]
//	    [-envoy 1.33|newest] [-failure-policy FAIL_CLOSED|FAIL_OPEN|FAIL_RELOAD]
//	    [-use-remote-address [-xff-num-trusted-hops N]] [-stream-idle-timeout 5m]
//
// By default it answers as Envoy 1.33, the oldest release entra-auth supports, where
// releases differ (see envoyhost.Release); -envoy newest answers as the newest.
//
// It prints "listening on ADDR" once it serves, and exits with status 1 and the
// filter's own error when the plugin fails to start. SIGHUP reads -config again and
// pushes it to the running VMs, as an xDS update of the filter's configuration would:
// a canary VM tries it first, and a configuration it refuses leaves the old one in
// place; either way the runner says so on standard error.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/entra-auth/entra-auth/e2e/envoyhost"
)

// pairs collects repeated NAME=VALUE flags.
type pairs map[string]string

func (p pairs) String() string { return fmt.Sprint(map[string]string(p)) }

func (p pairs) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", s)
	}
	p[name] = value
	return nil
}

// vmEnv is -env: NAME=VALUE, or NAME alone for the runner's own variable (as Envoy's
// host_env_keys), which keeps secrets out of the command line.
type vmEnv map[string]string

func (e vmEnv) String() string { return fmt.Sprint(len(e), " variables") }

func (e vmEnv) Set(s string) error {
	if name, value, ok := strings.Cut(s, "="); ok && name != "" {
		e[name] = value
		return nil
	}
	value, ok := os.LookupEnv(s)
	if s == "" || !ok {
		return fmt.Errorf("-env %s: want NAME=VALUE, or the NAME of a variable set in this environment", s)
	}
	e[s] = value
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "wasmhost:", err)
		os.Exit(1)
	}
}

// pushConfiguration reads the plugin configuration again and pushes it to the VMs.
func pushConfiguration(host *envoyhost.Host, path string) {
	var configuration []byte
	if path != "" {
		var err error
		if configuration, err = os.ReadFile(path); err != nil {
			fmt.Fprintf(os.Stderr, "wasmhost: configuration push refused, the old configuration stays: %v\n", err)
			return
		}
	}
	if err := host.Reconfigure(configuration); err != nil {
		fmt.Fprintf(os.Stderr, "wasmhost: configuration push refused, the old configuration stays: %v\n", err)
		return
	}
	fmt.Fprintln(os.Stderr, "wasmhost: configuration pushed")
}

func run(args []string) error {
	fs := flag.NewFlagSet("wasmhost", flag.ContinueOnError)
	wasmPath := fs.String("wasm", "", "the filter module (`file`.wasm); required")
	configPath := fs.String("config", "", "the plugin configuration (`file`, JSON); empty means none")
	vmConfigPath := fs.String("vm-config", "", "the VM configuration (`file`); empty means none")
	listen := fs.String("listen", "127.0.0.1:8080", "`address` to serve on")
	upstream := fs.String("upstream", "", "`URL` of the application behind the filter; required")
	concurrency := fs.Int("concurrency", 2, "number of workers, each with its own VM, as Envoy's --concurrency")
	logLevel := fs.String("log-level", "info", "lowest log level shown: trace, debug, info, warn, error, critical")
	pluginName := fs.String("plugin-name", "entra-auth", "the plugin's name (the plugin_name property)")
	vmID := fs.String("vm-id", "", "the vm_id, which scopes shared data and queues")
	tlsCert := fs.String("tls-cert", "", "serve HTTPS with this certificate (`file`, PEM); needs -tls-key")
	tlsKey := fs.String("tls-key", "", "the certificate's private key (`file`, PEM)")
	envoyRelease := fs.String("envoy", "1.33", "answer as this Envoy `release` where releases differ: 1.33 (the oldest supported) or newest")
	failurePolicy := fs.String("failure-policy", "FAIL_CLOSED", "the plugin's failure_policy once a VM fails: FAIL_CLOSED (503), FAIL_OPEN (skip the filter) or FAIL_RELOAD (a new VM after a 1 s backoff)")
	useRemoteAddress := fs.Bool("use-remote-address", false, "act as an edge proxy (use_remote_address): append the peer to x-forwarded-for and set x-forwarded-proto from the connection")
	trustedHops := fs.Int("xff-num-trusted-hops", 0, "with -use-remote-address, the `number` of trusted proxies in front, whose x-forwarded-proto is kept")
	idleTimeout := fs.Duration("stream-idle-timeout", 5*time.Minute, "answer 408 to a stream idle this long before its response starts (stream_idle_timeout); 0 means none")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the runner to this `file` until it stops (SIGINT/SIGTERM)")
	clusters, env := pairs{}, vmEnv{}
	fs.Var(clusters, "cluster", "`NAME=URL` of a cluster the filter may call (repeatable)")
	fs.Var(env, "env", "`KEY=VALUE` environment variable of the VM, or KEY to pass this one's (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *wasmPath == "" || *upstream == "" {
		fs.Usage()
		return errors.New("-wasm and -upstream are required")
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("-tls-cert and -tls-key go together")
	}
	level, ok := envoyhost.ParseLogLevel(*logLevel)
	if !ok {
		return fmt.Errorf("-log-level %q: want trace, debug, info, warn, error or critical", *logLevel)
	}
	release, err := envoyhost.ParseRelease(*envoyRelease)
	if err != nil {
		return fmt.Errorf("-envoy: %w", err)
	}
	policy, err := envoyhost.ParseFailurePolicy(*failurePolicy)
	if err != nil {
		return fmt.Errorf("-failure-policy: %w", err)
	}
	if *trustedHops < 0 || (*trustedHops > 0 && !*useRemoteAddress) {
		return errors.New("-xff-num-trusted-hops: a number of 0 or more, with -use-remote-address")
	}
	if *idleTimeout == 0 {
		*idleTimeout = -1 // none
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	module, err := os.ReadFile(*wasmPath)
	if err != nil {
		return err
	}
	var pluginConfig, vmConfig []byte
	if *configPath != "" {
		if pluginConfig, err = os.ReadFile(*configPath); err != nil {
			return err
		}
	}
	if *vmConfigPath != "" {
		if vmConfig, err = os.ReadFile(*vmConfigPath); err != nil {
			return err
		}
	}
	cacheDir := ""
	if dir, err := os.UserCacheDir(); err == nil {
		cacheDir = filepath.Join(dir, "entra-auth", "wazero")
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w (is another process using that port? choose another with -listen)", *listen, err)
	}
	ctx := context.Background()
	host, err := envoyhost.New(ctx, envoyhost.Config{
		Module:              module,
		PluginName:          *pluginName,
		VMID:                *vmID,
		PluginConfiguration: pluginConfig,
		VMConfiguration:     vmConfig,
		Env:                 env,
		Clusters:            clusters,
		Upstream:            *upstream,
		Concurrency:         *concurrency,
		LogLevel:            level,
		Envoy:               release,
		FailurePolicy:       policy,
		UseRemoteAddress:    *useRemoteAddress,
		XFFNumTrustedHops:   *trustedHops,
		StreamIdleTimeout:   *idleTimeout,
		CompilationCacheDir: cacheDir,
	})
	if err != nil {
		ln.Close()
		return err
	}
	// Request headers over Envoy's 60 KiB get 431 from the host (ServeHTTP), which counts
	// as Envoy counts; Go's own limit (1 MiB) stays above it.
	srv := &http.Server{Handler: host, ConnContext: host.ConnContext, ReadHeaderTimeout: 30 * time.Second}
	if *tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			ln.Close()
			host.Close(ctx)
			return fmt.Errorf("-tls-cert/-tls-key: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	}
	fmt.Printf("listening on %s\n", ln.Addr())

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	hangup := make(chan os.Signal, 1)
	signal.Notify(hangup, syscall.SIGHUP)
	go func() {
		for range hangup {
			pushConfiguration(host, *configPath)
		}
	}()
	serveErr := make(chan error, 1)
	go func() {
		if *tlsCert != "" {
			serveErr <- srv.ServeTLS(ln, "", "")
			return
		}
		serveErr <- srv.Serve(ln)
	}()
	select {
	case err = <-serveErr:
	case <-stop:
		shutdownCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		err = srv.Shutdown(shutdownCtx)
	}
	if closeErr := host.Close(ctx); err == nil && !errors.Is(closeErr, context.Canceled) {
		err = closeErr
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
