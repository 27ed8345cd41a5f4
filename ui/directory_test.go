package ui

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/client"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

// GET /api/directory: the whole directory, a lookup best first with the
// contact named, a bad limit refused; a device without a directory
// answers 404 with the CLI's sentence.
func TestDirectoryAPI(t *testing.T) {
	home, copts := directoryFixture(t)
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass), Client: copts})
	a.login()
	resp, body := a.do("GET", "/api/directory", "", nil)
	var d directoryJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &d) != nil || d.Version != 1 || len(d.Entries) != 6 || len(d.Administrators) != 1 {
		t.Fatalf("directory: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("GET", "/api/directory?q=bob&limit=3", "", nil)
	var es []client.DirectoryEntry
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &es) != nil || len(es) != 1 || es[0].Name != "Bob Baker" || es[0].Contact != "bob" {
		t.Fatalf("lookup: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("GET", "/api/directory?q=nobody", "", nil); resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "[]" {
		t.Fatalf("no match: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("GET", "/api/directory?q=bob&limit=0", "", nil); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "limit must be a positive number") {
		t.Fatalf("bad limit: %d %s", resp.StatusCode, body)
	}

	other, _, _, _ := pair(t, relaytest.New(t, nil))
	b := newApp(t, other, &Options{Passphrase: []byte(alicePass)})
	b.login()
	if resp, body := b.do("GET", "/api/directory?q=bob", "", nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "this device holds no organisation directory") {
		t.Fatalf("no directory: %d %s", resp.StatusCode, body)
	}
}

// POST /api/directory/people/{name}/contact: a listed colleague who is
// not a contact becomes one without an invitation, named as the directory
// names them; again, it is a contact already (409); a name the directory
// does not list is 404.
func TestReachColleagueAPI(t *testing.T) {
	bg := context.Background()
	srv := relaytest.New(t, nil)
	home, alice, bobHome, bob := pair(t, srv)
	enrol := &client.DirectoryEnrolment{Administrators: []keys.Fingerprint{bob.Whoami().Identity}}
	rand.Read(enrol.Organisation[:])
	copts := &client.Options{KDF: testKDF, Directory: enrol}
	reopen := func(c *client.Client, home, pass string) *client.Client {
		c.Close()
		c, err := client.Dial(bg, home, []byte(pass), copts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	bob = reopen(bob, bobHome, bobPass)
	alice = reopen(alice, home, alicePass)
	dave, err := client.Init(bg, filepath.Join(t.TempDir(), "dave"), []byte(bobPass), srv.URL, "dave", copts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dave.Close() })
	code, err := bob.Invite(bg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dave.Accept(bg, code, "bob"); err != nil {
		t.Fatal(err)
	}
	spec, err := json.Marshal(map[string]any{
		"administrators": []string{bob.Whoami().Identity.String()},
		"teams":          []map[string]string{{"name": "Pharmacy"}},
		"staff": []map[string]any{
			{"identity": bob.Whoami().Identity.String(), "name": "Bob Baker"},
			{"identity": alice.Whoami().Identity.String(), "name": "Alice Adams"},
			{"identity": dave.Whoami().Identity.String(), "name": "Dave Day", "title": "Pharmacist"},
		},
		"roles": []map[string]string{},
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := bob.Sync(bg); err != nil {
			t.Fatal(err)
		}
		if _, err := dave.Sync(bg); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := bob.PublishDirectory(bg, spec); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{alice, dave} {
		if _, err := c.Sync(bg); err != nil {
			t.Fatal(err)
		}
	}
	alice.Close()

	a := newApp(t, home, &Options{Passphrase: []byte(alicePass), Client: copts})
	a.login()
	resp, body := a.do("POST", "/api/directory/people/Dave%20Day/contact", "", nil)
	var got reachResponse
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &got) != nil || got.Contact.Name != "Dave Day" {
		t.Fatalf("reach: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", "/api/directory/people/Dave%20Day/contact", "", nil); resp.StatusCode != http.StatusConflict || !strings.Contains(body, "one of your contacts already") {
		t.Fatalf("again: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", "/api/directory/people/Nobody/contact", "", nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "not a colleague in your organisation") {
		t.Fatalf("unknown: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("GET", "/api/directory?q=dave", "", nil)
	var es []client.DirectoryEntry
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &es) != nil || len(es) != 1 || es[0].Contact != "Dave Day" {
		t.Fatalf("lookup after: %d %s", resp.StatusCode, body)
	}
}
