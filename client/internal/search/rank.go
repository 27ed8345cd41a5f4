package search

import (
	"fmt"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/ext/fts5"
)

// BM25's constants and the column weights, as FTS5's bm25() takes them
// (the table's rank setting, create): the subject counts twice.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

var columnWeights = [...]float64{2.0, 1.0, 1.0, 1.0} // subject, body, attachments, people

// rankFunc is the name of termRank in SQL.
const rankFunc = "postern_term_rank"

// termRank orders the matches of a query of one term (a word, a phrase)
// as FTS5's bm25() does, without what makes bm25() slow on phrases.
//
// bm25() multiplies each row's score by the term's IDF, which needs the
// number of rows holding the term; FTS5 counts them by matching the term
// against the whole table a second time, which for a phrase of frequent
// words means checking positions in every row holding its words: most of
// the time of such a query. With one term the IDF is the same for every
// row, so it does not change the order, and termRank leaves it out: its
// score is bm25()'s divided by that constant, the order the same.
//
// It asks FTS5 only for the current row's instances (no call back into
// SQLite's parser from Go): the row's length in tokens comes as an
// argument from the table of sizes (docs_docsize.sz, a varint per
// column), and the mean length over the table as another, read once per
// search. Arguments: (docs, sz, avgdl). Lower is better, as bm25().
func termRank(fts fts5.Context, ctx sqlite3.Context, arg ...sqlite3.Value) {
	if len(arg) != 2 {
		ctx.ResultError(fmt.Errorf("%s: want 2 arguments, got %d", rankFunc, len(arg)))
		return
	}
	dl := 0.0
	for sz := arg[0].RawBlob(); len(sz) > 0; {
		v, n := varint(sz)
		if n == 0 {
			ctx.ResultError(fmt.Errorf("%w: row size", ErrCorrupt))
			return
		}
		dl += float64(v)
		sz = sz[n:]
	}
	avgdl := arg[1].Float()
	if avgdl <= 0 {
		avgdl = 1
	}
	n, err := fts.InstCount()
	if err != nil {
		ctx.ResultError(err)
		return
	}
	f := 0.0
	for i := range n {
		_, col, _, err := fts.Inst(i)
		if err != nil {
			ctx.ResultError(err)
			return
		}
		if col >= 0 && col < len(columnWeights) {
			f += columnWeights[col]
		} else {
			f++
		}
	}
	ctx.ResultFloat(-(f * (bm25K1 + 1) / (f + bm25K1*(1-bm25B+bm25B*dl/avgdl))))
}

// varint decodes one of SQLite's variable-length integers (big-endian
// groups of 7 bits, a high bit saying more follow, the ninth byte whole),
// as FTS5 writes row sizes and totals; n is 0 if b ends inside it.
func varint(b []byte) (v uint64, n int) {
	for i := 0; i < 8; i++ {
		if i >= len(b) {
			return 0, 0
		}
		v = v<<7 | uint64(b[i]&0x7f)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	if len(b) < 9 {
		return 0, 0
	}
	return v<<8 | uint64(b[8]), 9
}

// meanLength is the mean length of a row in tokens (all columns), from
// FTS5's record of totals (docs_data row 1: a varint of the number of
// rows, then one of the tokens of each column).
func (ix *Index) meanLength() (float64, error) {
	var rec []byte
	if _, err := ix.query(`SELECT block FROM docs_data WHERE id = 1`, nil, func(s *sqlite3.Stmt) {
		rec = append(rec[:0], s.ColumnRawBlob(0)...)
	}); err != nil {
		return 0, err
	}
	rows, n := varint(rec)
	if n == 0 || rows == 0 {
		return 1, nil // nothing indexed (or no record yet): any mean will do
	}
	rec = rec[n:]
	total := 0.0
	for len(rec) > 0 {
		v, n := varint(rec)
		if n == 0 {
			return 0, fmt.Errorf("%w: record of totals", ErrCorrupt)
		}
		total += float64(v)
		rec = rec[n:]
	}
	return max(total/float64(rows), 1), nil
}
