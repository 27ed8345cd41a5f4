package ui

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// spyNotifications wraps the page's Notification constructor so that the
// test sees every notification made: its title, the options given and
// what the real notification carries. The browser's permission is the
// real one (set through DevTools).
const spyNotifications = `(() => {
  const Real = window.Notification;
  window.notes = [];
  class Spy extends Real {
    constructor(title, opts) {
      super(title, opts);
      window.notes.push({title, opts: JSON.stringify(opts === undefined ? null : opts), body: this.body, tag: this.tag});
    }
  }
  Object.defineProperty(Spy, "permission", {get: () => Real.permission});
  Spy.requestPermission = (...a) => Real.requestPermission(...a);
  window.Notification = Spy;
})()`

// Desktop notifications in a real browser: turned on with the Settings
// button once the browser allows them; a message that arrives while the
// page is in front shows none (the page shows it); while the page is
// hidden, each shows one notification with exactly "New secure message",
// no body and one tag, and nothing of the sender, subject or text; turned
// off, none; still off after a reload. Under a policy that turns them
// off, Settings says so, offers no button, and none is shown; the lock's
// timeout set by the policy is said to be the organisation's. axe-core
// checks the Settings screen.
func TestBrowserNotifications(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	alice.Close()
	bg := context.Background()
	ctx := browser(t)
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	text := func(id string) string {
		t.Helper()
		return eval[string](t, ctx, `document.getElementById(`+quote(id)+`).textContent`)
	}
	unread := 0
	// send has bob send a message and waits until the page counted it.
	send := func(subject, body string) {
		t.Helper()
		if _, err := bob.SendWith(bg, "alice", body, &client.SendOptions{Subject: subject}); err != nil {
			t.Fatal(err)
		}
		unread++
		waitJS(t, ctx, "the page counts "+subject, `document.title === "(`+string(rune('0'+unread))+`) Postern"`)
	}
	notes := func() string {
		t.Helper()
		return eval[string](t, ctx, `JSON.stringify(window.notes)`)
	}

	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#inbox-empty")))
	step(t, ctx, "settings", chromedp.Click(chromedp.CSS("#nav-settings")), chromedp.WaitVisible(chromedp.CSS("#set-receipts")))
	if got := text("notify-state"); got != "Desktop notifications are not turned on in this browser yet." ||
		!eval[bool](t, ctx, `!document.getElementById("notify-on").hidden && document.getElementById("notify-off").hidden`) {
		t.Fatalf("before the browser allows them: %q", got)
	}
	// The browser allows them (as a person would in its prompt); the
	// button turns them on.
	step(t, ctx, "allow notifications", func(ctx context.Context, _ *chromedp.Target) (chromedp.Void, error) {
		// DevTools' Browser.setPermission, as a person's "Allow" would.
		err := chromedp.FromContext(ctx).Browser.Call(ctx, "Browser.setPermission", map[string]any{
			"permission": map[string]string{"name": "notifications"},
			"setting":    "granted",
			"origin":     a.s.Origin(),
		}, nil)
		return chromedp.Void{}, err
	})
	eval[chromedp.Void](t, ctx, spyNotifications)
	step(t, ctx, "turn them on", chromedp.Focus(chromedp.CSS("#notify-on")), chromedp.KeyEvent("\r"))
	waitJS(t, ctx, "on", `document.getElementById("notify-state").textContent === "Desktop notifications are on."`)
	if !eval[bool](t, ctx, `document.getElementById("notify-on").hidden && !document.getElementById("notify-off").hidden`) {
		t.Fatal("the buttons do not follow")
	}
	checkAxe(t, ctx, axe, "Settings with notifications on")
	screenshot(t, ctx, "settings-notifications")

	// In front of the person: the page shows the message, no notification.
	if !eval[bool](t, ctx, `document.visibilityState === "visible" && document.hasFocus()`) {
		t.Log("the headless page reports no focus: the in-front case is not checked")
	} else {
		send("Bed 7", "Potassium 5.9 in bed 7, please repeat.")
		if got := notes(); got != "[]" {
			t.Fatalf("a notification while the page is in front: %s", got)
		}
	}

	// The page in the background: one notification a message, saying
	// nothing.
	eval[chromedp.Void](t, ctx, `Object.defineProperty(document, "visibilityState", {get: () => "hidden", configurable: true});
		document.hasFocus = () => false`)
	send("Ward round", "Mrs Example in bed 3 is ready for discharge.")
	waitJS(t, ctx, "a notification", `window.notes.length === 1`)
	send("Lab result", "Haemoglobin 71 g/L for bed 9.")
	waitJS(t, ctx, "another", `window.notes.length === 2`)
	want := `{"title":"New secure message","opts":"{\"tag\":\"postern-new-message\",\"renotify\":true}","body":"","tag":"postern-new-message"}`
	if got := notes(); got != "["+want+","+want+"]" {
		t.Fatalf("notifications %s, want two of %s", got, want)
	}
	for _, leak := range []string{"bob", "Ward", "Lab", "bed", "Example", "Haemoglobin"} {
		if strings.Contains(notes(), leak) {
			t.Fatalf("a notification holds %q", leak)
		}
	}

	// Off: none.
	step(t, ctx, "turn them off", chromedp.Click(chromedp.CSS("#notify-off")))
	waitJS(t, ctx, "off", `document.getElementById("notify-state").textContent === "Desktop notifications are off on this device."`)
	send("Rota", "The rota for next week is out.")
	if got := eval[int](t, ctx, `window.notes.length`); got != 2 {
		t.Fatalf("%d notifications with the setting off", got)
	}
	step(t, ctx, "reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS("#set-receipts")))
	waitJS(t, ctx, "still off", `document.getElementById("notify-state").textContent === "Desktop notifications are off on this device."`)

	// The organisation's policy turns them off: no button, none shown,
	// even with the device's setting on.
	step(t, ctx, "turn them on again", chromedp.Click(chromedp.CSS("#notify-on")))
	waitJS(t, ctx, "on again", `document.getElementById("notify-state").textContent === "Desktop notifications are on."`)
	a.s.Close()
	b := newApp(t, home, &Options{Passphrase: []byte(alicePass), NoDesktopNotifications: true,
		IdleTimeout: 2 * time.Minute, IdleTimeoutByPolicy: true})
	step(t, ctx, "open under the policy", chromedp.Navigate(b.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#inbox-rows tr")))
	step(t, ctx, "settings under the policy", chromedp.Click(chromedp.CSS("#nav-settings")), chromedp.WaitVisible(chromedp.CSS("#set-receipts")))
	waitJS(t, ctx, "off by policy", `document.getElementById("notify-state").textContent === "Desktop notifications are turned off on this computer by your organisation."`)
	if !eval[bool](t, ctx, `document.getElementById("notify-on").hidden && document.getElementById("notify-off").hidden`) {
		t.Fatal("a button to change what the policy set")
	}
	if got := text("set-idle"); !strings.HasPrefix(got, "The screen locks after 2 minutes without use") ||
		!strings.HasSuffix(got, "the longest is 2 minutes, set by your organisation.") {
		t.Fatalf("the lock under a policy: %q", got)
	}
	checkAxe(t, ctx, axe, "Settings under a policy")
	eval[chromedp.Void](t, ctx, spyNotifications)
	eval[chromedp.Void](t, ctx, `Object.defineProperty(document, "visibilityState", {get: () => "hidden", configurable: true});
		document.hasFocus = () => false`)
	send("Handover", "Handover at 7.")
	if got := notes(); got != "[]" {
		t.Fatalf("notifications under a policy that turns them off: %s", got)
	}
}
