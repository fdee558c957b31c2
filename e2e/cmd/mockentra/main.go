// Command mockentra serves a mock Microsoft Entra ID with the demo tenant, application and
// users (see package mockentra), for `make run` and for trying the filter without an
// Azure account. It prints "listening on ADDR" once ready.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/entra-auth/entra-auth/e2e/mockentra"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9001", "`address` to serve on")
	redirect := flag.String("redirect-uri", "", "the only callback URL to accept (default: any)")
	flag.Parse()
	var redirects []string
	if *redirect != "" {
		redirects = []string{*redirect}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mockentra: listen on %s: %v (choose another address with -listen)\n", *listen, err)
		os.Exit(1)
	}
	m := mockentra.New(mockentra.DemoOptions(redirects...))
	fmt.Printf("listening on %s\n", ln.Addr())
	fmt.Printf("mock Entra ID: tenant %s, client %s; users:", mockentra.DemoTenant, mockentra.DemoClientID)
	for _, u := range m.Users() {
		fmt.Printf(" %s", u.Username)
	}
	fmt.Println()
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}
