package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// signIn signs user in through the proxy at start the way a browser does: the proxy
// sends it to the mock Entra ID, which signs mock_user in at once and sends it back to
// the proxy's callback. It returns the Cookie header the browser then sends. Cookies
// are kept whatever their Secure attribute (the benchmark is plain HTTP on loopback).
func signIn(start, user string) (string, error) {
	startURL, err := url.Parse(start)
	if err != nil {
		return "", err
	}
	jar := map[string]string{}
	c := newClient(1)
	next := start
	for hop := 0; hop < 10; hop++ {
		u, err := url.Parse(next)
		if err != nil {
			return "", err
		}
		onProxy := u.Host == startURL.Host
		if !onProxy {
			q := u.Query()
			q.Set("mock_user", user)
			u.RawQuery = q.Encode()
		}
		req, _ := http.NewRequest("GET", u.String(), nil)
		req.Header.Set("Accept", "text/html")
		if onProxy {
			req.Header.Set("Cookie", cookieHeader(jar))
		}
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if onProxy {
			for _, ck := range resp.Cookies() {
				if ck.MaxAge < 0 || (!ck.Expires.IsZero() && ck.Expires.Before(time.Now())) {
					delete(jar, ck.Name)
				} else {
					jar[ck.Name] = ck.Value
				}
			}
		}
		switch {
		case resp.StatusCode == 200 && onProxy:
			return cookieHeader(jar), nil
		case resp.StatusCode/100 == 3:
			loc, err := u.Parse(resp.Header.Get("Location"))
			if err != nil {
				return "", err
			}
			next = loc.String()
		default:
			return "", fmt.Errorf("%s answered %d during sign-in", u.Redacted(), resp.StatusCode)
		}
	}
	return "", fmt.Errorf("sign-in through %s did not finish within 10 redirects", start)
}

func cookieHeader(jar map[string]string) string {
	names := make([]string, 0, len(jar))
	for name := range jar {
		names = append(names, name)
	}
	sort.Strings(names)
	pairs := make([]string, len(names))
	for i, name := range names {
		pairs[i] = name + "=" + jar[name]
	}
	return strings.Join(pairs, "; ")
}

func randomBase64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
