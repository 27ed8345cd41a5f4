package ui

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/postern/postern/client"
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
