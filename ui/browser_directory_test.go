package ui

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

// The organisation directory in compose, in a real browser: bob, the
// organisation's administrator, publishes a directory; alice's device
// receives and checks it; as she types in the To field, compose lists the
// matching team, role account and colleagues: bob (her contact) as a
// button that fills the field with his contact name, carol (not a
// contact) as in the directory only, with a Write button that says she
// cannot be reached yet (her device never published). Locking drops the list. axe-core
// checks the screen with the list shown.
func TestBrowserDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	home, copts := directoryFixture(t)

	ctx := browser(t)
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass), Client: copts})
	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#nav-compose")))
	step(t, ctx, "compose", chromedp.Click(chromedp.CSS("#nav-compose")), chromedp.WaitVisible(chromedp.CSS("#compose-to")))
	step(t, ctx, "type phar", chromedp.SendKeys(chromedp.CSS("#compose-to"), "phar"))
	waitJS(t, ctx, "the suggestions", `!document.getElementById("directory-suggest").hidden`)
	items := eval[string](t, ctx, `[...document.querySelectorAll("#directory-matches li")].map(li => li.textContent).join("|")`)
	want := []string{
		"Pharmacy (team) — in the directory",
		"Pharmacy on call (role account · Pharmacy · held by Bob Baker) — in the directory",
		"Bob Baker (Pharmacist · Pharmacy)",
		"Carol Cole (Pharmacist · Pharmacy) — in the directory; not yet a contact Write",
	}
	if items != strings.Join(want, "|") {
		t.Fatalf("suggestions %q, want %q", items, strings.Join(want, "|"))
	}
	if got := eval[string](t, ctx, `document.querySelector("#directory-matches button").getAttribute("aria-label")`); got != "Write to Bob Baker, your contact bob, Pharmacist · Pharmacy" {
		t.Fatalf("the button's label %q", got)
	}
	checkAxe(t, ctx, axe, "compose with directory suggestions")
	screenshot(t, ctx, "compose-directory")
	// Carol's device never said where colleagues reach it: her Write
	// button says so and adds nothing.
	step(t, ctx, "write to carol", chromedp.Click(chromedp.CSS("#directory-matches li:last-child button")))
	waitJS(t, ctx, "the refusal", `document.querySelector("#directory-matches li:last-child .note").textContent.includes("cannot be reached through the directory yet")`)

	// Choosing bob fills the To field with his contact name.
	step(t, ctx, "choose bob", chromedp.Click(chromedp.CSS("#directory-matches button")))
	waitJS(t, ctx, "the To field filled", `document.getElementById("compose-to").value === "bob" && document.getElementById("directory-suggest").hidden`)
	if got := eval[string](t, ctx, `document.activeElement.id`); got != "compose-subject" {
		t.Fatalf("focus on %q after choosing, want the subject", got)
	}
	// Bob's availability shows under the To field.
	waitJS(t, ctx, "bob's availability", `!document.getElementById("compose-availability").hidden`)
	if got := eval[string](t, ctx, `document.getElementById("compose-availability").textContent`); !strings.HasPrefix(got, "bob is busy, do not disturb until ") ||
		!strings.HasSuffix(got, "bob named Carol Cole, who is not one of your contacts: your message goes to bob only.") {
		t.Fatalf("bob's availability reads %q", got)
	}
	checkAxe(t, ctx, axe, "compose with the addressee's availability")
	step(t, ctx, "bob's page", chromedp.Navigate(a.s.Origin()+"/#/contacts/bob"), chromedp.WaitVisible(chromedp.CSS("#contact-availability")))
	if got := eval[string](t, ctx, `document.getElementById("contact-availability").textContent`); !strings.HasPrefix(got, "bob is busy, do not disturb until ") ||
		!strings.HasSuffix(got, "Messages to bob also go to Carol Cole now.") {
		t.Fatalf("bob's page says %q", got)
	}
	step(t, ctx, "compose again", chromedp.Click(chromedp.CSS("#nav-compose")), chromedp.WaitVisible(chromedp.CSS("#compose-to")))

	// Another query; locking drops the list.
	eval[chromedp.Void](t, ctx, `document.getElementById("compose-to").value = ""`)
	step(t, ctx, "type carol", chromedp.SendKeys(chromedp.CSS("#compose-to"), "carol"))
	waitJS(t, ctx, "carol suggested", `document.getElementById("directory-matches").textContent.includes("Carol Cole")`)
	step(t, ctx, "lock", chromedp.Click(chromedp.CSS("#lock-now")), chromedp.WaitVisible(chromedp.CSS("#passphrase")))
	if got := eval[string](t, ctx, `document.getElementById("directory-matches").textContent`); got != "" {
		t.Fatalf("the locked page still lists %q", got)
	}
}

// directoryFixture makes alice and bob contacts in an organisation whose
// administrator bob publishes a directory listing them and carol (not
// alice's contact) with a Pharmacy team and role account; alice's device
// holds it. It returns alice's home and the client options with the
// organisation's enrolment.
func directoryFixture(t *testing.T) (string, *client.Options) {
	t.Helper()
	srv := relaytest.New(t, nil)
	home, alice, bobHome, bob := pair(t, srv)
	bg := context.Background()
	enrol := &client.DirectoryEnrolment{Administrators: []keys.Fingerprint{bob.Whoami().Identity}}
	rand.Read(enrol.Organisation[:])
	copts := &client.Options{KDF: testKDF, Directory: enrol}
	bob.Close()
	bob, err := client.Dial(bg, bobHome, []byte(bobPass), copts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bob.Close() })
	alice.Close()
	alice, err = client.Dial(bg, home, []byte(alicePass), copts)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	var carol keys.Fingerprint
	rand.Read(carol[:])
	spec, err := json.Marshal(map[string]any{
		"administrators": []string{bob.Whoami().Identity.String()},
		"teams":          []map[string]string{{"name": "Pharmacy"}, {"name": "Ward 4"}},
		"staff": []map[string]any{
			{"identity": bob.Whoami().Identity.String(), "name": "Bob Baker", "title": "Pharmacist", "teams": []string{"Pharmacy"}},
			{"identity": alice.Whoami().Identity.String(), "name": "Alice Adams", "title": "Nurse", "teams": []string{"Ward 4"}},
			{"identity": carol.String(), "name": "Carol Cole", "title": "Pharmacist", "teams": []string{"Pharmacy"}},
		},
		"roles": []map[string]string{{"name": "Pharmacy on call", "team": "Pharmacy", "holder": bob.Whoami().Identity.String()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.PublishDirectory(bg, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	if d, err := alice.Directory(); err != nil || d.Version != 1 {
		t.Fatalf("alice holds %+v, %v", d, err)
	}
	// Bob does not want to be disturbed for an hour, forwarded to carol
	// (who is not alice's contact).
	if _, err := bob.SetStatus(bg, client.StatusOptions{Availability: client.Busy, DNDUntil: time.Now().Add(time.Hour), ForwardTo: "Carol Cole"}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	if s, err := alice.Status("bob"); err != nil || !s.Forwarding {
		t.Fatalf("alice holds bob's status %+v, %v", s, err)
	}
	return home, copts
}
