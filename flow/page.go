package flow

import (
	"html"
	"strconv"
	"strings"
)

// statusText names the statuses the filter answers with (net/http is not linked into
// the module: it would bring sockets along).
var statusText = map[int]string{
	400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error",
	502: "Bad Gateway", 503: "Service Unavailable",
}

// errorPage renders an error as a small HTML page. Everything in it is escaped.
func errorPage(status int, message, requestID string) []byte {
	return page(strings.TrimSpace(strconv.Itoa(status)+" "+statusText[status]), message, "/", "Back to the start page", requestID)
}

// page renders a small HTML page: a title, a message, a link, and the request id when
// there is one. Everything in it is escaped.
func page(title, message, link, linkText, requestID string) []byte {
	var b strings.Builder
	b.WriteString(`<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>`)
	b.WriteString(html.EscapeString(title))
	b.WriteString(`</title><style>body{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;padding:0 1em;color:#222}small{color:#666}</style></head><body><h1>`)
	b.WriteString(html.EscapeString(title))
	b.WriteString(`</h1><p>`)
	b.WriteString(html.EscapeString(message))
	b.WriteString(`</p><p><a href="`)
	b.WriteString(html.EscapeString(link))
	b.WriteString(`">`)
	b.WriteString(html.EscapeString(linkText))
	b.WriteString(`</a></p>`)
	if requestID != "" {
		b.WriteString(`<p><small>Request id: `)
		b.WriteString(html.EscapeString(requestID))
		b.WriteString(`</small></p>`)
	}
	b.WriteString(`</body></html>`)
	return []byte(b.String())
}
