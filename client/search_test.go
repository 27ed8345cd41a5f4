package client

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/postern/postern/client/internal/search"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/relay/relaytest"
)

// searchIDs returns the IDs c's search for q with opts finds, in order.
func searchIDs(t *testing.T, c *Client, q string, opts *SearchOptions) []string {
	t.Helper()
	ms, err := c.Search(testCtx(t), q, opts)
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestSearch: by word, phrase, sender, folder and date range; ranked;
// moves and deletions followed; query syntax refused with ErrSearchQuery.
func TestSearch(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	send := func(from *Client, to, subject, text string) Message {
		t.Helper()
		m, err := from.SendWith(ctx, to, text, &SendOptions{Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// The index exists before the messages come: they are indexed as
	// they are stored.
	if got := searchIDs(t, alice, "potassium", nil); got != nil {
		t.Fatalf("empty home found %v", got)
	}
	twice := send(bob, "alice", "Potassium results", "Potassium is low; repeat the potassium test.")
	once := send(bob, "alice", "", "Sodium normal, potassium fine.")
	visit := send(bob, "alice", "Visit", "The patient home visit is booked.")
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	sent := send(alice, "bob", "Re: visit", "Thanks, the patient home address is on file.")

	tests := []struct {
		name, q string
		opts    *SearchOptions
		want    []string
		ordered bool
	}{
		{"ranked", "potassium", nil, []string{twice.ID, once.ID}, true},
		{"word in subject", "results", nil, []string{twice.ID}, false},
		{"two words", "patient home", nil, []string{visit.ID, sent.ID}, false},
		{"phrase", `"home visit"`, nil, []string{visit.ID}, false},
		{"sender", "from:bob", nil, []string{twice.ID, once.ID, visit.ID, sent.ID}, false},
		{"sender and word", "from:bob sodium", nil, []string{once.ID}, false},
		{"folder", "patient", &SearchOptions{Folder: FolderSent}, []string{sent.ID}, false},
		{"folder inbox", "patient", &SearchOptions{Folder: FolderInbox}, []string{visit.ID}, false},
		{"since", "patient", &SearchOptions{Since: sent.Time}, []string{sent.ID}, false},
		{"until (excluded)", "patient", &SearchOptions{Until: sent.Time}, []string{visit.ID}, false},
		{"limit", "patient", &SearchOptions{Limit: 1}, nil, false},
		{"syntax is words", "potassium OR sodium", nil, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := searchIDs(t, alice, tt.q, tt.opts)
			if tt.name == "limit" {
				if len(got) != 1 {
					t.Errorf("Limit 1 gave %d", len(got))
				}
				return
			}
			if (tt.ordered && !slices.Equal(got, tt.want)) || (!tt.ordered && !sameSet(got, tt.want)) {
				t.Errorf("%q: got %v, want %v", tt.q, got, tt.want)
			}
		})
	}
	ms, err := alice.Search(ctx, `"home visit"`, nil)
	if err != nil || len(ms) != 1 || ms[0].Text != visit.Text || ms[0].From != "bob" || ms[0].Folder != FolderInbox {
		t.Fatalf("Search returned %+v, %v", ms, err)
	}

	for _, q := range []string{"", "  --  ", strings.Repeat("a", MaxSearchQuerySize+1), strings.Repeat("w ", MaxSearchTerms+1)} {
		if _, err := alice.Search(ctx, q, nil); !errors.Is(err, ErrSearchQuery) {
			t.Errorf("Search(%.20q): %v, want ErrSearchQuery", q, err)
		}
	}
	if _, err := alice.Search(ctx, "x", &SearchOptions{Folder: "0123456789abcdef0123456789abcdef"}); !errors.Is(err, ErrNoFolder) {
		t.Errorf("unknown folder: %v", err)
	}

	// A move is followed (and a folder of the user's own found by ID).
	lab, err := alice.CreateFolder(ctx, "Lab")
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.MoveMessage(ctx, twice.ID, lab.ID); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, alice, "potassium", &SearchOptions{Folder: lab.ID}); !slices.Equal(got, []string{twice.ID}) {
		t.Errorf("moved message in its folder: %v", got)
	}
	if got := searchIDs(t, alice, "potassium", &SearchOptions{Folder: FolderInbox}); !slices.Equal(got, []string{once.ID}) {
		t.Errorf("inbox after the move: %v", got)
	}
	// Deleting the folder puts it back in the Inbox.
	if err := alice.DeleteFolder(ctx, lab.ID); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, alice, "potassium", &SearchOptions{Folder: FolderInbox}); !sameSet(got, []string{twice.ID, once.ID}) {
		t.Errorf("inbox after deleting the folder: %v", got)
	}

	// A deletion through the client's transactions is followed.
	if err := alice.st.update(func(t *tx) error { return t.DeleteMessage(once.ID) }); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, alice, "sodium", nil); got != nil {
		t.Errorf("deleted message found: %v", got)
	}
}

// TestSearchRepairs: what the store changed without the index (a crash
// between the two commits, another version) is repaired: added messages
// are indexed by the marker, deleted and moved ones dropped when found.
func TestSearchRepairs(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	if _, err := bob.Send(ctx, "alice", "first quillonectomy"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, alice, "quillonectomy", nil); len(got) != 1 {
		t.Fatalf("found %v", got)
	}
	// Straight into the store, past the client's hooks.
	raw := func(fn func(*store.Tx) error) {
		t.Helper()
		if err := alice.st.Store.Update(fn); err != nil {
			t.Fatal(err)
		}
	}
	added := &messageRecord{ID: "00000000000000aa", From: "bob", To: Me, Text: "second quillonectomy", Time: time.Now(), Received: time.Now()}
	raw(func(t *store.Tx) error { _, err := t.AddMessage(added); return err })
	got := searchIDs(t, alice, "quillonectomy", nil)
	if !slices.Contains(got, added.ID) || len(got) != 2 {
		t.Fatalf("a message stored past the index not found: %v", got)
	}
	raw(func(t *store.Tx) error {
		_, err := t.UpdateMessage(added.ID, func(m *messageRecord) { m.Folder = FolderArchive })
		return err
	})
	if got := searchIDs(t, alice, "quillonectomy", &SearchOptions{Folder: FolderInbox}); slices.Contains(got, added.ID) {
		t.Errorf("a message moved past the index found in its old folder: %v", got)
	}
	raw(func(t *store.Tx) error { return t.DeleteMessage(added.ID) })
	if got := searchIDs(t, alice, "quillonectomy", nil); slices.Contains(got, added.ID) {
		t.Errorf("a message deleted past the index found: %v", got)
	}
	// ... and the index itself was repaired.
	var found []search.Hit
	q, _ := search.ParseQuery("second")
	alice.st.idx.mu.Lock()
	found, err := alice.st.idx.ix.Search(ctx, q, search.Filter{}, 10)
	alice.st.idx.mu.Unlock()
	if err != nil || len(found) != 0 {
		t.Errorf("index still holds the deleted message: %v, %v", found, err)
	}

	// An index ahead of the store, or whose marker names another message
	// (an older store.db put back), is rebuilt from the store.
	for _, mk := range []struct {
		seq uint64
		id  string
	}{{1 << 40, "00000000000000ff"}, {1, "00000000000000ff"}} {
		err := alice.st.idx.ix.Update(ctx, func(b *search.Batch) error {
			if err := b.Clear(); err != nil {
				return err
			}
			return b.SetMarker(mk.seq, mk.id)
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := searchIDs(t, alice, "quillonectomy", nil); len(got) != 1 {
			t.Errorf("marker %d %s: found %v", mk.seq, mk.id, got)
		}
	}
}

// TestSearchRebuilt: a home whose index is missing, under another key,
// or corrupt is searched all the same, the index made again from the
// store.
func TestSearchRebuilt(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, aliceHome, _ := pair(t, srv)
	var want []string
	for _, text := range []string{"echocardiogram booked", "echocardiogram normal", "unrelated"} {
		m, err := bob.Send(ctx, "alice", text)
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(text, "echo") {
			want = append(want, m.ID)
		}
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := searchIDs(t, alice, "echocardiogram", nil); !sameSet(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	alice.Close()
	path := filepath.Join(aliceHome, SearchFileName)
	otherKey := make([]byte, 32)
	rand.Read(otherKey)
	for _, damage := range []struct {
		name string
		fn   func() error
	}{
		{"missing", func() error { return search.Remove(path) }},
		{"random bytes", func() error {
			b := make([]byte, 64<<10)
			rand.Read(b)
			return os.WriteFile(path, b, 0o600)
		}},
		{"another key", func() error {
			if err := search.Remove(path); err != nil {
				return err
			}
			ix, _, err := search.Open(path, search.Key(otherKey))
			if err != nil {
				return err
			}
			return ix.Close()
		}},
		{"a block changed", func() error {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for i := 4096; i < len(b); i += 4096 {
				b[i+17] ^= 0xff
			}
			return os.WriteFile(path, b, 0o600)
		}},
	} {
		t.Run(damage.name, func(t *testing.T) {
			if err := damage.fn(); err != nil {
				t.Fatal(err)
			}
			c, err := Open(aliceHome, testPass, testOpts())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := searchIDs(t, c, "echocardiogram", nil); !sameSet(got, want) {
				t.Errorf("after %s: got %v, want %v", damage.name, got, want)
			}
		})
	}
	if _, err := alice.Search(ctx, "echocardiogram", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Search after Close: %v", err)
	}
}

// canaryForms are the byte strings the canary scan looks for: the word in
// lower, upper and capitalised case, as UTF-8 and UTF-16 of both orders.
func canaryForms(word string) [][]byte {
	var out [][]byte
	for _, w := range []string{strings.ToLower(word), strings.ToUpper(word), strings.ToUpper(word[:1]) + word[1:]} {
		out = append(out, []byte(w))
		u := utf16.Encode([]rune(w))
		le, be := make([]byte, 0, 2*len(u)), make([]byte, 0, 2*len(u))
		for _, r := range u {
			le = append(le, byte(r), byte(r>>8))
			be = append(be, byte(r>>8), byte(r))
		}
		out = append(out, le, be)
	}
	return out
}

// scanHome returns the files under dir (recursively) holding a form of
// word, and how many files it read.
func scanHome(t *testing.T, dir, word string) (hits []string, files int) {
	t.Helper()
	forms := canaryForms(word)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		for _, f := range forms {
			if bytes.Contains(b, f) {
				hits = append(hits, p)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits, files
}

// TestSearchCanary: a word in messages' subjects, texts and attachment
// names, found by search, is in no file of either home (store, erasure
// keys, search index and its journal, anything else), once the clients
// are closed; the scan finds it in a plaintext file (it works).
func TestSearchCanary(t *testing.T) {
	t.Parallel()
	const canary = "xylocanarium"
	ctx := testCtx(t)
	srv := relaytest.New(t, nil)
	alice, bob, aliceHome, bobHome := pair(t, srv)
	var want []string
	m, err := bob.SendWith(ctx, "alice", "the "+canary+" result", &SendOptions{Subject: "about " + canary})
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, m.ID)
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Once made, the index follows: the rest is indexed as stored.
	if got := searchIDs(t, alice, canary, nil); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := searchIDs(t, bob, canary, nil); len(got) != 1 {
		t.Fatalf("bob found %v", got)
	}
	file := filepath.Join(t.TempDir(), "scan_"+canary+"_notes.txt")
	if err := os.WriteFile(file, []byte("attached"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err = bob.SendFiles(ctx, "alice", strings.ToUpper(canary)+" again", []string{file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, m.ID)
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	m, err = alice.Send(ctx, "bob", "reply with "+canary)
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, m.ID)
	if got := searchIDs(t, alice, canary, nil); !sameSet(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got := searchIDs(t, alice, "notes", nil); !slices.Contains(got, want[1]) {
		t.Fatalf("attachment name not found: %v", got)
	}
	alice.Close()
	bob.Close()
	for _, home := range []string{aliceHome, bobHome} {
		if _, err := os.Stat(filepath.Join(home, SearchFileName)); err != nil {
			t.Fatalf("no index to scan: %v", err)
		}
		hits, files := scanHome(t, home, canary)
		if len(hits) > 0 {
			t.Errorf("the canary is in %v", hits)
		}
		if files < 4 {
			t.Errorf("%s: %d files scanned", home, files)
		}
	}
	// Control: the scan finds the word in a plaintext file of the home.
	plain := filepath.Join(aliceHome, "sub", "plain.txt")
	os.MkdirAll(filepath.Dir(plain), 0o700)
	if err := os.WriteFile(plain, []byte("a "+strings.ToUpper(canary)+" here"), 0o600); err != nil {
		t.Fatal(err)
	}
	if hits, _ := scanHome(t, aliceHome, canary); !slices.Equal(hits, []string{plain}) {
		t.Errorf("the scan found %v, want the plaintext file", hits)
	}
}

// ParseSearchTime: a date is local midnight, and as an end bound the next
// day's (the end is exclusive, so the whole day counts); an RFC 3339 time
// is taken as it is; anything else is refused.
func TestParseSearchTime(t *testing.T) {
	t.Parallel()
	day := time.Date(2026, 12, 7, 0, 0, 0, 0, time.Local)
	for _, c := range []struct {
		in   string
		end  bool
		want time.Time
	}{
		{"2026-12-07", false, day},
		{"2026-12-07", true, day.AddDate(0, 0, 1)},
		{"2026-12-07T08:15:00Z", true, time.Date(2026, 12, 7, 8, 15, 0, 0, time.UTC)},
	} {
		got, err := ParseSearchTime(c.in, c.end)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseSearchTime(%q, %v) = %v, %v; want %v", c.in, c.end, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "7/12/2026", "2026-13-01", "yesterday"} {
		if _, err := ParseSearchTime(bad, false); err == nil {
			t.Errorf("ParseSearchTime(%q) accepted", bad)
		}
	}
}
