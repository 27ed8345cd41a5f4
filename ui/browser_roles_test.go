package ui

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"
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
