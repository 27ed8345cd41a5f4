package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testN is small enough for bleve-sealed (the slowest to index) to take
// seconds, large enough for every planted message to sit among ordinary
// ones in several batches.
const testN = 1500

func plantedSet(c *Corpus, names ...string) []int64 {
	var ids []int64
	for _, n := range names {
		ids = append(ids, c.Planted[n])
	}
	slices.Sort(ids)
	return ids
}

func sorted(ids []int64) []int64 {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return ids
}

// buildIndex indexes the corpus with k, closes and reopens it the way the
// benchmark does (a kind that persists nothing stays open).
func buildIndex(t *testing.T, k Kind, c *Corpus, dir string, key []byte) Engine {
	t.Helper()
	ctx := context.Background()
	e, err := k.Create(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := indexAll(ctx, k, e, c.Msgs, 200); err != nil {
		t.Fatal(err)
	}
	if k.Open == nil {
		return e
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if e, err = k.Open(dir, key); err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEnginesFindPlanted(t *testing.T) {
	c := Generate(testN, 5)
	lim := testN
	cases := []struct {
		name string
		q    Query
		want []int64
	}{
		{"word", Query{Words: []string{wordUnique}}, plantedSet(c, "word")},
		{"word in upper case", Query{Words: []string{strings.ToUpper(wordUnique)}}, plantedSet(c, "word")},
		{"subject word", Query{Words: []string{subjectWord}}, plantedSet(c, "subject")},
		{"attachment name", Query{Words: []string{attachWord}}, plantedSet(c, "attachment")},
		{"one word of a phrase", Query{Words: []string{phraseB}}, plantedSet(c, "phrase", "phraseReversed")},
		{"phrase", Query{Phrase: []string{phraseA, phraseB, phraseC}}, plantedSet(c, "phrase")},
		{"reversed phrase", Query{Phrase: []string{phraseC, phraseB, phraseA}}, plantedSet(c, "phraseReversed")},
		{"two words", Query{Words: []string{phraseA, phraseC}}, plantedSet(c, "phrase", "phraseReversed")},
		{"sender", Query{Sender: []string{"vargheseworth"}}, plantedSet(c, "sender", "combined", "combinedWrongFolder", "combinedWrongDate")},
		{"sender full name", Query{Sender: []string{"ottoline", "vargheseworth"}}, plantedSet(c, "sender", "combined", "combinedWrongFolder", "combinedWrongDate")},
		{"sender name as a word", Query{Words: []string{"ottoline"}}, plantedSet(c, "sender", "combined", "combinedWrongFolder", "combinedWrongDate")},
		{"without folder", Query{Words: []string{folderWord}}, plantedSet(c, "folderIn", "folderOut")},
		{"folder", Query{Words: []string{folderWord}, Folder: "referrals"}, plantedSet(c, "folderIn")},
		{"other folder", Query{Words: []string{folderWord}, Folder: "inbox"}, plantedSet(c, "folderOut")},
		{"without dates", Query{Words: []string{dateWord}}, plantedSet(c, "dateIn", "dateOut")},
		{"date range", Query{Words: []string{dateWord}, From: unixDay(2024, 1, 1), To: unixDay(2024, 4, 1)}, plantedSet(c, "dateIn")},
		{"date from", Query{Words: []string{dateWord}, From: unixDay(2025, 1, 1)}, plantedSet(c, "dateOut")},
		{"date range excludes its end", Query{Words: []string{dateWord}, From: unixDay(2024, 1, 1), To: day(2024, 2, 10)}, nil},
		{"combined", Query{Phrase: []string{combinedA, combinedB}, Sender: []string{"vargheseworth"}, Folder: "archive",
			From: unixDay(2024, 10, 1), To: unixDay(2025, 1, 1)}, plantedSet(c, "combined")},
		{"combined without folder", Query{Phrase: []string{combinedA, combinedB}, Sender: []string{"vargheseworth"},
			From: unixDay(2024, 10, 1), To: unixDay(2025, 1, 1)}, plantedSet(c, "combined", "combinedWrongFolder")},
		{"combined, wrong sender", Query{Phrase: []string{combinedA, combinedB}, Sender: []string{"patel"}}, nil},
		{"canary", Query{Words: []string{Canary}}, sorted(c.Canary)},
		{"query syntax is not read", Query{Words: []string{`AND`, `"`, `people:x`, `NEAR(`, `*`}}, nil},
	}
	for _, k := range variants(t) {
		t.Run(k.Name, func(t *testing.T) {
			dir := t.TempDir()
			e := buildIndex(t, k, c, dir, newKey())
			for _, tc := range cases {
				q := tc.q
				q.Limit = lim
				got, err := e.Search(context.Background(), q)
				if err != nil {
					t.Errorf("%s: %v", tc.name, err)
					continue
				}
				if !slices.Equal(sorted(got), tc.want) {
					t.Errorf("%s: got %v, want %v", tc.name, sorted(got), tc.want)
				}
			}
			if _, err := e.Search(context.Background(), Query{Folder: "inbox"}); !errors.Is(err, ErrNoText) {
				t.Errorf("filters alone: %v, want ErrNoText", err)
			}
			// Ranked, and the limit holds: a frequent word fills the page.
			frequent := c.vocab[30]
			got, err := e.Search(context.Background(), Query{Words: []string{frequent}, Limit: 20})
			if err != nil || len(got) != 20 {
				t.Errorf("frequent word %q: %d results, %v; want 20", frequent, len(got), err)
			}
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			found, err := scanFor(dir, Canary)
			if err != nil {
				t.Fatal(err)
			}
			if len(found) > 0 {
				t.Errorf("canary in %v", found)
			}
			size, files, err := dirSize(dir)
			if err != nil {
				t.Fatal(err)
			}
			if k.Open != nil && (files == 0 || size < 64<<10) {
				t.Errorf("%d files, %d bytes: the index was not written", files, size)
			}
			if k.Open == nil && files != 0 {
				t.Errorf("%d files written by an index that persists nothing", files)
			}
		})
	}
}

// The ranking puts a message whose subject and text repeat the word
// above one that has it once among many words.
func TestEnginesRank(t *testing.T) {
	c := Generate(testN, 6)
	strong, weak := c.Msgs[100].ID, c.Msgs[200].ID
	c.Msgs[100].Subject = wordUnique + " " + wordUnique
	c.Msgs[100].Body = wordUnique + " review " + wordUnique
	c.Msgs[200].Body += " " + wordUnique
	for _, k := range variants(t) {
		if strings.HasSuffix(k.Name, "/newest") {
			continue // not ranked
		}
		t.Run(k.Name, func(t *testing.T) {
			e := buildIndex(t, k, c, t.TempDir(), newKey())
			defer e.Close()
			got, err := e.Search(context.Background(), Query{Words: []string{wordUnique}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, []int64{strong, weak}) {
				t.Errorf("got %v, want %v (strong first)", got, []int64{strong, weak})
			}
		})
	}
}

// variants is every kind, and the FTS5 kind once per result order; the
// order is set while the variant's Create or Open runs and for its
// queries (the tests do not run in parallel).
func variants(t *testing.T) []Kind {
	var out []Kind
	for _, k := range kinds {
		if k.Name != fts5Kind.Name {
			out = append(out, k)
			continue
		}
		for _, order := range []string{"rank", "recent-rank", "newest", "wordrank"} {
			v := k
			v.Name = k.Name + "/" + order
			create := k.Create
			v.Create = func(dir string, key []byte) (Engine, error) {
				prev := ftsOrder
				ftsOrder = order
				t.Cleanup(func() { ftsOrder = prev })
				return create(dir, key)
			}
			out = append(out, v)
		}
	}
	return out
}

// recent-rank ranks only the newest matches: with a window of one, the
// newer of two matching messages is the only result.
func TestFTSRecentRankWindow(t *testing.T) {
	c := Generate(testN, 5)
	prevOrder, prevRecent := ftsOrder, ftsRecent
	ftsOrder, ftsRecent = "recent-rank", 1
	defer func() { ftsOrder, ftsRecent = prevOrder, prevRecent }()
	e := buildIndex(t, fts5Kind, c, t.TempDir(), newKey())
	defer e.Close()
	got, err := e.Search(context.Background(), Query{Words: []string{phraseB}})
	if err != nil {
		t.Fatal(err)
	}
	newer := max(c.Planted["phrase"], c.Planted["phraseReversed"])
	if !slices.Equal(got, []int64{newer}) {
		t.Errorf("got %v, want [%d]", got, newer)
	}
}

// An index opened with another key is refused with an error, not read
// (the client's is replaced by an empty one).
func TestWrongKeyRefused(t *testing.T) {
	c := Generate(400, 7)
	for _, k := range kinds {
		if k.Open == nil {
			continue
		}
		t.Run(k.Name, func(t *testing.T) {
			dir := t.TempDir()
			e := buildIndex(t, k, c, dir, newKey())
			if err := e.Close(); err != nil {
				t.Fatal(err)
			}
			e2, err := k.Open(dir, newKey())
			if k.Name == clientKind.Name {
				// The client's index is derived data: one that does not
				// decrypt is replaced by an empty one (and rebuilt from
				// the store), never read.
				if err != nil {
					t.Fatal(err)
				}
				defer e2.Close()
				if got, err := e2.Search(context.Background(), Query{Words: []string{Canary}}); err != nil || len(got) != 0 {
					t.Fatalf("with another key: %v, %v; want an empty index", got, err)
				}
				return
			}
			if err == nil {
				e2.Close()
				t.Fatal("opened with another key")
			}
			if !errors.Is(err, ErrFTSKey) && !errors.Is(err, ErrSealed) {
				t.Errorf("error %v, want ErrFTSKey or ErrSealed", err)
			}
		})
	}
}

func sealBytes(t *testing.T, path string, key, data []byte) {
	t.Helper()
	w, err := createSealed(path, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func unseal(path string, key []byte) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := openSealed(f, key)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func TestSealedFile(t *testing.T) {
	key := newKey()
	data := bytes.Repeat([]byte("0123456789abcdef"), (2*sealChunk+1000)/16) // three chunks
	for _, size := range []int{0, 10, sealChunk, len(data)} {
		path := filepath.Join(t.TempDir(), "f")
		sealBytes(t, path, key, data[:size])
		got, err := unseal(path, key)
		if err != nil || !bytes.Equal(got, data[:size]) {
			t.Errorf("size %d: round trip: %d bytes, %v", size, len(got), err)
		}
	}
	path := filepath.Join(t.TempDir(), "f")
	sealBytes(t, path, key, data)
	sealed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	chunk := 4 + 24 + sealChunk + 16
	other := filepath.Join(t.TempDir(), "g")
	sealBytes(t, other, key, data)
	otherSealed, _ := os.ReadFile(other)
	bad := map[string][]byte{
		"bit flipped in a chunk": func() []byte {
			b := bytes.Clone(sealed)
			b[sealHead+chunk+100] ^= 1
			return b
		}(),
		"last chunk dropped":   sealed[:sealHead+2*chunk],
		"cut inside a chunk":   sealed[:sealHead+chunk+50],
		"bytes after the last": append(bytes.Clone(sealed), 0),
		"chunks swapped": func() []byte {
			b := bytes.Clone(sealed[:sealHead])
			b = append(b, sealed[sealHead+chunk:sealHead+2*chunk]...)
			b = append(b, sealed[sealHead:sealHead+chunk]...)
			return append(b, sealed[sealHead+2*chunk:]...)
		}(),
		"chunk from another file": func() []byte {
			b := bytes.Clone(sealed)
			copy(b[sealHead:sealHead+chunk], otherSealed[sealHead:sealHead+chunk])
			return b
		}(),
		"magic changed": func() []byte {
			b := bytes.Clone(sealed)
			b[0] ^= 1
			return b
		}(),
	}
	for name, b := range bad {
		p := filepath.Join(t.TempDir(), "bad")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := unseal(p, key); !errors.Is(err, ErrSealed) {
			t.Errorf("%s: %v, want ErrSealed", name, err)
		}
	}
	if _, err := unseal(path, newKey()); !errors.Is(err, ErrSealed) {
		t.Errorf("other key: %v, want ErrSealed", err)
	}
	if bytes.Contains(sealed, []byte("0123456789abcdef")) {
		t.Error("plaintext in the sealed file")
	}
}

// The canary scan finds the word where it is written in the clear, so
// that its silence over the indexes means something.
func TestScanFindsCanary(t *testing.T) {
	dir := t.TempDir()
	utf16 := func(s string) []byte {
		var b []byte
		for i := 0; i < len(s); i++ {
			b = append(b, s[i], 0)
		}
		return b
	}
	files := map[string][]byte{
		"plain":  []byte("abc " + Canary + " def"),
		"upper":  []byte(strings.ToUpper(Canary)),
		"utf16":  append([]byte{0xff, 0xfe}, utf16(Canary)...),
		"absent": []byte(Canary[:len(Canary)-1]),
	}
	if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, "sub", name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	found, err := scanFor(dir, Canary)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range found {
		names = append(names, filepath.Base(f))
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"plain", "upper", "utf16"}) {
		t.Errorf("found %v", names)
	}
}

func TestCorpusDeterministic(t *testing.T) {
	a, b := Generate(2000, 9), Generate(2000, 9)
	for i := range a.Msgs {
		if !equalMsg(a.Msgs[i], b.Msgs[i]) {
			t.Fatalf("message %d differs between two generations", i)
		}
	}
	words := 0
	for _, m := range a.Msgs {
		n := len(strings.Fields(m.Body))
		if n < 20 || n > 203 {
			t.Errorf("message %d: %d words", m.ID, n)
		}
		words += n
	}
	if avg := words / len(a.Msgs); avg < 90 || avg > 130 {
		t.Errorf("mean text of %d words, want about 110", avg)
	}
	qa, qb := a.Queries(10, 1), b.Queries(10, 1)
	for s := range qa {
		for i := range qa[s].Queries {
			if !slices.Equal(qa[s].Queries[i].Words, qb[s].Queries[i].Words) {
				t.Fatalf("%s query %d differs", qa[s].Name, i)
			}
		}
	}
}

func equalMsg(a, b Message) bool {
	return a.ID == b.ID && a.Subject == b.Subject && a.Body == b.Body && a.Sender == b.Sender &&
		a.Folder == b.Folder && a.Date == b.Date && slices.Equal(a.Attachments, b.Attachments) &&
		slices.Equal(a.Recipients, b.Recipients)
}

// For single words, whose document frequency the vocabulary gives
// exactly, wordrank scores every row as FTS5's bm25() does; two-word
// queries too (each word its own phrase).
func TestWordRankIsBM25(t *testing.T) {
	c := Generate(testN, 8)
	en := buildIndex(t, fts5Kind, c, t.TempDir(), newKey())
	defer en.Close()
	e := en.(*ftsEngine)
	for _, words := range [][]string{{c.vocab[25]}, {c.vocab[300]}, {c.vocab[40], c.vocab[90]}, {wordUnique}} {
		q := Query{Words: words}
		var args []string
		for _, p := range ftsPhrases(q) {
			df, err := e.docFreq(p)
			if err != nil {
				t.Fatal(err)
			}
			args = append(args, strconv.FormatInt(df, 10))
		}
		st, _, err := e.conn.Prepare(`SELECT bm25(docs), wordrank(docs, ` + strings.Join(args, ", ") + `) FROM docs WHERE docs MATCH ?`)
		if err != nil {
			t.Fatal(err)
		}
		st.BindText(1, ftsMatch(q))
		rows := 0
		for st.Step() {
			rows++
			if a, b := st.ColumnFloat(0), st.ColumnFloat(1); math.Abs(a-b) > 1e-9*math.Max(1, math.Abs(a)) {
				t.Errorf("%v row %d: bm25 %v, wordrank %v", words, rows, a, b)
			}
		}
		if err := st.Err(); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if rows == 0 {
			t.Errorf("%v: no rows", words)
		}
	}
}

// Without bm25() preparing FTS5's statement for row sizes at open, the
// first wordrank query on a reopened index of some thousands of messages
// crashed the translated SQLite (from about 6,000 messages; not at 3,000)
// when FTS5 prepared that statement from inside wordRank.
func TestWordRankAfterOpen(t *testing.T) {
	c := Generate(8000, 10)
	prev := ftsOrder
	ftsOrder = "wordrank"
	defer func() { ftsOrder = prev }()
	e := buildIndex(t, fts5Kind, c, t.TempDir(), newKey())
	defer e.Close()
	for _, tc := range []struct {
		q    Query
		want []int64
	}{
		{Query{Words: []string{wordUnique}}, plantedSet(c, "word")},
		{Query{Phrase: []string{phraseA, phraseB, phraseC}}, plantedSet(c, "phrase")},
		{Query{Words: []string{folderWord}, Folder: "referrals"}, plantedSet(c, "folderIn")},
	} {
		got, err := e.Search(context.Background(), tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(sorted(got), tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.q, got, tc.want)
		}
	}
}
