package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// newNonContactGroup makes, on one relay, the group "Ward 4" of alice
// with bob and carol, who are contacts of alice only, and waits until
// carol reads what bob writes to it (their devices introduced themselves
// through the group, protocol/SPEC.md section 15.10). It returns carol's
// home (her client closed, for an app to open; passphrase bobPass) and the
// group's ID.
func newNonContactGroup(t *testing.T) (string, string) {
	t.Helper()
	r := relaytest.New(t, nil)
	_, alice, _, bob := pair(t, r)
	bg := context.Background()
	carolHome := filepath.Join(t.TempDir(), "carol")
	carol, err := client.Init(bg, carolHome, []byte(bobPass), r.URL, "carol", &client.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { carol.Close() })
	if _, err := carol.AcceptTerms(TermsVersion); err != nil {
		t.Fatal(err)
	}
	code, err := alice.Invite(bg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Accept(bg, code, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	g, err := alice.CreateGroup(bg, "Ward 4", "bob", "carol")
	if err != nil {
		t.Fatal(err)
	}
	// A hang guard, not a timing: rounds of syncs until carol reads a
	// group message bob wrote after the introductions.
	for round, read := 0, false; !read; round++ {
		if round == 20 {
			t.Fatal("carol never read bob's group message")
		}
		for _, c := range []*client.Client{alice, bob, carol} {
			if _, err := c.Sync(bg); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := bob.SendGroup(bg, "Ward 4", fmt.Sprintf("round %d", round), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := carol.Sync(bg); err != nil {
			t.Fatal(err)
		}
		ms, err := carol.Inbox()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			read = read || (m.From == "bob" && strings.HasPrefix(m.Text, "round "))
		}
	}
	carol.Close()
	return carolHome, g.ID
}

// The make-contact route: refusals (a contact, a name a contact has, a
// bad name, no such group) change nothing; then bob, known only through
// the group, becomes carol's contact under the name given, and shows as a
// contact in the group.
func TestMakeContactAPI(t *testing.T) {
	home, gid := newNonContactGroup(t)
	a := newApp(t, home, &Options{Passphrase: []byte(bobPass)})
	a.login()
	path := func(g, member string) string { return "/api/groups/" + g + "/members/" + member + "/contact" }
	for _, c := range []struct {
		path, body string
		code       int
		want       string
	}{
		{path(gid, "alice"), `{"name":"Al"}`, http.StatusConflict, "alice is not someone known only through this group"},
		{path(gid, "bob"), `{"name":"alice"}`, http.StatusConflict, "A contact is named alice already."},
		{path(gid, "bob"), `{"name":"me"}`, http.StatusBadRequest, "A contact's name is 1 to 64 bytes"},
		{path("nosuchgroup", "bob"), `{}`, http.StatusNotFound, "There is no such group."},
	} {
		resp, body := a.do("POST", c.path, c.body, nil)
		if resp.StatusCode != c.code || !strings.Contains(body, c.want) {
			t.Fatalf("%s %s: %d %s", c.path, c.body, resp.StatusCode, body)
		}
	}
	contacts := func() string {
		_, body := a.do("GET", "/api/contacts", "", nil)
		var cs []contactJSON
		if err := json.Unmarshal([]byte(body), &cs); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, c := range cs {
			names = append(names, c.Name)
		}
		return strings.Join(names, ",")
	}
	if got := contacts(); got != "alice" {
		t.Fatalf("contacts after the refusals: %s", got)
	}
	resp, body := a.do("POST", path(gid, "bob"), `{"name":"Bob B"}`, nil)
	var res makeContactResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &res) != nil || res.Contact.Name != "Bob B" {
		t.Fatalf("make contact: %d %s", resp.StatusCode, body)
	}
	for _, m := range res.Group.Members {
		if m.Name != "me" && !m.Contact {
			t.Fatalf("a member not a contact after: %+v", res.Group.Members)
		}
	}
	if got := contacts(); got != "alice,Bob B" {
		t.Fatalf("contacts: %s", got)
	}
}
