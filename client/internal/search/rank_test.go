package search

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// A query of one term (word, phrase, from:NAME) is ordered by termRank,
// which must give bm25()'s order: the answers are the best by bm25()
// (the subject weighted twice), in its order, on texts of varied lengths
// where both the number of hits and the length count.
func TestTermRankIsBM25Order(t *testing.T) {
	ix, _ := openTest(t, filepath.Join(t.TempDir(), FileName), testKey)
	r := rand.New(rand.NewPCG(3, 4))
	vocab := make([]string, 500)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("w%dx", i)
	}
	z := rand.NewZipf(r, 1.1, 1, uint64(len(vocab)-1))
	words := func(k int) string {
		s := make([]string, k)
		for i := range s {
			s[i] = vocab[z.Uint64()]
		}
		return strings.Join(s, " ")
	}
	people := []string{"Ann Lee", "Bob Smith", "Carla Diaz", "Dev Patel"}
	var docs []Doc
	for i := range 3000 {
		docs = append(docs, Doc{Seq: uint64(i + 1), ID: fmt.Sprintf("%016x", i+1), Subject: words(2 + r.IntN(6)),
			Text: words(5 + r.IntN(150)), People: []string{people[r.IntN(len(people))]},
			Folder: []string{"inbox", "sent"}[r.IntN(2)], Time: t0.Add(time.Duration(i) * time.Minute)})
	}
	put(t, ix, docs...)
	for _, tc := range []struct {
		q string
		f Filter
	}{
		{q: "w0x"}, {q: "w3x"}, {q: "w40x"}, {q: "w200x"},
		{q: `"w0x w1x"`}, {q: `"w1x w0x"`}, {q: `"w2x w0x w1x"`}, {q: `"w5x w3x"`},
		{q: `from:"bob smith"`},
		{q: `"w0x w1x"`, f: Filter{Folder: "sent"}},
		{q: "w7x", f: Filter{Since: t0.Add(500 * time.Minute), Until: t0.Add(1500 * time.Minute)}},
	} {
		pq, err := ParseQuery(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		hits, err := ix.Search(context.Background(), pq, tc.f, 20)
		if err != nil {
			t.Fatalf("%s: %v", tc.q, err)
		}
		scores := bm25Scores(t, ix, pq, tc.f)
		if len(hits) != min(20, len(scores)) {
			t.Fatalf("%s: %d hits of %d matches", tc.q, len(hits), len(scores))
		}
		if len(scores) < 25 {
			t.Fatalf("%s: %d matches; the test wants more than a page", tc.q, len(scores))
		}
		got := map[uint64]bool{}
		prev := math.Inf(-1)
		for _, h := range hits {
			s, ok := scores[h.Seq]
			if !ok {
				t.Fatalf("%s: hit %d does not match", tc.q, h.Seq)
			}
			if s < prev-1e-9 {
				t.Errorf("%s: hit %d (bm25 %v) after one of %v: not in bm25's order", tc.q, h.Seq, s, prev)
			}
			prev = max(prev, s)
			got[h.Seq] = true
		}
		for seq, s := range scores {
			if !got[seq] && s < prev-1e-9 {
				t.Errorf("%s: message %d (bm25 %v) left out for one of %v", tc.q, seq, s, prev)
			}
		}
	}
}

// bm25Scores is bm25() of every message matching q and f.
func bm25Scores(t *testing.T, ix *Index, q Query, f Filter) map[uint64]float64 {
	t.Helper()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	sql := `SELECT docs.rowid, bm25(docs, 2.0, 1.0, 1.0, 1.0) FROM docs CROSS JOIN msgs ON msgs.seq = docs.rowid WHERE docs MATCH ?1`
	args := []any{q.match()}
	if f.Folder != "" {
		sql += ` AND msgs.folder = ?2`
		args = append(args, f.Folder)
	}
	if !f.Since.IsZero() {
		sql += fmt.Sprintf(` AND msgs.time >= ?%d AND msgs.time < ?%d`, len(args)+1, len(args)+2)
		args = append(args, f.Since.UnixMilli(), f.Until.UnixMilli())
	}
	out := map[uint64]float64{}
	if _, err := ix.query(sql, args, func(s *sqlite3.Stmt) { out[uint64(s.ColumnInt64(0))] = s.ColumnFloat(1) }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestVarint(t *testing.T) {
	for _, tc := range []struct {
		b []byte
		v uint64
		n int
	}{
		{[]byte{0}, 0, 1},
		{[]byte{0x7f}, 127, 1},
		{[]byte{0x81, 0x00}, 128, 2},
		{[]byte{0x82, 0x80, 0x01, 0xff}, 1<<15 | 1, 3},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, math.MaxUint64, 9},
		{[]byte{0x81}, 0, 0},
		{nil, 0, 0},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 0, 0},
	} {
		if v, n := varint(tc.b); v != tc.v || n != tc.n {
			t.Errorf("varint(%x) = %d, %d; want %d, %d", tc.b, v, n, tc.v, tc.n)
		}
	}
}
