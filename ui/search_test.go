package ui

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// GET /api/search: by word, by phrase, with a folder filter and dates;
// a query that cannot be searched, an unknown folder, a bad date and a bad
// limit answer the CLI's sentences with 400 or 404, never the index's
// own errors.
func TestSearchAPI(t *testing.T) {
	home, alice, _, bob := pair(t, relaytest.New(t, nil))
	bg := context.Background()
	ward, err := bob.SendWith(bg, "alice", "The patient in bed 7 needs a potassium check.", &client.SendOptions{Subject: "Bed 7"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := bob.SendWith(bg, "alice", "Check the rota for bed duty: 7 nurses.", &client.SendOptions{Subject: "Rota"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(bg); err != nil {
		t.Fatal(err)
	}
	f, err := alice.CreateFolder(bg, "Ward 4")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.MoveMessage(bg, ward.ID, f.ID); err != nil {
		t.Fatal(err)
	}
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	search := func(query string) (*http.Response, string) {
		t.Helper()
		return a.do("GET", "/api/search?"+query, "", nil)
	}
	ids := func(what, query string) string {
		t.Helper()
		resp, body := search(query)
		var out []string
		for _, m := range decode[[]messageJSON](t, what, resp, body, http.StatusOK) {
			out = append(out, m.ID)
		}
		return strings.Join(out, ",")
	}
	both := func(got string) bool {
		return got == ward.ID+","+other.ID || got == other.ID+","+ward.ID
	}
	if got := ids("words", "q=bed+7"); !both(got) {
		t.Fatalf("bed 7 found %q", got)
	}
	if got := ids("phrase", "q="+url.QueryEscape(`"bed 7"`)); got != ward.ID {
		t.Fatalf(`"bed 7" found %q, want only %s`, got, ward.ID)
	}
	if got := ids("folder", "q=bed&folder="+f.ID); got != ward.ID {
		t.Fatalf("bed in Ward 4 found %q", got)
	}
	if got := ids("inbox", "q=bed&folder=inbox"); got != other.ID {
		t.Fatalf("bed in the Inbox found %q", got)
	}
	if got := ids("sender", "q=from:bob+potassium"); got != ward.ID {
		t.Fatalf("from:bob potassium found %q", got)
	}
	today := time.Now().Format(time.DateOnly)
	if got := ids("dates", "q=bed&since="+today+"&until="+today); !both(got) {
		t.Fatalf("bed today found %q", got)
	}
	if got := ids("until yesterday", "q=bed&until="+time.Now().AddDate(0, 0, -1).Format(time.DateOnly)); got != "" {
		t.Fatalf("bed before today found %q", got)
	}
	if got := ids("limit", "q=bed&limit=1"); got != ward.ID && got != other.ID {
		t.Fatalf("limit 1 found %q", got)
	}

	for _, tc := range []struct{ query, want string }{
		{"q=" + url.QueryEscape("!!! ..."), "cannot search for that: no words to search for"},
		{"q=", "cannot search for that: no words to search for"},
		{"q=" + url.QueryEscape(strings.Repeat("a ", 20)), "cannot search for that: more than 16 terms"},
		{"q=bed&since=yesterday", `since: "yesterday" is not a date (YYYY-MM-DD) or an RFC 3339 time`},
		{"q=bed&since=2026-02-02&until=2026-01-01", "the search's start is not before its end"},
		{"q=bed&limit=0", "limit must be a positive number"},
	} {
		resp, body := search(tc.query)
		if resp.StatusCode != http.StatusBadRequest || errorOf(t, body) != tc.want {
			t.Errorf("%s: %d %s, want 400 %q", tc.query, resp.StatusCode, body, tc.want)
		}
		if strings.Contains(strings.ToLower(body), "sql") || strings.Contains(body, "fts") {
			t.Errorf("%s: the index's error shows: %s", tc.query, body)
		}
	}
	resp, body := search("q=bed&folder=0123456789abcdef0123456789abcdef")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(errorOf(t, body), "folder") {
		t.Fatalf("unknown folder: %d %s", resp.StatusCode, body)
	}
}
