package ui

import (
	"context"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// apiHold holds the page's requests for one API path, once armed, until
// released: a slow answer, on cue.
type apiHold struct {
	path    string
	armed   atomic.Bool
	arrived chan struct{} // one slot: a held request came
	release chan struct{}
	once    atomic.Bool
}

func newAPIHold(t *testing.T, path string) *apiHold {
	h := &apiHold{path: path, arrived: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(h.let)
	return h
}

func (h *apiHold) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.armed.Load() && r.Method == http.MethodGet && r.URL.Path == h.path {
			select {
			case h.arrived <- struct{}{}:
			default:
			}
			select {
			case <-h.release:
			case <-r.Context().Done():
			}
		}
		next.ServeHTTP(w, r)
	})
}

// held waits (bounded, as a hang guard) for a request to be held.
func (h *apiHold) held(t *testing.T) {
	t.Helper()
	select {
	case <-h.arrived:
	case <-time.After(90 * time.Second):
		t.Fatalf("no request for %s", h.path)
	}
}

// let answers the held requests and every one after.
func (h *apiHold) let() {
	if h.once.CompareAndSwap(false, true) {
		close(h.release)
	}
}

// Routes that overlap, in a real browser: the inbox's list is held while
// the page goes on to the Devices screen, and answered only once that
// screen is drawn. The late answer fills the inbox but does not cover the
// Devices screen asked for after it. (After an unlock, the page's own
// route to the inbox and a click on the device alert overlap so.)
func TestBrowserRoutesOverlap(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	if _, err := bob.Send(bg, "alice", "Bed 7 is ready"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	inbox := newAPIHold(t, "/api/inbox")
	a := newAppWrapped(t, home, &Options{Passphrase: []byte(alicePass)}, inbox.wrap)
	ctx := browser(t)
	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))
	step(t, ctx, "devices", chromedp.Click(chromedp.CSS("#nav-devices")), chromedp.WaitVisible(chromedp.CSS("#devices-rows tr")))

	// To the inbox, whose list is held: the page stays on Devices.
	inbox.armed.Store(true)
	eval[bool](t, ctx, `document.getElementById("inbox-rows").replaceChildren(), true`)
	step(t, ctx, "to the inbox", chromedp.Click(chromedp.CSS("#nav-inbox")))
	inbox.held(t)
	// Back to Devices, drawn in full while the inbox waits.
	eval[bool](t, ctx, `document.getElementById("devices-rows").replaceChildren(), true`)
	step(t, ctx, "back to devices", chromedp.Click(chromedp.CSS("#nav-devices")), chromedp.WaitVisible(chromedp.CSS("#devices-rows tr")))

	// The inbox's answer: its rows are drawn (in the same task as its
	// screen would be shown), and Devices stays on screen.
	inbox.let()
	waitJS(t, ctx, "the late inbox drawn", `document.querySelector("#inbox-rows tr") !== null`)
	if got := shownScreens(t, ctx); got != "screen-devices" {
		t.Fatalf("screens shown after the late answer: %q, want screen-devices", got)
	}
	if got := eval[string](t, ctx, `location.hash`); got != "#/devices" {
		t.Fatalf("address %q", got)
	}
}

// The device alert at unlock, in a real browser: it is loaded before the
// screen behind the unlock form is (the inbox, held here), and shows only
// with that screen and the top bar, where it stays, never above the
// unlock form first (a click aimed at it there would land on the top bar
// once it appears).
func TestBrowserAlertAfterUnlock(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	opts := &client.Options{KDF: testKDF}
	tablet := linkFrom(t, alice, "TABLET", opts)
	laptop := linkFrom(t, tablet, "LAPTOP", opts)
	laptop.Close()
	tablet.Close()
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	if as, err := alice.DeviceAlerts(); err != nil || len(as) != 1 {
		t.Fatalf("alerts %v, %v", as, err)
	}
	alice.Close()

	inbox := newAPIHold(t, "/api/inbox")
	a := newAppWrapped(t, home, &Options{}, inbox.wrap)
	ctx := browser(t)
	step(t, ctx, "open locked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#passphrase")))
	inbox.armed.Store(true)
	step(t, ctx, "unlock", chromedp.SendKeys(chromedp.CSS("#passphrase"), alicePass+"\r"))
	inbox.held(t)
	displayed := `document.getElementById("device-alert").getClientRects().length > 0`
	waitJS(t, ctx, "the alert loaded", `!document.getElementById("device-alert").hidden`)
	if got := shownScreens(t, ctx); got != "screen-unlock" {
		t.Fatalf("screens shown while the inbox is held: %q", got)
	}
	if eval[bool](t, ctx, displayed) {
		t.Fatal("the device alert shows above the unlock form")
	}

	inbox.let()
	step(t, ctx, "the inbox", chromedp.WaitVisible(chromedp.CSS("#screen-inbox")), chromedp.WaitVisible(chromedp.CSS("#device-alert")))
	if !eval[bool](t, ctx, displayed+` && !document.getElementById("topbar").hidden`) {
		t.Fatal("the alert or the top bar is not shown with the inbox")
	}
}

// linkFrom links a new device named name to from's person and returns
// its client, closed at cleanup.
func linkFrom(t *testing.T, from *client.Client, name string, opts *client.Options) *client.Client {
	t.Helper()
	bg := context.Background()
	codes := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := from.LinkDevice(bg, &client.LinkOptions{Show: func(c string) { codes <- c }})
		done <- err
	}()
	var code string
	select {
	case code = <-codes:
	case err := <-done:
		t.Fatalf("LinkDevice: %v", err)
	}
	c, err := client.LinkWith(bg, filepath.Join(t.TempDir(), name), []byte(alicePass), code, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	return c
}

// shownScreens names the screens not hidden.
func shownScreens(t *testing.T, ctx context.Context) string {
	t.Helper()
	return eval[string](t, ctx, `[...document.querySelectorAll("section.screen")].filter((s) => !s.hidden).map((s) => s.id).join(" ")`)
}
