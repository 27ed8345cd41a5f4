package ui

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// The browser tests drive Debian's chromium (POSTERN_CHROMIUM, default
// /usr/bin/chromium) headless through the DevTools protocol, and check
// every screen with axe-core (POSTERN_AXE_JS, default the file that
// .ci/run installs). Without chromium they are skipped, except in CI (CI
// set, or POSTERN_TEST_BROWSER=require as .ci/run sets), where they fail:
// there a missing browser must not pass unnoticed. With POSTERN_SCREENSHOTS=1 they write each screen to
// docs/screenshots/.

const defaultAxe = "/tmp/postern-axe/node_modules/axe-core/axe.min.js"

func chromiumPath(t *testing.T) string {
	t.Helper()
	p := os.Getenv("POSTERN_CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") != "" || os.Getenv("POSTERN_TEST_BROWSER") == "require" {
			t.Fatalf("no browser for the web app's tests: %v (CI or POSTERN_TEST_BROWSER=require is set; install Debian's chromium: .ci/run does)", err)
		}
		t.Skipf("no chromium at %s (install Debian's chromium, or set POSTERN_CHROMIUM)", p)
	}
	return p
}

func axeSource(t *testing.T) string {
	t.Helper()
	p := os.Getenv("POSTERN_AXE_JS")
	if p == "" {
		p = defaultAxe
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("axe-core is needed to check the screens' accessibility: %v\n"+
			"install it with: npm install --no-save --prefix /tmp/postern-axe axe-core@4 (or set POSTERN_AXE_JS to axe.min.js)", err)
	}
	return string(b)
}

// browser starts a headless chromium with a fresh profile; the returned
// context runs actions in its one tab.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelB(); cancelA() })
	// The first Run starts the browser, with no deadline on its context.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// step runs actions with a generous deadline: a hang guard, not a timing
// assertion.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// clickRedrawn clicks sel in a part of the page that an event may redraw
// at any moment (a list reloaded on a server event): a node replaced
// between being found and being clicked is looked up again, a few times.
func clickRedrawn(t *testing.T, ctx context.Context, what, sel string) {
	t.Helper()
	for try := 1; ; try++ {
		sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
		err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS(sel)))
		cancel()
		if err == nil {
			return
		}
		gone := strings.Contains(err.Error(), "Could not find node") || strings.Contains(err.Error(), "Could not compute box model") ||
			strings.Contains(err.Error(), "detached")
		if try == 5 || !gone {
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// waitJS waits until the expression is true in the page. On a timeout it
// fails with what the page shows (its route and visible text), so that a
// wait that never ends says where the page stood.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	_, err := chromedp.Run(sctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(60*time.Second)))
	if err == nil {
		return
	}
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	page, derr := chromedp.Run(dctx, chromedp.Evaluate[string](`location.hash + "\n" + document.body.innerText.slice(0, 2000)`))
	if derr != nil {
		page = "(the page could not be read: " + derr.Error() + ")"
	}
	t.Fatalf("%s: %v; the page shows:\n%s", what, err, page)
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// checkAxe runs axe-core on the page as it is and fails on any serious or
// critical violation (WCAG 2.1 A and AA rules and axe's best practices).
func checkAxe(t *testing.T, ctx context.Context, axe, screen string) {
	t.Helper()
	if !eval[bool](t, ctx, `typeof axe !== "undefined"`) {
		// Evaluated through DevTools, so the page's CSP does not apply.
		eval[chromedp.Void](t, ctx, axe)
	}
	vs := eval[[]axeViolation](t, ctx, `axe.run(document, {resultTypes: ["violations"]}).then(r =>
		r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, nodes: v.nodes.map(n => n.target.join(" "))})))`)
	for _, v := range vs {
		msg := fmt.Sprintf("axe on the %s screen: %s (%s): %s at %v", screen, v.ID, v.Impact, v.Help, v.Nodes)
		if v.Impact == "serious" || v.Impact == "critical" {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
}

// screenshot writes the page to docs/screenshots/NAME.png when
// POSTERN_SCREENSHOTS=1.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	if os.Getenv("POSTERN_SCREENSHOTS") != "1" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ui-"+name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// The web app in a real browser: sign in through the one-time link,
// unlock (a wrong passphrase first, then the right one from the
// keyboard), the inbox with a stored message, a message from a contact's
// client on a real relay arriving live without a reload, reading it,
// replying with a subject, contacts and devices, and locking with the
// shortcut; axe-core on every screen.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	r := relaytest.New(t, nil)
	home, alice, _, bob := pair(t, r)
	bg := context.Background()
	if _, err := bob.SendWith(bg, "alice", "Bed 4 is ready for the ward round.", &client.SendOptions{Subject: "Ward round"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	alice.Close() // the app opens the home itself
	a := newApp(t, home, nil)
	ctx := browser(t)

	// Sign in and unlock.
	step(t, ctx, "open the sign-in link", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#passphrase")))
	if loc := eval[string](t, ctx, `location.href`); strings.Contains(loc, "t=") {
		t.Fatalf("the token stayed in the address bar: %s", loc)
	}
	checkAxe(t, ctx, axe, "unlock")
	screenshot(t, ctx, "unlock")
	step(t, ctx, "a wrong passphrase",
		chromedp.SendKeys(chromedp.CSS("#passphrase"), "not my passphrase"),
		chromedp.Click(chromedp.CSS("#unlock-button")),
		chromedp.WaitVisible(chromedp.CSS("#unlock-error")))
	if got := eval[string](t, ctx, `document.getElementById("unlock-error").textContent`); got != "wrong passphrase for "+home {
		t.Fatalf("wrong passphrase shows %q", got)
	}
	checkAxe(t, ctx, axe, "unlock with an error")
	// The field's text is selected after a failure: typing replaces it,
	// and Enter submits (no mouse needed).
	step(t, ctx, "unlock from the keyboard",
		chromedp.SendKeys(chromedp.CSS("#passphrase"), alicePass+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))

	// The inbox shows the stored message.
	if got := eval[string](t, ctx, `document.getElementById("inbox-rows").textContent`); !strings.Contains(got, "Ward round") || !strings.Contains(got, "bob") {
		t.Fatalf("inbox shows %q", got)
	}
	checkAxe(t, ctx, axe, "inbox")
	screenshot(t, ctx, "inbox")

	// A message from bob's client arrives live, without a reload.
	eval[chromedp.Void](t, ctx, `window.notReloaded = true`)
	sent, err := bob.SendWith(bg, "alice", "Potassium 5.9 mmol/L, please repeat.", &client.SendOptions{Subject: "Lab result"})
	if err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the new message in the inbox",
		`[...document.querySelectorAll("#inbox-rows a")].some(a => a.textContent === "Lab result")`)
	if !eval[bool](t, ctx, `window.notReloaded === true`) {
		t.Fatal("the page was reloaded")
	}
	if !eval[bool](t, ctx, `document.querySelector("#inbox-rows tr").classList.contains("unread")`) {
		t.Fatal("the new message is not shown as unread")
	}
	// "Ward round", received before the app started and not read yet,
	// and the new message: two unread.
	if got := eval[string](t, ctx, `document.title`); got != "(2) Postern" {
		t.Fatalf("title %q: it must show only the unread count", got)
	}
	if got := eval[string](t, ctx, `getComputedStyle(document.querySelector("#inbox-rows tr td")).fontWeight`); got != "700" {
		t.Fatalf("unread row's weight %s, want bold", got)
	}
	checkAxe(t, ctx, axe, "inbox with an unread message")
	screenshot(t, ctx, "inbox-live")

	// Open it with the keyboard: focus its link, Enter.
	step(t, ctx, "open the message",
		chromedp.Focus(chromedp.CSS(`#inbox-rows a[href="#/m/`+sent.ID+`"]`)),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#msg-text")))
	if got := eval[string](t, ctx, `document.getElementById("msg-text").textContent`); got != sent.Text {
		t.Fatalf("message shows %q", got)
	}
	if got := eval[string](t, ctx, `document.title`); got != "(1) Postern" {
		t.Fatalf("title after reading one of two unread: %q", got)
	}
	checkAxe(t, ctx, axe, "message")
	screenshot(t, ctx, "message")

	// Reply, with the subject filled in.
	step(t, ctx, "reply", chromedp.Click(chromedp.CSS("#msg-reply")), chromedp.WaitVisible(chromedp.CSS("#compose-text")))
	if to, subj := eval[string](t, ctx, `document.getElementById("compose-to").value`), eval[string](t, ctx, `document.getElementById("compose-subject").value`); to != "bob" || subj != "Re: Lab result" {
		t.Fatalf("reply form: to %q, subject %q", to, subj)
	}
	step(t, ctx, "type the reply", chromedp.SendKeys(chromedp.CSS("#compose-text"), "Repeat sample sent to the lab."))
	checkAxe(t, ctx, axe, "compose")
	screenshot(t, ctx, "compose")
	step(t, ctx, "send",
		chromedp.Click(chromedp.CSS("#compose-send")),
		chromedp.WaitVisible(chromedp.CSS("#screen-message")))
	waitJS(t, ctx, "the sent message shown", `document.getElementById("msg-text").textContent === "Repeat sample sent to the lab."`)
	msgs, err := bob.Sync(bg)
	if err != nil {
		t.Fatal(err)
	}
	var reply *client.Message
	for i := range msgs {
		if msgs[i].Text == "Repeat sample sent to the lab." {
			reply = &msgs[i]
		}
	}
	if reply == nil || reply.Subject != "Re: Lab result" || reply.ReplyTo != sent.ID {
		t.Fatalf("bob got %+v", msgs)
	}

	// Contacts and devices.
	step(t, ctx, "contacts", chromedp.Navigate(a.s.Origin()+"/#/contacts"), chromedp.WaitVisible(chromedp.CSS("#contacts-rows tr")))
	if got := eval[string](t, ctx, `document.getElementById("contacts-rows").textContent`); !strings.Contains(got, "bob") {
		t.Fatalf("contacts show %q", got)
	}
	checkAxe(t, ctx, axe, "contacts")
	screenshot(t, ctx, "contacts")
	step(t, ctx, "devices", chromedp.Click(chromedp.CSS("#nav-devices")), chromedp.WaitVisible(chromedp.CSS("#devices-rows tr")))
	if got := eval[string](t, ctx, `document.getElementById("devices-rows").textContent`); !strings.Contains(got, "(this device)") {
		t.Fatalf("devices show %q", got)
	}
	checkAxe(t, ctx, axe, "devices")
	// docs/screenshots/ui-devices.png is TestBrowserDevices', with a
	// linked device and its alert.

	// Lock with the shortcut: the unlock screen, nothing of the inbox left
	// in the page, and the API refuses content.
	step(t, ctx, "lock with Ctrl+Alt+L",
		chromedp.KeyEvent("l", chromedp.KeyModifiers(chromedp.ModifierCtrl, chromedp.ModifierAlt)),
		chromedp.WaitVisible(chromedp.CSS("#passphrase")))
	if got := eval[string](t, ctx, `document.getElementById("main").textContent`); strings.Contains(got, "Potassium") || strings.Contains(got, "Lab result") {
		t.Fatal("the locked page still holds message text")
	}
	if st := eval[int](t, ctx, `fetch("/api/inbox").then(r => r.status)`); st != 423 {
		t.Fatalf("inbox while locked: %d", st)
	}
	checkAxe(t, ctx, axe, "locked")

	// The page cannot keep content: nothing in its storage.
	if n := eval[int](t, ctx, `localStorage.length + sessionStorage.length`); n != 0 {
		t.Fatalf("%d items in the browser's storage", n)
	}
}

// With the passphrase given at start (POSTERN_PASSPHRASE) the first
// session opens unlocked; left alone past the idle timeout (short, for
// the test) the page locks itself, pushed by the server, with nothing of
// the inbox left on it, and unlocks again with the passphrase.
func TestBrowserIdleLock(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	if _, err := bob.SendWith(context.Background(), "alice", "Handover at 7.", &client.SendOptions{Subject: "Handover"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	ctx := browser(t) // started first: the idle time counts from New
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass), IdleTimeout: 5 * time.Second})
	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))
	// No input from here on: the server locks, the page follows.
	step(t, ctx, "locked by the idle timeout", chromedp.WaitVisible(chromedp.CSS("#passphrase")))
	if got := eval[string](t, ctx, `document.getElementById("main").textContent`); strings.Contains(got, "Handover") {
		t.Fatal("the locked page still shows the inbox")
	}
	checkAxe(t, ctx, axe, "idle-locked")
	step(t, ctx, "unlock again",
		chromedp.SendKeys(chromedp.CSS("#passphrase"), alicePass+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))
	if got := eval[string](t, ctx, `document.getElementById("inbox-rows").textContent`); !strings.Contains(got, "Handover") {
		t.Fatalf("inbox after unlocking: %q", got)
	}
}
