package ui

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// The first run in a real browser, from the keyboard, on an empty home:
// the terms of use; declining them leaves nothing in the home; read
// again and accepted; the three ways (link and restore shown, then back);
// an identity created (a short passphrase refused first with the CLI's
// sentence) and the inbox shown; the acceptance in Settings, withdrawn
// there: the page locks, and after unlocking asks for the terms again
// before the inbox. axe-core on every screen.
func TestBrowserFirstRun(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	r := relaytest.New(t, nil)
	home := filepath.Join(t.TempDir(), "new")
	ctx := browser(t)
	a := newApp(t, home, &Options{Relay: r.URL, DeviceName: "WARD-4-PC"})
	text := func(id string) string {
		t.Helper()
		return eval[string](t, ctx, `document.getElementById(`+quote(id)+`).textContent`)
	}
	press := func(what, sel string, wait string) {
		t.Helper()
		step(t, ctx, what, chromedp.Focus(chromedp.CSS(sel)), chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS(wait)))
	}

	// The terms of use first.
	step(t, ctx, "open the sign-in link", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#terms-accept")))
	if got := text("terms-text"); !strings.Contains(got, "Terms of use of Postern") || !strings.Contains(got, "Version "+TermsVersion) ||
		!strings.Contains(got, "Withdrawing and leaving") {
		t.Fatalf("the terms show %q", got)
	}
	if eval[bool](t, ctx, `!document.getElementById("topbar").hidden`) {
		t.Fatal("the app's top bar is shown in the first run")
	}
	checkAxe(t, ctx, axe, "first run: terms")
	screenshot(t, ctx, "firstrun-terms")

	// Declined: nothing is made.
	press("decline", "#terms-decline", "#declined-again")
	if got := text("declined-text"); !strings.Contains(got, "nothing was created on this computer") {
		t.Fatalf("declined: %q", got)
	}
	checkAxe(t, ctx, axe, "first run: declined")
	screenshot(t, ctx, "firstrun-declined")
	noKeyFile(t, home, "declined")

	// Read again and accepted: the three ways.
	press("read the terms again", "#declined-again", "#terms-accept")
	press("accept", "#terms-accept", "#setup-way-create")
	if got := text("setup-accepted"); !strings.Contains(got, TermsVersion) {
		t.Fatalf("the choice says %q", got)
	}
	checkAxe(t, ctx, axe, "first run: choose")
	screenshot(t, ctx, "firstrun-choose")
	press("link this computer", "#setup-way-link", "#setup-code")
	if got := eval[string](t, ctx, `document.getElementById("setup-device").value`); got != "WARD-4-PC" {
		t.Fatalf("the device name offered: %q", got)
	}
	checkAxe(t, ctx, axe, "first run: link")
	screenshot(t, ctx, "firstrun-link")
	press("back", "#setup-back", "#setup-way-restore")
	press("restore", "#setup-way-restore", "#setup-recovery")
	checkAxe(t, ctx, axe, "first run: restore")
	screenshot(t, ctx, "firstrun-restore")
	press("back", "#setup-back", "#setup-way-create")

	// Create, from the keyboard.
	press("create", "#setup-way-create", "#setup-name")
	if got := eval[string](t, ctx, `document.getElementById("setup-relay").value`); got != r.URL {
		t.Fatalf("the relay offered: %q", got)
	}
	step(t, ctx, "type the name and a short passphrase",
		chromedp.SendKeys(chromedp.CSS("#setup-name"), "Ana Silva"),
		chromedp.SendKeys(chromedp.CSS("#setup-pass"), "too short"),
		chromedp.SendKeys(chromedp.CSS("#setup-pass2"), "too short\r"),
		chromedp.WaitVisible(chromedp.CSS("#setup-error")))
	if got := text("setup-error"); got != "the passphrase is too short: 9 characters, at least 12 are needed. choose a longer passphrase of several unrelated words." {
		t.Fatalf("a short passphrase shows %q", got)
	}
	noKeyFile(t, home, "a short passphrase")
	checkAxe(t, ctx, axe, "first run: create, with an error")
	screenshot(t, ctx, "firstrun-create")
	step(t, ctx, "a good passphrase, twice",
		chromedp.SendKeys(chromedp.CSS("#setup-pass"), newPass), // the field's text is selected: typing replaces it
		chromedp.Evaluate[chromedp.Void](`document.getElementById("setup-pass2").value = ""`),
		chromedp.SendKeys(chromedp.CSS("#setup-pass2"), newPass+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	waitJS(t, ctx, "the name in the top bar", `document.getElementById("me").textContent === "Ana Silva"`)
	if !eval[bool](t, ctx, `!document.getElementById("topbar").hidden`) {
		t.Fatal("no top bar after the first run")
	}
	checkAxe(t, ctx, axe, "first run: the inbox")
	screenshot(t, ctx, "firstrun-inbox")
	if _, err := os.Stat(filepath.Join(home, client.KeyFileName)); err != nil {
		t.Fatalf("no key file after the first run: %v", err)
	}

	// Settings: the acceptance, and withdrawing it.
	step(t, ctx, "settings", chromedp.Click(chromedp.CSS("#nav-settings")), chromedp.WaitVisible(chromedp.CSS("#terms-withdraw")))
	waitJS(t, ctx, "the acceptance shown", `document.getElementById("set-terms").textContent.includes("version `+TermsVersion+`")`)
	checkAxe(t, ctx, axe, "settings with the terms")
	press("withdraw", "#terms-withdraw", "#declined-again")
	if got := text("declined-heading"); got != "You withdrew your acceptance of the terms of use" {
		t.Fatalf("withdrawn: %q", got)
	}
	if st := eval[int](t, ctx, `fetch("/api/inbox").then(r => r.status)`); st != 423 {
		t.Fatalf("inbox after withdrawing: %d", st)
	}
	checkAxe(t, ctx, axe, "withdrawn")
	screenshot(t, ctx, "firstrun-withdrawn")

	// Unlocked again, the terms come before the inbox.
	press("unlock", "#declined-again", "#passphrase")
	step(t, ctx, "unlock", chromedp.SendKeys(chromedp.CSS("#passphrase"), newPass+"\r"), chromedp.WaitVisible(chromedp.CSS("#terms-accept")))
	if got := text("terms-heading"); got != "Accept the terms of use to go on" {
		t.Fatalf("after unlocking: %q", got)
	}
	if st := eval[int](t, ctx, `fetch("/api/inbox").then(r => r.status)`); st != 451 {
		t.Fatalf("inbox before accepting again: %d", st)
	}
	checkAxe(t, ctx, axe, "terms asked again")
	press("accept again", "#terms-accept", "#screen-inbox")
	if st := eval[int](t, ctx, `fetch("/api/inbox").then(r => r.status)`); st != 200 {
		t.Fatalf("inbox after accepting again: %d", st)
	}
}

// The two other ways in a real browser, with what a Go client of the same
// person made over a real relay on loopback: a backup file chosen in the
// file picker with its recovery key (restored: the person's contacts),
// and the link code that the person's other device shows, pasted (this
// computer becomes a device of the person). Both end on the inbox.
func TestBrowserFirstRunRestoreAndLink(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	r := relaytest.New(t, nil)
	_, alice, _, _ := pair(t, r)
	file := filepath.Join(t.TempDir(), "alice.backup")
	key, err := alice.Backup(context.Background(), file)
	if err != nil {
		t.Fatal(err)
	}
	ctx := browser(t)
	press := func(what, sel string, wait string) {
		t.Helper()
		step(t, ctx, what, chromedp.Focus(chromedp.CSS(sel)), chromedp.KeyEvent("\r"), chromedp.WaitVisible(chromedp.CSS(wait)))
	}
	begin := func(a *app, way, field string) {
		t.Helper()
		step(t, ctx, "open the sign-in link", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#terms-accept")))
		press("accept", "#terms-accept", "#setup-way-create")
		press(way, "#setup-way-"+way, field)
	}

	// Restore.
	restored := newApp(t, filepath.Join(t.TempDir(), "restored"), &Options{DeviceName: "WARD-PC"})
	begin(restored, "restore", "#setup-recovery")
	step(t, ctx, "choose the file, type the key and the passphrase",
		chromedp.SetUploadFiles(chromedp.CSS("#setup-file"), []string{file}),
		chromedp.SendKeys(chromedp.CSS("#setup-recovery"), key),
		chromedp.SendKeys(chromedp.CSS("#setup-pass"), newPass),
		chromedp.SendKeys(chromedp.CSS("#setup-pass2"), newPass+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	waitJS(t, ctx, "alice's name", `document.getElementById("me").textContent === "alice"`)
	step(t, ctx, "contacts", chromedp.Click(chromedp.CSS("#nav-contacts")), chromedp.WaitVisible(chromedp.CSS("#contacts-rows tr")))
	if got := eval[string](t, ctx, `document.getElementById("contacts-rows").textContent`); !strings.Contains(got, "bob") {
		t.Fatalf("contacts after the restore: %q", got)
	}
	checkAxe(t, ctx, axe, "restored")
	restored.s.Close()

	// Link: the other device shows the code.
	linked := newApp(t, filepath.Join(t.TempDir(), "linked"), &Options{DeviceName: "WARD-PC-2"})
	codes := make(chan string, 1)
	done := make(chan error, 1)
	lctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	defer cancel()
	go func() {
		_, err := alice.LinkDevice(lctx, &client.LinkOptions{Show: func(code string) { codes <- code }})
		done <- err
	}()
	var code string
	select {
	case code = <-codes:
	case err := <-done:
		t.Fatalf("LinkDevice: %v", err)
	}
	begin(linked, "link", "#setup-code")
	step(t, ctx, "paste the code, type the passphrase",
		chromedp.SetValue(chromedp.CSS("#setup-code"), code), // pasted
		chromedp.SendKeys(chromedp.CSS("#setup-pass"), newPass),
		chromedp.SendKeys(chromedp.CSS("#setup-pass2"), newPass+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	if err := <-done; err != nil {
		t.Fatalf("LinkDevice: %v", err)
	}
	waitJS(t, ctx, "alice's name", `document.getElementById("me").textContent === "alice"`)
	step(t, ctx, "devices", chromedp.Click(chromedp.CSS("#nav-devices")), chromedp.WaitVisible(chromedp.CSS("#devices-rows tr")))
	if got := eval[string](t, ctx, `document.getElementById("devices-rows").textContent`); !strings.Contains(got, "WARD-PC-2") {
		t.Fatalf("devices after linking: %q", got)
	}
	checkAxe(t, ctx, axe, "linked")
}
