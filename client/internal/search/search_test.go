package search

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var (
	testKey  = bytes.Repeat([]byte{7}, 32)
	otherKey = bytes.Repeat([]byte{8}, 32)
	t0       = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

func openTest(t *testing.T, path string, key []byte) (*Index, bool) {
	t.Helper()
	ix, fresh, err := Open(path, key)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix, fresh
}

var testDocs = []Doc{
	{Seq: 1, ID: "0000000000000001", Subject: "Discharge summary", Text: "The patient was discharged home on aspirin.", People: []string{"Ann Lee"}, Folder: "inbox", Time: t0},
	{Seq: 2, ID: "0000000000000002", Subject: "Lab results", Text: "Potassium is low; repeat the potassium test.", People: []string{"Bob Smith"}, Folder: "inbox", Time: t0.Add(24 * time.Hour)},
	{Seq: 3, ID: "0000000000000003", Subject: "Re: lab", Text: "Thanks, the patient home visit is booked.", People: []string{"Ann Lee"}, Folder: "sent", Time: t0.Add(48 * time.Hour)},
	{Seq: 4, ID: "0000000000000004", Subject: "Scan", Text: "See the attached report.", Attachments: []string{"echo_report_2026-03-04.pdf"}, People: []string{"Carla Diaz"}, Folder: "archive", Time: t0.Add(72 * time.Hour)},
	{Seq: 5, ID: "0000000000000005", Subject: "Potassium potassium", Text: "Potassium again: potassium.", People: []string{"Bob Smith"}, Folder: "inbox", Time: t0.Add(96 * time.Hour)},
}

func put(t *testing.T, ix *Index, docs ...Doc) {
	t.Helper()
	err := ix.Update(context.Background(), func(b *Batch) error {
		for i := range docs {
			if err := b.Put(&docs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func ids(hits []Hit) []string {
	var out []string
	for _, h := range hits {
		out = append(out, h.ID[len(h.ID)-1:])
	}
	return out
}

func search(t *testing.T, ix *Index, q string, f Filter) []string {
	t.Helper()
	pq, err := ParseQuery(q)
	if err != nil {
		t.Fatalf("ParseQuery(%q): %v", q, err)
	}
	hits, err := ix.Search(context.Background(), pq, f, 0)
	if err != nil {
		t.Fatalf("Search(%q): %v", q, err)
	}
	return ids(hits)
}

func TestSearch(t *testing.T) {
	ix, fresh := openTest(t, filepath.Join(t.TempDir(), FileName), testKey)
	if !fresh {
		t.Fatal("a new index is not fresh")
	}
	put(t, ix, testDocs...)
	sorted := func(s []string) []string { slices.Sort(s); return s }
	tests := []struct {
		name, q string
		f       Filter
		want    []string
		ordered bool
	}{
		{"word", "aspirin", Filter{}, []string{"1"}, false},
		{"word in capitals", "ASPIRIN", Filter{}, []string{"1"}, false},
		{"two words", "patient home", Filter{}, []string{"1", "3"}, false},
		{"phrase", `"patient home"`, Filter{}, []string{"3"}, false},
		{"phrase reversed", `"home patient"`, Filter{}, nil, false},
		{"subject word", "discharge", Filter{}, []string{"1"}, false},
		{"attachment name", "echo", Filter{}, []string{"4"}, false},
		{"attachment name as typed", "echo_report", Filter{}, []string{"4"}, false},
		{"sender", "from:lee", Filter{}, []string{"1", "3"}, false},
		{"sender full name", `from:"Ann Lee"`, Filter{}, []string{"1", "3"}, false},
		{"sender not in text", "from:patient", Filter{}, nil, false},
		{"sender and word", "from:lee aspirin", Filter{}, []string{"1"}, false},
		{"folder", "patient", Filter{Folder: "sent"}, []string{"3"}, false},
		{"date range", "patient", Filter{Since: t0.Add(time.Hour), Until: t0.Add(72 * time.Hour)}, []string{"3"}, false},
		{"date range end excluded", "patient", Filter{Until: t0.Add(48 * time.Hour)}, []string{"1"}, false},
		{"ranked", "potassium", Filter{}, []string{"5", "2"}, true},
		{"syntax typed is words", "potassium OR aspirin", Filter{}, nil, false},
		{"column filter typed is a word", "subject:lab", Filter{}, nil, false},
		{"star is not a prefix", "potass*", Filter{}, nil, false},
		{"NEAR typed", `NEAR(patient home)`, Filter{}, nil, false},
		{"quote inside", `pat"ient`, Filter{}, nil, false},
		{"diacritics", "potássium", Filter{}, []string{"2", "5"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := search(t, ix, tt.q, tt.f)
			if !tt.ordered {
				got, tt.want = sorted(got), sorted(tt.want)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("%q %+v: got %v, want %v", tt.q, tt.f, got, tt.want)
			}
		})
	}
}

func TestUpdateDeleteMove(t *testing.T) {
	ix, _ := openTest(t, filepath.Join(t.TempDir(), FileName), testKey)
	put(t, ix, testDocs...)
	err := ix.Update(context.Background(), func(b *Batch) error {
		if err := b.Delete("0000000000000001"); err != nil {
			return err
		}
		if err := b.SetFolder("0000000000000003", "archive"); err != nil {
			return err
		}
		return b.SetMarker(5, "0000000000000005")
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := search(t, ix, "aspirin", Filter{}); got != nil {
		t.Errorf("deleted message found: %v", got)
	}
	if got := search(t, ix, "patient", Filter{Folder: "sent"}); got != nil {
		t.Errorf("moved message found in its old folder: %v", got)
	}
	if got := search(t, ix, "patient", Filter{Folder: "archive"}); !slices.Equal(got, []string{"3"}) {
		t.Errorf("moved message in its new folder: %v", got)
	}
	// Put again under the same sequence replaces, not duplicates.
	d := testDocs[1]
	d.Text = "sodium"
	put(t, ix, d)
	if got := search(t, ix, "potassium", Filter{}); !slices.Equal(got, []string{"5"}) {
		t.Errorf("replaced message still found by its old words: %v", got)
	}
	if got := search(t, ix, "sodium", Filter{}); !slices.Equal(got, []string{"2"}) {
		t.Errorf("replaced message: %v", got)
	}
	var seq uint64
	var id string
	ix.Update(context.Background(), func(b *Batch) error { seq, id, err = b.Marker(); return err })
	if seq != 5 || id != "0000000000000005" {
		t.Errorf("marker %d %q", seq, id)
	}
	// A failed Update changes nothing.
	boom := errors.New("boom")
	err = ix.Update(context.Background(), func(b *Batch) error {
		if err := b.Clear(); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update: %v", err)
	}
	if got := search(t, ix, "sodium", Filter{}); len(got) != 1 {
		t.Errorf("rolled-back clear: %v", got)
	}
}

// TestReopen: an index closed and opened again with the same key keeps
// its documents and marker; with another key, or corrupt, it is made anew.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	ix, _, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ix, testDocs...)
	ix.Close()
	if _, err := ix.Search(context.Background(), Query{Terms: []Term{{Words: []string{"x"}}}}, Filter{}, 0); !errors.Is(err, ErrClosed) {
		t.Errorf("Search after Close: %v", err)
	}

	ix, fresh := openTest(t, path, testKey)
	if fresh || len(search(t, ix, "aspirin", Filter{})) != 1 {
		t.Fatalf("reopened index lost its documents (fresh %v)", fresh)
	}
	ix.Close()

	ix, fresh = openTest(t, path, otherKey)
	if !fresh || search(t, ix, "aspirin", Filter{}) != nil {
		t.Fatalf("index under another key: fresh %v", fresh)
	}
	put(t, ix, testDocs[0])
	ix.Close()

	for _, damage := range []struct {
		name string
		fn   func([]byte) []byte
	}{
		{"garbage", func(b []byte) []byte { return bytes.Repeat([]byte{0x5a}, len(b)) }},
		{"first block flipped", func(b []byte) []byte { b[100] ^= 1; return b }},
		{"cut", func(b []byte) []byte { return b[:len(b)/3] }},
		{"plain SQLite text", func(b []byte) []byte { return []byte("SQLite format 3\x00not really") }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, damage.fn(b), 0o600); err != nil {
				t.Fatal(err)
			}
			ix, _, err := Open(path, otherKey)
			if err != nil {
				t.Fatalf("Open of a damaged index: %v", err)
			}
			defer ix.Close()
			// Made anew, or (a cut that keeps the schema) still usable:
			// either way searching works and gives no error.
			pq, _ := ParseQuery("aspirin")
			if _, err := ix.Search(context.Background(), pq, Filter{}, 0); err != nil && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Search: %v", err)
			}
			put(t, ix, testDocs[0])
		})
	}
}

func TestFileModes(t *testing.T) {
	// A home whose path holds what a URI reads as syntax.
	dir := filepath.Join(t.TempDir(), "a?b#c%41d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	ix, _ := openTest(t, path, testKey)
	put(t, ix, testDocs...)
	for _, p := range []string{path, path + "-journal"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := st.Mode().Perm(); m&0o077 != 0 && os.PathSeparator == '/' {
			t.Errorf("%s mode %v", filepath.Base(p), m)
		}
	}
	if files, _ := os.ReadDir(dir); len(files) != 2 {
		t.Errorf("files beside the index: %v", files)
	}
}

// TestNoPlaintext: nothing indexed is in the files in clear.
func TestNoPlaintext(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FileName)
	ix, _, err := Open(path, testKey)
	if err != nil {
		t.Fatal(err)
	}
	d := testDocs[0]
	d.Text = "xylocanarium " + d.Text
	put(t, ix, d)
	ix.Close()
	files, _ := os.ReadDir(dir)
	if len(files) == 0 {
		t.Fatal("no files")
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{"xylocanarium", "aspirin", "Discharge", "SQLite format"} {
			if bytes.Contains(b, []byte(w)) {
				t.Errorf("%s holds %q in clear", f.Name(), w)
			}
		}
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{"blood pressure", "blood pressure", false},
		{`"blood pressure" from:lee`, `"blood pressure" from:lee`, false},
		{`FROM:"Ann Lee" x`, `from:"Ann Lee" x`, false},
		{`echo_report.pdf`, `"echo report pdf"`, false},
		{`"unclosed phrase`, `"unclosed phrase"`, false},
		{`a"b"c`, `a "b" c`, false},
		{"", "", true},
		{`   "" -- ** from:`, "", true},
		{strings.Repeat("a ", MaxQueryTerms+1), "", true},
		{strings.Repeat("x", MaxQuerySize+1), "", true},
		{`"` + strings.Repeat("w ", MaxQueryWords+1) + `"`, "", true},
		{"\xff\xfe", "", true},
	}
	for _, tt := range tests {
		q, err := ParseQuery(tt.in)
		if tt.err {
			if !errors.Is(err, ErrQuery) {
				t.Errorf("ParseQuery(%q): %v, want ErrQuery", tt.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseQuery(%q): %v", tt.in, err)
			continue
		}
		if got := q.String(); got != tt.want {
			t.Errorf("ParseQuery(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// FuzzQuery: whatever is typed, a query either is refused with ErrQuery
// or runs without an SQLite error.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{"word", `"a phrase"`, "from:lee x", `NEAR(a b)`, `a OR b`, `subject:x`, `"`, `x*`, `^x`, `a AND NOT b`, "\x00", `from:"`, `''); DROP TABLE msgs; --`, "ﬁ ǅ İ"} {
		f.Add(s)
	}
	path := filepath.Join(f.TempDir(), FileName)
	ix, _, err := Open(path, testKey)
	if err != nil {
		f.Fatal(err)
	}
	defer ix.Close()
	put(&testing.T{}, ix, testDocs...)
	f.Fuzz(func(t *testing.T, s string) {
		q, err := ParseQuery(s)
		if err != nil {
			if !errors.Is(err, ErrQuery) {
				t.Fatalf("ParseQuery(%q): %v", s, err)
			}
			return
		}
		if _, err := ix.Search(context.Background(), q, Filter{Folder: s}, 5); err != nil {
			t.Fatalf("Search(%q) (MATCH %s): %v", s, q.match(), err)
		}
	})
}
