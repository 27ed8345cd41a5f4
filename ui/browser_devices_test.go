package ui

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// Link a second device and revoke it, in a real browser: the page makes
// a link code (shown with its QR code and expiry), a Go client links
// with the code read from the page, the page asks before linking it and
// says it is linked; a third device that the second one links shows the
// alert banner on every screen, still there after a lock; the banner
// leads to revoking it, with a confirmation, from the keyboard; then the
// second device is revoked from its row. The relay refuses both after.
// axe-core on the devices screen, the question, and the alert.
func TestBrowserDevices(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	alice.Close()
	bg := context.Background()
	ctx := browser(t)
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	text := func(id string) string {
		t.Helper()
		return eval[string](t, ctx, `document.getElementById(`+quote(id)+`).textContent`)
	}

	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#nav-devices")))
	step(t, ctx, "devices", chromedp.Click(chromedp.CSS("#nav-devices")), chromedp.WaitVisible(chromedp.CSS("#devices-rows tr")))
	if got := text("devices-rows"); !strings.Contains(got, "(this device)") {
		t.Fatalf("devices: %q", got)
	}

	// Link: the code and its QR code on the page.
	step(t, ctx, "link a new device", chromedp.Click(chromedp.CSS("#link-start")), chromedp.WaitVisible(chromedp.CSS("#link-code")))
	waitJS(t, ctx, "the QR code drawn", `(() => { const i = document.getElementById("link-qr"); return i.complete && i.naturalWidth > 100; })()`)
	code := text("link-code")
	if !strings.HasPrefix(code, "postern-link:") || !strings.HasPrefix(text("link-expires"), "It expires at ") {
		t.Fatalf("link code %q, %q", code, text("link-expires"))
	}
	checkAxe(t, ctx, axe, "devices with a link code")
	type linked struct {
		c   *client.Client
		err error
	}
	done := make(chan linked, 1)
	go func() {
		c, err := client.LinkWith(bg, filepath.Join(t.TempDir(), "tablet"), []byte(alicePass), code, "TABLET", &client.Options{KDF: testKDF})
		done <- linked{c, err}
	}()
	step(t, ctx, "the page asks", chromedp.WaitVisible(chromedp.CSS("#link-ask")))
	if got := text("link-question"); got != `A device named "TABLET" asks to be linked to you. Link it?` {
		t.Fatalf("question %q", got)
	}
	checkAxe(t, ctx, axe, "devices, a device asks to be linked")
	step(t, ctx, "link it from the keyboard", chromedp.Focus(chromedp.CSS("#link-yes")), chromedp.KeyEvent("\r"))
	res := <-done
	if res.err != nil {
		t.Fatalf("LinkWith: %v", res.err)
	}
	tablet := res.c
	t.Cleanup(func() { tablet.Close() })
	waitJS(t, ctx, "linked", `document.getElementById("link-result").textContent.startsWith("Linked TABLET (")`)
	waitJS(t, ctx, "listed", `document.getElementById("devices-rows").textContent.includes("TABLET")`)
	if eval[bool](t, ctx, `!document.getElementById("link-box").hidden || document.getElementById("link-code").textContent !== ""`) {
		t.Fatal("the spent code is still on the page")
	}
	if !eval[bool](t, ctx, `document.getElementById("device-alert").hidden`) {
		t.Fatal("the device linked from this page is alerted on it")
	}

	// The tablet links a laptop: the alert on this page.
	if _, err := tablet.Sync(bg); err != nil {
		t.Fatal(err)
	}
	codes := make(chan string, 1)
	linkDone := make(chan error, 1)
	go func() {
		_, err := tablet.LinkDevice(bg, &client.LinkOptions{Show: func(c string) { codes <- c }})
		linkDone <- err
	}()
	var lc string
	select {
	case lc = <-codes:
	case err := <-linkDone:
		t.Fatalf("tablet LinkDevice: %v", err)
	}
	laptop, err := client.LinkWith(bg, filepath.Join(t.TempDir(), "laptop"), []byte(alicePass), lc, "LAPTOP", &client.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { laptop.Close() })
	if err := <-linkDone; err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "the alert", chromedp.WaitVisible(chromedp.CSS("#device-alert")))
	if got := text("device-alert-list"); !strings.HasPrefix(got, "A new device was linked to your account: LAPTOP, ") ||
		!strings.Contains(got, "If this was not you, revoke it now.") {
		t.Fatalf("alert %q", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("device-alert").getAttribute("role")`); got != "alert" {
		t.Fatalf("the alert's role %q", got)
	}
	waitJS(t, ctx, "the laptop listed", `document.getElementById("devices-rows").textContent.includes("LAPTOP")`)
	checkAxe(t, ctx, axe, "devices with the alert")
	screenshot(t, ctx, "devices")
	step(t, ctx, "the alert on another screen", chromedp.Click(chromedp.CSS("#nav-inbox")), chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	if eval[bool](t, ctx, `document.getElementById("device-alert").hidden`) {
		t.Fatal("the alert is gone on the inbox")
	}

	// Lock and unlock: not acknowledged, so still there.
	step(t, ctx, "lock", chromedp.KeyEvent("l", chromedp.KeyModifiers(chromedp.ModifierCtrl, chromedp.ModifierAlt)),
		chromedp.WaitVisible(chromedp.CSS("#passphrase")))
	if !eval[bool](t, ctx, `document.getElementById("device-alert").hidden && document.getElementById("device-alert-list").textContent === ""`) {
		t.Fatal("the alert stays on the locked page")
	}
	step(t, ctx, "unlock", chromedp.SendKeys(chromedp.CSS("#passphrase"), alicePass+"\r"), chromedp.WaitVisible(chromedp.CSS("#device-alert")))
	if got := text("device-alert-list"); !strings.Contains(got, "LAPTOP") {
		t.Fatalf("alert after unlocking %q", got)
	}

	// From the alert to revoking the laptop, confirmed from the keyboard.
	step(t, ctx, "revoke it from the alert", chromedp.Click(chromedp.CSS("#device-alert-list a")), chromedp.WaitVisible(chromedp.CSS("#revoke-box")))
	if got := text("revoke-question"); !strings.HasPrefix(got, "Revoke LAPTOP (") {
		t.Fatalf("revoke question %q", got)
	}
	if got := eval[string](t, ctx, `document.activeElement.id`); got != "revoke-no" {
		t.Fatalf("focus on %q, want the Cancel button", got)
	}
	checkAxe(t, ctx, axe, "devices, revoke confirmation")
	step(t, ctx, "confirm", chromedp.Focus(chromedp.CSS("#revoke-yes")), chromedp.KeyEvent("\r"))
	waitJS(t, ctx, "revoked", `document.getElementById("devices-status").textContent.startsWith("Revoked LAPTOP (")`)
	if got := text("devices-status"); !strings.HasSuffix(got, "). The relay refuses it from now on; it deletes its keys and messages the next time it reaches the relay.") {
		t.Fatalf("revoke says %q", got)
	}
	waitJS(t, ctx, "the alert answered", `document.getElementById("device-alert").hidden`)
	if _, err := laptop.Sync(bg); !errors.Is(err, client.ErrDeviceRevoked) {
		t.Fatalf("the revoked laptop syncs: %v", err)
	}

	// The second device, from its row.
	// The list is drawn again after the revoke, and again on the device
	// alert's event: the tablet's button may be replaced under the click.
	waitJS(t, ctx, "the laptop gone from the list", `!document.getElementById("devices-rows").textContent.includes("LAPTOP")`)
	clickRedrawn(t, ctx, "revoke the tablet", `#devices-rows button[aria-label="Revoke TABLET"]`)
	step(t, ctx, "the confirmation", chromedp.WaitVisible(chromedp.CSS("#revoke-box")))
	step(t, ctx, "confirm", chromedp.Click(chromedp.CSS("#revoke-yes")))
	waitJS(t, ctx, "revoked", `document.getElementById("devices-status").textContent.startsWith("Revoked TABLET (")`)
	if _, err := tablet.Sync(bg); !errors.Is(err, client.ErrDeviceRevoked) {
		t.Fatalf("the revoked tablet syncs: %v", err)
	}
	waitJS(t, ctx, "only this device left", `document.querySelectorAll("#devices-rows tr").length === 1`)
}

// A contact's page in a real browser: the safety number in groups and its
// QR code, a number that does not match refused with the CLI's sentence,
// then marked verified from the keyboard after comparing. axe-core on the
// list and the page.
func TestBrowserVerify(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	number := ""
	cts, err := alice.Contacts()
	if err != nil || len(cts) != 1 {
		t.Fatalf("contacts %v %v", cts, err)
	}
	number = cts[0].SafetyNumber
	alice.Close()
	ctx := browser(t)
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	text := func(id string) string {
		t.Helper()
		return eval[string](t, ctx, `document.getElementById(`+quote(id)+`).textContent`)
	}
	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#nav-contacts")))
	step(t, ctx, "contacts", chromedp.Click(chromedp.CSS("#nav-contacts")), chromedp.WaitVisible(chromedp.CSS("#contacts-rows tr")))
	if got := text("contacts-rows"); !strings.Contains(got, "bob") || !strings.Contains(got, "Not verified") {
		t.Fatalf("contacts %q", got)
	}
	checkAxe(t, ctx, axe, "contacts")
	step(t, ctx, "open bob", chromedp.Click(chromedp.CSS(`#contacts-rows a[href="#/contacts/bob"]`)), chromedp.WaitVisible(chromedp.CSS("#contact-number")))
	waitJS(t, ctx, "the QR code drawn", `(() => { const i = document.getElementById("contact-qr"); return i.complete && i.naturalWidth > 100; })()`)
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll("#contact-number span")].map(s => s.textContent)`); strings.Join(got, " ") != number || len(got) != 12 {
		t.Fatalf("the number's groups %q, want %q", got, number)
	}
	if text("contact-state") != "Not verified" {
		t.Fatalf("state %q", text("contact-state"))
	}
	checkAxe(t, ctx, axe, "contact")
	screenshot(t, ctx, "contact")

	// A number that does not match: the CLI's sentence, nothing changed.
	wrong := []byte(strings.ReplaceAll(number, " ", ""))
	wrong[0] = '0' + (wrong[0]-'0'+1)%10
	step(t, ctx, "a wrong number",
		chromedp.SendKeys(chromedp.CSS("#verify-number"), string(wrong)),
		chromedp.Click(chromedp.CSS("#verify-compared")),
		chromedp.Click(chromedp.CSS("#verify-button")),
		chromedp.WaitVisible(chromedp.CSS("#verify-error")))
	if got := text("verify-error"); got != "the number does not match bob's safety number; nothing was changed. compare again, in person or on a call." {
		t.Fatalf("error %q", got)
	}
	checkAxe(t, ctx, axe, "contact with an error")

	// Compared: the box ticked and the button pressed from the keyboard.
	eval[chromedp.Void](t, ctx, `document.getElementById("verify-number").value = ""`)
	step(t, ctx, "mark as verified",
		chromedp.Focus(chromedp.CSS("#verify-button")),
		chromedp.KeyEvent("\r"))
	waitJS(t, ctx, "verified", `document.getElementById("verify-status").textContent !== ""`)
	if got := text("verify-status"); got != "Verified bob. If their safety number changes, nothing is sent to them until you verify them again." {
		t.Fatalf("status %q", got)
	}
	if text("contact-state") != "Verified" || !eval[bool](t, ctx, `document.getElementById("verify-form").hidden`) {
		t.Fatalf("after verifying: %q", text("contact-state"))
	}
	checkAxe(t, ctx, axe, "contact verified")
	step(t, ctx, "back", chromedp.Click(chromedp.CSS("#contact-back")), chromedp.WaitVisible(chromedp.CSS("#contacts-rows tr")))
	if got := text("contacts-rows"); !strings.Contains(got, "Verified") {
		t.Fatalf("contacts after verifying %q", got)
	}
}
