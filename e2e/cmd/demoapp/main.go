// Command demoapp is the small application `make run` puts behind the filter: it shows
// what reached it, above all the identity headers the filter sets.
package main

import (
	"encoding/base64"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

var page = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>entra-auth demo app</title>
<link rel="icon" href="data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E%3Crect width='16' height='16' rx='3' fill='%232e7d32'/%3E%3C/svg%3E">
<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:60em}td{padding:.2em .8em;vertical-align:top}
td:first-child{white-space:nowrap}.id{background:#e8f5e9}.who{font-size:1.2em}code{word-break:break-all}</style></head>
<body><h1>entra-auth demo app</h1>
<p>This application sits behind the entra-auth filter. It received <code>{{.Method}} {{.Path}}</code>.</p>
{{if .Admin}}<p class="area" id="area">The admin area: <code>make run</code>'s configuration lets only a sign-in that satisfied authentication context <b>c1</b> in (a rule with <code>auth_context</code>); this one did ({{.ACRs}}).</p>{{end}}
{{if .Name}}<p class="who" id="who">Signed in as <b>{{.Name}}</b> ({{.User}}){{if .UserID}}, user id <b>{{.UserID}}</b> in the application's user directory{{end}}.</p>
<p><a href="/.auth/me">/.auth/me</a> (what the filter knows of you) · <a href="/admin/">The admin area</a> (a stronger sign-in: authentication context c1) · <a href="/reports/">Reports</a> (the application asks for context c2 itself) · <a href="/.auth/logout">Sign out</a></p>
{{else}}<p class="who" id="who">Nobody is signed in.</p>
<p><a href="/.auth/login?rd=%2F">Sign in</a></p>{{end}}
<h2>Identity headers from the filter</h2>
{{if .Identity}}<table>{{range .Identity}}<tr class="id"><td>{{.Name}}</td><td><code>{{.Value}}</code></td></tr>{{end}}</table>
{{else}}<p>None: nobody is signed in (client-sent copies are always removed by the filter).</p>{{end}}
<h2>All request headers</h2>
<table>{{range .Headers}}<tr><td>{{.Name}}</td><td><code>{{.Value}}</code></td></tr>{{end}}</table>
</body></html>
`))

type header struct{ Name, Value string }

func main() {
	listen := flag.String("listen", "127.0.0.1:3000", "`address` to serve on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "demoapp: listen on %s: %v (choose another address with -listen)\n", *listen, err)
		os.Exit(1)
	}
	fmt.Printf("demo app listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: http.HandlerFunc(serve), ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.Serve(ln))
}

// reportsClaims is the claims request the demo's /reports/ answers with until the
// sign-in satisfied authentication context c2: what an application that checks
// Conditional Access itself sends (follow_claims_challenges turns it into a sign-in).
var reportsClaims = base64.StdEncoding.EncodeToString([]byte(`{"id_token":{"acrs":{"essential":true,"value":"c2"}}}`))

func serve(w http.ResponseWriter, r *http.Request) {
	acrs := r.Header.Get("X-Auth-Request-Acrs")
	if strings.HasPrefix(r.URL.Path, "/reports/") && !slices.Contains(strings.Split(acrs, ","), "c2") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="", error="insufficient_claims", claims="`+reportsClaims+`"`)
		http.Error(w, "reports need authentication context c2", http.StatusUnauthorized)
		return
	}
	data := struct {
		Method, Path       string
		Name, User, UserID string
		Admin              bool
		ACRs               string
		Identity, Headers  []header
	}{Method: r.Method, Path: r.URL.RequestURI(), Admin: strings.HasPrefix(r.URL.Path, "/admin/"), ACRs: acrs,
		Name: r.Header.Get("X-Auth-Request-Name"), User: r.Header.Get("X-Auth-Request-User"), UserID: r.Header.Get("X-Auth-Request-User-Id")}
	names := make([]string, 0, len(r.Header))
	for name := range r.Header {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		h := header{strings.ToLower(name), strings.Join(r.Header[name], ", ")}
		data.Headers = append(data.Headers, h)
		if strings.HasPrefix(h.Name, "x-auth-request-") {
			data.Identity = append(data.Identity, h)
		}
	}
	w.Header().Set("content-type", "text/html; charset=utf-8")
	if err := page.Execute(w, data); err != nil {
		log.Printf("demoapp: %v", err)
	}
}
