// Command usersync runs the reference user-sync service (package e2e/usersync): the
// endpoint entra-auth calls after each sign-in, backed by SQLite. It prints
// "listening on ADDR" once ready.
//
//	USER_SYNC_SECRET=... go run ./e2e/cmd/usersync -listen 127.0.0.1:9000 -db users.db
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/entra-auth/entra-auth/e2e/usersync"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9000", "`address` to serve on")
	db := flag.String("db", "users.db", "SQLite database `file` (\":memory:\" for none)")
	secretEnv := flag.String("secret-env", "USER_SYNC_SECRET", "environment `variable` holding the bearer secret")
	tenants := flag.String("allowed-tenants", "", "comma-separated tenant GUIDs to accept (default: all)")
	flag.Parse()
	secret := os.Getenv(*secretEnv)
	if secret == "" {
		fmt.Fprintf(os.Stderr, "usersync: set the bearer secret in %s (the filter's user_sync.secret_env)\n", *secretEnv)
		os.Exit(2)
	}
	var allowed []string
	if *tenants != "" {
		allowed = strings.Split(*tenants, ",")
	}
	svc, err := usersync.Open(*db, usersync.Options{Secret: secret, AllowedTenants: allowed})
	if err != nil {
		fmt.Fprintln(os.Stderr, "usersync:", err)
		os.Exit(1)
	}
	defer svc.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "usersync: listen on %s: %v (choose another address with -listen)\n", *listen, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		// Ctrl-C or SIGTERM: finish the syncs under way, then close the database cleanly.
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
