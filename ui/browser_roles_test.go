package ui

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/postern/postern/client"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

// Role accounts in two real browsers: bob and alice (the organisation's
// administrator), both staff of Pharmacy, each on their own app and
// browser, show the Roles screen. Bob takes "Pharmacy on call"; his
// screen says he holds it, and alice's shows him as its holder live (the
// role event). Alice leaves it vacant with the holder picker; bob's
// screen offers Take again, live. axe-core checks both screens.
func TestBrowserRoles(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	aliceHome, bobHome, copts := roleFixture(t)
	a := newApp(t, aliceHome, &Options{Passphrase: []byte(alicePass), Client: copts})
	b := newApp(t, bobHome, &Options{Passphrase: []byte(bobPass), Client: copts})
	actx, bctx := browser(t), browser(t)
	const row = `#roles-rows tr[data-role="Pharmacy on call"]`
	holder := func(ctx context.Context) string {
		t.Helper()
		return eval[string](t, ctx, `document.querySelector('`+row+` .role-holder').textContent`)
	}

	for _, s := range []struct {
		ctx context.Context
		app *app
	}{{bctx, b}, {actx, a}} {
		step(t, s.ctx, "open unlocked", chromedp.Navigate(s.app.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
		waitJS(t, s.ctx, "the Roles link", `!document.getElementById("nav-roles-item").hidden`)
		step(t, s.ctx, "the Roles screen", chromedp.Click(chromedp.CSS("#nav-roles")), chromedp.WaitVisible(chromedp.CSS("#roles-table")))
		waitJS(t, s.ctx, "the role listed", `document.querySelector('`+row+`') !== null`)
		if got := holder(s.ctx); got != "vacant" {
			t.Fatalf("Pharmacy on call held by %q at the start", got)
		}
	}
	// Bob may take his team's role, not Ward 4's; he has no picker.
	if got := eval[string](t, bctx, `[...document.querySelectorAll("#roles-rows tr")].map(tr =>
		tr.dataset.role + ":" + [...tr.querySelectorAll("button, select")].map(e => e.getAttribute("aria-label") || e.id).join("+")).join("|")`); got != "Pharmacy on call:Take Pharmacy on call|Ward 4 on call:" {
		t.Fatalf("bob's actions %q", got)
	}
	checkAxe(t, bctx, axe, "roles")

	step(t, bctx, "take the role", chromedp.Click(chromedp.CSS(row+" .role-take")))
	waitJS(t, bctx, "taken", `document.getElementById("roles-status").textContent === "You hold Pharmacy on call now"`)
	if got := holder(bctx); got != "you (you hold this)" {
		t.Fatalf("bob's screen says %q", got)
	}
	if got := eval[string](t, bctx, `document.querySelector('`+row+` .role-leave').getAttribute("aria-label")`); got != "Leave Pharmacy on call" {
		t.Fatalf("bob's Leave button %q", got)
	}

	// Alice's screen follows, live: bob holds it; her picker shows him.
	waitJS(t, actx, "bob holds it, live", `document.querySelector('`+row+` .role-holder').textContent === "bob"`)
	if got := eval[string](t, actx, `(() => { const s = document.querySelector('`+row+` select');
		return document.querySelector('label[for="' + s.id + '"]').textContent + ": " + s.selectedOptions[0].textContent +
			" of " + [...s.options].map(o => o.textContent).join(", "); })()`); got != "Holder of Pharmacy on call: Bob Baker of Vacant, Alice Adams (you), Bob Baker" {
		t.Fatalf("alice's picker %q", got)
	}
	checkAxe(t, actx, axe, "roles, as an administrator")
	screenshot(t, actx, "roles")

	// Alice leaves it vacant; bob's screen offers Take again, live.
	eval[chromedp.Void](t, actx, `document.querySelector('`+row+` select').value = ""`)
	step(t, actx, "set vacant", chromedp.Click(chromedp.CSS(row+" .role-set")))
	waitJS(t, actx, "vacant", `document.getElementById("roles-status").textContent === "Pharmacy on call is vacant now"`)
	waitJS(t, bctx, "vacant, live", `document.querySelector('`+row+` .role-holder').textContent === "vacant" &&
		document.querySelector('`+row+` .role-take') !== null && document.querySelector('`+row+` .role-leave') === null`)
}

// A conversation addressed to a role account in the team queue, in a real
// browser: ann holds "Pharmacy on call"; a patient invited for the role
// writes; ann's queue shows the conversation live, naming the role,
// claimed by her (her device claims it as it arrives). When her
// colleague ben takes the role, her queue shows it his, live, assigned by
// her. axe-core checks the queue.
func TestBrowserRoleQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("a browser test")
	}
	chromiumPath(t)
	axe := axeSource(t)
	bg := context.Background()
	r := relaytest.New(t, nil)
	plain := &client.Options{KDF: testKDF}
	open := func(name string, o *client.Options) (string, *client.Client) {
		home := filepath.Join(t.TempDir(), name)
		c, err := client.Init(bg, home, []byte(teamPass), r.URL, name, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.AcceptTerms(TermsVersion); err != nil {
			t.Fatal(err)
		}
		return home, c
	}
	befriend := func(inviter, accepter *client.Client, as string) {
		code, err := inviter.Invite(bg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := accepter.Accept(bg, code, as); err != nil {
			t.Fatal(err)
		}
		if _, err := inviter.Sync(bg); err != nil {
			t.Fatal(err)
		}
	}
	// ann administers the organisation; every staff device is enrolled.
	annHome, ann := open("ann", plain)
	enrol := &client.DirectoryEnrolment{Administrators: []keys.Fingerprint{ann.Whoami().Identity}}
	rand.Read(enrol.Organisation[:])
	opts := &client.Options{KDF: testKDF, Directory: enrol}
	ann.Close()
	ann, err := client.Dial(bg, annHome, []byte(teamPass), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ann.Close() })
	_, intake := open("Pharmacy", opts)
	_, ben := open("ben", opts)
	_, pat := open("pat", plain)
	befriend(intake, ann, "Pharmacy")
	befriend(intake, ben, "Pharmacy")
	befriend(ann, ben, "ann")
	team, err := intake.CreateTeam(bg, "Pharmacy")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ann", "ben"} {
		if _, err := intake.AddStaff(bg, "Pharmacy", n); err != nil {
			t.Fatal(err)
		}
	}
	syncUntil := func(what string, done func() bool, cs ...*client.Client) {
		t.Helper()
		for round := 0; !done(); round++ {
			if round == 20 { // a hang guard
				t.Fatalf("%s never happened", what)
			}
			for _, c := range cs {
				if _, err := c.Sync(bg); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	syncUntil("the team's settling", func() bool {
		for _, c := range []*client.Client{ann, ben} {
			tms, err := c.Teams()
			if err != nil || len(tms) != 1 {
				return false
			}
			for _, m := range tms[0].Staff {
				if m.Joined != m.Devices {
					return false
				}
			}
		}
		return true
	}, intake, ann, ben)
	// The directory names the team's staff group for its role account;
	// the intake is listed (without a team), so that it receives it.
	spec, err := json.Marshal(map[string]any{
		"administrators": []string{ann.Whoami().Identity.String()},
		"teams":          []map[string]string{{"name": "Pharmacy", "group": team.ID}},
		"roles":          []map[string]string{{"name": "Pharmacy on call", "team": "Pharmacy"}},
		"staff": []map[string]any{
			{"identity": ann.Whoami().Identity.String(), "name": "Ann Archer", "teams": []string{"Pharmacy"}},
			{"identity": ben.Whoami().Identity.String(), "name": "Ben Brook", "teams": []string{"Pharmacy"}},
			{"identity": intake.Whoami().Identity.String(), "name": "Pharmacy desk"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ann.PublishDirectory(bg, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := ann.TakeRole(bg, "Pharmacy on call"); err != nil {
		t.Fatal(err)
	}
	holds := func(c *client.Client, who string) bool {
		rs, err := c.Roles()
		return err == nil && len(rs) == 1 && rs[0].Holder == who
	}
	syncUntil("ann's holding reaching ben and the intake", func() bool { return holds(ben, "ann") && holds(intake, "ann") }, intake, ben)
	code, err := intake.TeamInviteRole(bg, "Pharmacy", "Pharmacy on call")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pat.Accept(bg, code, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	syncUntil("pat's introduction", func() bool {
		cs, err := intake.Contacts()
		return err == nil && slices.ContainsFunc(cs, func(c client.Contact) bool { return c.Name == "pat" })
	}, intake, pat)
	ann.Close() // the app opens her home itself
	// The intake's receive loop, until the test ends, as its agent's.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			intake.Sync(bg) // a failed round is tried again
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })

	ctx := browser(t)
	a := newApp(t, annHome, &Options{Passphrase: []byte(teamPass), Client: opts})
	step(t, ctx, "open unlocked", chromedp.Navigate(a.s.LoginURL()), chromedp.WaitVisible(chromedp.CSS("#screen-inbox")))
	waitJS(t, ctx, "the team's link", `!document.getElementById("nav-team-item").hidden`)
	step(t, ctx, "the team queue", chromedp.Click(chromedp.CSS("#nav-team")), chromedp.WaitVisible(chromedp.CSS("#team-queue-table")))
	step(t, ctx, "all", chromedp.Click(chromedp.CSS("#team-tab-all")))
	if _, err := pat.Send(bg, "Pharmacy", "refill please"); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "pat's conversation for the role, claimed by ann, live", `(() => {
		const rows = document.getElementById("team-queue-rows");
		return rows.querySelector(".queue-role") !== null && rows.textContent.includes("claimed") && rows.textContent.includes("you"); })()`)
	if got := eval[string](t, ctx, `document.querySelector("#team-queue-rows .queue-role").textContent`); got != "for Pharmacy on call" {
		t.Fatalf("the role in the queue reads %q", got)
	}
	checkAxe(t, ctx, axe, "team queue with a role's conversation")

	// ben takes the role once his device holds the conversation.
	syncUntil("pat's conversation reaching ben", func() bool {
		items, err := ben.Queue("Pharmacy", client.QueueAll)
		return err == nil && len(items) == 1 && items[0].State == "claimed"
	}, ben)
	if _, err := ben.TakeRole(bg, "Pharmacy on call"); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "ben's, live", `document.getElementById("team-queue-rows").textContent.includes("ben (assigned by you)")`)
	clickRedrawn(t, ctx, "open the conversation", `#team-queue-rows a`)
	waitJS(t, ctx, "the conversation names the role", `document.getElementById("queue-state").textContent.startsWith("For Pharmacy on call. State: assigned; owner: ben (assigned by you)")`)
}
