package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/entra-auth/entra-auth/internal/testskip"
)

// chromium finds a Chromium or Chrome to drive, or "".
func chromium() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	return ""
}

// TestBrowserSignIn walks headless Chromium through what a newcomer does after `make run`:
// open the demo app, land on the mock's sign-in page, pick a user, come back signed in and
// see who they are, sign out. A real browser is what enforces the cookie rules (Secure,
// the __Host- prefix over http://localhost, SameSite=Lax on the way back from Entra).
func TestBrowserSignIn(t *testing.T) {
	if *engine != "wazero" {
		t.Skip("SKIPPED in the V8 pass: it drives what make run starts, whose runner is wazero's")
	}
	browser := chromium()
	if browser == "" {
		testskip.Missing(t, "no Chromium (chromium, chromium-browser, google-chrome): apt-get install chromium to run the browser test")
	}
	site := startLocalRun(t).site
	ctx, step := startChromium(t, browser)
	var location, who, me string

	// Signed out: the filter sends the browser to Entra's (the mock's) sign-in page.
	step("open the demo app", chromedp.Navigate(site), waitUntil(`document.querySelector("a.user") !== null`), chromedp.Location(&location))
	if strings.HasPrefix(location, site) || !strings.Contains(location, "/oauth2/v2.0/authorize") {
		t.Fatalf("signed out, the browser is at %s, want the mock's authorize page (screenshot: %s)", location, screenshot(ctx, t))
	}

	// Pick Ada: the callback signs her in and sends the browser back where it started.
	step("pick a user", clickLink("ada@contoso.example"), waitUntil(`document.getElementById("who") !== null`),
		chromedp.Location(&location), chromedp.Evaluate(`document.getElementById("who").innerText`, &who))
	if location != site || !strings.Contains(who, "Signed in as Ada Lovelace (ada@contoso.example)") || !strings.Contains(who, "user id") {
		t.Fatalf("after sign-in: at %s, %q (screenshot: %s)", location, who, screenshot(ctx, t))
	}
	cookies := siteCookies(ctx, t, site)
	if c, ok := cookies["__Host-entra-auth"]; !ok || !c.Secure || !c.HTTPOnly || c.SameSite != network.CookieSameSiteLax || c.Domain != "localhost" {
		t.Fatalf("the session cookie as the browser keeps it: %+v (all: %v)", c, cookies)
	}
	for name := range cookies {
		if strings.HasPrefix(name, "__Host-entra-auth-signin-") {
			t.Errorf("the sign-in cookie %s outlived the sign-in", name)
		}
	}

	// /.auth/me knows her too.
	step("open /.auth/me", chromedp.Navigate(site+".auth/me"), chromedp.Evaluate(`document.body.innerText`, &me))
	if !strings.Contains(me, `"preferred_username":"ada@contoso.example"`) || !strings.Contains(me, `"user_id":"`) {
		t.Fatalf("/.auth/me: %s", me)
	}

	// The admin area asks for a stronger sign-in (authentication context c1): the browser
	// goes to Entra again, asking for it, and comes back to the page with it.
	var area string
	step("open the admin area: step up", chromedp.Navigate(site), waitUntil(`document.getElementById("who") !== null`),
		clickLink("The admin area"), waitUntil(`document.querySelector("a.user") !== null`), chromedp.Location(&location))
	if !strings.Contains(location, "/oauth2/v2.0/authorize") || !strings.Contains(location, "claims=") {
		t.Fatalf("the admin area did not ask Entra for the context: at %s (screenshot: %s)", location, screenshot(ctx, t))
	}
	step("step up as Ada", clickLink("ada@contoso.example"), waitUntil(`document.getElementById("area") !== null`),
		chromedp.Location(&location), chromedp.Evaluate(`document.getElementById("area").innerText`, &area))
	if location != site+"admin/" || !strings.Contains(area, "this one did (c1)") {
		t.Fatalf("after the step-up: at %s, %q (screenshot: %s)", location, area, screenshot(ctx, t))
	}

	// Sign out from the demo app's link: the session goes, the browser lands on the page
	// that says so, and signing in again starts from its link.
	step("sign out", chromedp.Navigate(site), waitUntil(`document.getElementById("who") !== null`),
		clickLink("Sign out"), waitUntil(`document.body.innerText.includes("You are signed out")`), chromedp.Location(&location))
	if !strings.HasSuffix(location, "/.auth/signed-out") {
		t.Fatalf("after sign-out the browser is at %s, want the signed-out page (screenshot: %s)", location, screenshot(ctx, t))
	}
	step("sign in again", clickLink("Sign in again"), waitUntil(`document.querySelector("a.user") !== null`), chromedp.Location(&location))
	if !strings.Contains(location, "/oauth2/v2.0/authorize") {
		t.Fatalf("after 'Sign in again' the browser is at %s, want the sign-in page (screenshot: %s)", location, screenshot(ctx, t))
	}
	if _, ok := siteCookies(ctx, t, site)["__Host-entra-auth"]; ok {
		t.Fatal("the session cookie survived sign-out")
	}
}

// startChromium starts headless Chromium for the test, and returns its context and a
// step function that runs actions, failing the test with where the browser is, what it
// shows and a screenshot when they do not complete within 20 s.
func startChromium(t *testing.T, browser string) (context.Context, func(name string, actions ...chromedp.Action)) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1200, 900))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if err := chromedp.Run(ctx); err != nil { // starts the browser
		t.Fatalf("start %s: %v", browser, err)
	}
	step := func(name string, actions ...chromedp.Action) {
		t.Helper()
		stepCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		if err := chromedp.Run(stepCtx, actions...); err != nil {
			var location, text string
			_ = chromedp.Run(ctx, chromedp.Location(&location), chromedp.Evaluate(`document.body ? document.body.innerText : ""`, &text))
			t.Fatalf("%s: %v, at %s showing %.500q (screenshot: %s)", name, err, location, text, screenshot(ctx, t))
		}
	}
	return ctx, step
}

// TestBrowserSignInToDjango is TestBrowserSignIn for a Django team: make run-django's
// setup, headless Chromium signs in as Ada and lands on Django's page as the user Django
// synced, in her mirrored groups and staff by her group's flag; Django's admin lists her;
// signing out from Django's page signs her out of the filter.
func TestBrowserSignInToDjango(t *testing.T) {
	if *engine != "wazero" {
		t.Skip("SKIPPED in the V8 pass: it drives what make run-django starts, whose runner is wazero's")
	}
	browser := chromium()
	if browser == "" {
		testskip.Missing(t, "no Chromium (chromium, chromium-browser, google-chrome): apt-get install chromium to run the browser test")
	}
	djangoPython(t)
	site := startLocalRun(t, "APP_KIND=django", "DJANGO_DB="+filepath.Join(t.TempDir(), "django.sqlite3")).site
	ctx, step := startChromium(t, browser)
	var location, page, admin string

	step("open the Django project", chromedp.Navigate(site), waitUntil(`document.querySelector("a.user") !== null`), chromedp.Location(&location))
	if !strings.Contains(location, "/oauth2/v2.0/authorize") {
		t.Fatalf("signed out, the browser is at %s, want the mock's sign-in page (screenshot: %s)", location, screenshot(ctx, t))
	}
	step("pick Ada", clickLink("ada@contoso.example"), waitUntil(`document.querySelector("h1") !== null && document.querySelector("h1").innerText.startsWith("Signed in as")`),
		chromedp.Location(&location), chromedp.Evaluate(`document.body.innerText`, &page))
	for _, want := range []string{"Signed in as ada@contoso.example", "(staff)", groupOne, groupTwo} {
		if !strings.Contains(page, want) {
			t.Fatalf("Django's page at %s lacks %q:\n%s\n(screenshot: %s)", location, want, page, screenshot(ctx, t))
		}
	}
	step("open the admin", clickLink("Django admin"), waitUntil(`document.body.innerText.includes("Site administration")`),
		chromedp.Navigate(site+"admin/accounts/user/"), waitUntil(`document.querySelector("#result_list") !== null`),
		chromedp.Evaluate(`document.querySelector("#result_list").innerText`, &admin))
	if !strings.Contains(admin, "ada@contoso.example") {
		t.Fatalf("the admin's user list: %q (screenshot: %s)", admin, screenshot(ctx, t))
	}
	step("sign out", chromedp.Navigate(site), waitUntil(`document.querySelector("h1") !== null`),
		clickLink("Sign out"), waitUntil(`document.body.innerText.includes("You are signed out")`), chromedp.Location(&location))
	if !strings.HasSuffix(location, "/.auth/signed-out") {
		t.Fatalf("after sign-out the browser is at %s, want the signed-out page (screenshot: %s)", location, screenshot(ctx, t))
	}
}

// waitUntil polls a JavaScript condition in the page until it holds. (It evaluates rather
// than using chromedp's DOM queries, which lose track of the page after the cross-site
// redirects of a sign-in with this Chromium.) Errors while a navigation replaces the page
// are retried.
func waitUntil(condition string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		for {
			var ok bool
			if err := chromedp.Evaluate(condition, &ok).Do(ctx); err == nil && ok {
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for %s: %w", condition, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
}

// clickLink clicks the first link whose text contains text, as a person would.
func clickLink(text string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var clicked bool
		js := fmt.Sprintf(`(() => { const a = [...document.querySelectorAll("a")].find(a => a.innerText.includes(%q)); if (!a) return false; a.click(); return true })()`, text)
		if err := chromedp.Evaluate(js, &clicked).Do(ctx); err != nil {
			return err
		}
		if !clicked {
			return fmt.Errorf("no link with %q", text)
		}
		return nil
	})
}

// siteCookies are the cookies the browser would send to site.
func siteCookies(ctx context.Context, t *testing.T, site string) map[string]*network.Cookie {
	t.Helper()
	var cookies []*network.Cookie
	if err := chromedp.Run(ctx, chromedp.ActionFunc(func(ctx context.Context) error {
		var err error
		cookies, err = network.GetCookies().WithURLs([]string{site}).Do(ctx)
		return err
	})); err != nil {
		t.Fatalf("read cookies: %v", err)
	}
	out := map[string]*network.Cookie{}
	for _, c := range cookies {
		out[c.Name] = c
	}
	return out
}

// screenshot saves what the browser shows to dist/ (kept: a failed run's evidence) and
// returns the file's path.
func screenshot(ctx context.Context, t *testing.T) string {
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		return fmt.Sprintf("none: %v", err)
	}
	dir, _ := filepath.Abs("../dist")
	_ = os.MkdirAll(dir, 0o755)
	file := filepath.Join(dir, "browser-"+strings.ReplaceAll(t.Name(), "/", "-")+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		return fmt.Sprintf("none: %v", err)
	}
	return file
}
