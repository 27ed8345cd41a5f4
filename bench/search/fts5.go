package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/ext/fts5"
	_ "github.com/ncruces/go-sqlite3/vfs/adiantum" // registers the "adiantum" VFS
)

// The FTS5 candidate: SQLite compiled to Go (github.com/ncruces/go-sqlite3,
// no cgo), every file it writes (database, journal, temporary files)
// encrypted by its "adiantum" VFS in 4 KiB blocks under a 32-byte key.
//
// The FTS5 table is contentless (content=”): the index holds the words'
// positions, not the texts, which stay in the store; contentless_delete=1
// keeps deletion possible (expired messages). Folder and date live in an
// ordinary table joined on the rowid, which is the message's ID.
var fts5Kind = Kind{
	Name:    "fts5-adiantum",
	Create:  func(dir string, key []byte) (Engine, error) { return openFTS(dir, key, true) },
	Open:    func(dir string, key []byte) (Engine, error) { return openFTS(dir, key, false) },
	Prepare: func(e Engine) error { return e.(*ftsEngine).conn.Exec(`INSERT INTO docs(docs) VALUES('optimize')`) },
}

const ftsFile = "search.db"

// ftsCacheMiB is SQLite's page cache per connection. Every page read
// from the file is decrypted on the way in, so the cache saves both I/O
// and decryption; its cost is resident memory, at most this much.
var ftsCacheMiB = 8

// ftsOrder is how results are ordered:
//   - "rank": bm25 over every match (FTS5 scores each matching row, so a
//     query matching most messages costs most);
//   - "newest": by message ID, newest first, no ranking (to see what the
//     ranking costs);
//   - "recent-rank": bm25 over the ftsRecent newest matches only: the
//     cost of ranking is bounded, and a query matching more messages than
//     that is ranked among its recent ones.
//   - "wordrank": BM25 over every match by wordRank below, with each
//     phrase's document frequency taken from its rarest word instead of
//     counted by FTS5.
var (
	ftsOrder  = "rank"
	ftsRecent = 2000
)

type ftsEngine struct {
	conn   *sqlite3.Conn
	insDoc *sqlite3.Stmt
	insMet *sqlite3.Stmt
	vocab  *sqlite3.Stmt // document frequency of one term
}

var ErrFTSKey = errors.New("search: fts5: wrong key or not an index")

func openFTS(dir string, key []byte, create bool) (_ *ftsEngine, err error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("search: fts5: key of %d bytes, want 32", len(key))
	}
	flags := sqlite3.OPEN_READWRITE | sqlite3.OPEN_URI
	if create {
		flags |= sqlite3.OPEN_CREATE
	}
	// The key goes in by PRAGMA, not in the URI, where any part of the
	// process could read it back from the file name's parameters.
	uri := "file:" + filepath.ToSlash(filepath.Join(dir, ftsFile)) + "?vfs=adiantum"
	conn, err := sqlite3.OpenFlags(uri, flags)
	if err != nil {
		return nil, fmt.Errorf("search: fts5: open: %w", err)
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	if err := conn.Exec(`PRAGMA hexkey='` + hex.EncodeToString(key) + `'`); err != nil {
		return nil, fmt.Errorf("search: fts5: key: %w", err)
	}
	if !create {
		// Reading the schema is the first read of the file: a wrong key
		// shows here, as a first page that is not a database page.
		if err := conn.Exec(`SELECT count(*) FROM sqlite_schema`); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFTSKey, err)
		}
	}
	if err := fts5.RegisterCustom(conn, func(api *fts5.API) error {
		return api.CreateFunction("wordrank", wordRank)
	}); err != nil {
		return nil, fmt.Errorf("search: fts5: register: %w", err)
	}
	// Temporary files stay in memory: the VFS would encrypt them under a
	// random key, but there is no need to write them at all.
	if err := conn.Exec(fmt.Sprintf(`PRAGMA temp_store=memory; PRAGMA journal_mode=truncate; PRAGMA synchronous=normal; PRAGMA cache_size=%d`, -ftsCacheMiB<<10)); err != nil {
		return nil, fmt.Errorf("search: fts5: pragmas: %w", err)
	}
	if create {
		if err := conn.Exec(`
			CREATE TABLE meta(id INTEGER PRIMARY KEY, folder TEXT NOT NULL, date INTEGER NOT NULL);
			CREATE INDEX meta_folder_date ON meta(folder, date);
			CREATE VIRTUAL TABLE docs USING fts5(subject, body, attachments, people,
				content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');
			CREATE VIRTUAL TABLE docs_vocab USING fts5vocab(docs, 'row');`); err != nil {
			return nil, fmt.Errorf("search: fts5: schema: %w", err)
		}
	}
	e := &ftsEngine{conn: conn}
	if e.insDoc, _, err = conn.Prepare(`INSERT INTO docs(rowid, subject, body, attachments, people) VALUES(?, ?, ?, ?, ?)`); err != nil {
		return nil, fmt.Errorf("search: fts5: prepare: %w", err)
	}
	if e.insMet, _, err = conn.Prepare(`INSERT INTO meta(id, folder, date) VALUES(?, ?, ?)`); err != nil {
		e.insDoc.Close()
		return nil, fmt.Errorf("search: fts5: prepare: %w", err)
	}
	if e.vocab, _, err = conn.Prepare(`SELECT doc FROM docs_vocab WHERE term = ?`); err != nil {
		e.insDoc.Close()
		e.insMet.Close()
		return nil, fmt.Errorf("search: fts5: prepare: %w", err)
	}
	if ftsOrder == "wordrank" && !create {
		// FTS5 prepares its statement for the sizes of a row the first
		// time an auxiliary function asks for them. Prepared from inside
		// wordRank (a call from Go back into SQLite) it crashes the
		// translated SQLite on indexes of some thousands of messages
		// (TestWordRankAfterOpen); bm25() asking first, from SQLite
		// itself, prepares it before wordRank runs.
		if err := conn.Exec(`SELECT bm25(docs) FROM docs WHERE docs MATCH (SELECT '"' || term || '"' FROM docs_vocab LIMIT 1) LIMIT 1`); err != nil {
			e.insDoc.Close()
			e.insMet.Close()
			e.vocab.Close()
			return nil, fmt.Errorf("search: fts5: warm: %w", err)
		}
	}
	return e, nil
}

func (e *ftsEngine) Add(ctx context.Context, msgs []Message) (err error) {
	if err := e.conn.Exec(`BEGIN`); err != nil {
		return fmt.Errorf("search: fts5: begin: %w", err)
	}
	defer func() {
		if err != nil {
			e.conn.Exec(`ROLLBACK`)
		}
	}()
	for _, m := range msgs {
		if err := ctx.Err(); err != nil {
			return err
		}
		e.insDoc.BindInt64(1, m.ID)
		e.insDoc.BindText(2, m.Subject)
		e.insDoc.BindText(3, m.Body)
		e.insDoc.BindText(4, m.AttachmentWords())
		e.insDoc.BindText(5, m.People())
		if err := e.insDoc.Exec(); err != nil {
			return fmt.Errorf("search: fts5: insert: %w", err)
		}
		e.insMet.BindInt64(1, m.ID)
		e.insMet.BindText(2, m.Folder)
		e.insMet.BindInt64(3, m.Date)
		if err := e.insMet.Exec(); err != nil {
			return fmt.Errorf("search: fts5: insert: %w", err)
		}
	}
	if err := e.conn.Exec(`COMMIT`); err != nil {
		return fmt.Errorf("search: fts5: commit: %w", err)
	}
	return nil
}

// ftsString quotes one word as an FTS5 string, so that no input is read
// as query syntax (AND, NEAR, column filters, '*').
func ftsString(words ...string) string {
	return `"` + strings.ReplaceAll(strings.Join(words, " "), `"`, `""`) + `"`
}

// ftsPhrases are the query's FTS5 phrases in the order ftsMatch writes
// them (FTS5 numbers phrases in that order), each as its words.
func ftsPhrases(q Query) [][]string {
	var out [][]string
	for _, w := range q.Words {
		out = append(out, []string{w})
	}
	if len(q.Phrase) > 0 {
		out = append(out, q.Phrase)
	}
	for _, w := range q.Sender {
		out = append(out, []string{w})
	}
	return out
}

// ftsTerms splits text as the unicode61 tokenizer does, closely enough
// for looking up document frequencies (letters and digits, lower case).
func ftsTerms(words []string) []string {
	var out []string
	for _, w := range words {
		out = append(out, strings.FieldsFunc(strings.ToLower(w), func(r rune) bool {
			return !unicode.IsLetter(r) && !unicode.IsDigit(r)
		})...)
	}
	return out
}

// docFreq is the number of messages holding the phrase's rarest word:
// an upper bound of the phrase's own, found in one index lookup per word
// where counting the phrase would check its positions in every message.
func (e *ftsEngine) docFreq(words []string) (int64, error) {
	best := int64(-1)
	for _, t := range ftsTerms(words) {
		e.vocab.BindText(1, t)
		n := int64(0)
		if e.vocab.Step() {
			n = e.vocab.ColumnInt64(0)
		}
		err := e.vocab.Err()
		e.vocab.Reset()
		if err != nil {
			return 0, fmt.Errorf("search: fts5: vocabulary: %w", err)
		}
		if best < 0 || n < best {
			best = n
		}
	}
	return max(best, 0), nil
}

// wordRank is BM25 as FTS5's bm25() computes it (k1 = 1.2, b = 0.75,
// every column weighted 1, IDF = ln((N - n + 0.5) / (n + 0.5)) and at
// least 1e-6), except that each phrase's document frequency n comes as an
// argument (docFreq) instead of from FTS5's count of the rows holding the
// phrase, which for a phrase means checking positions in every row that
// holds its words. Lower is better, as bm25().
func wordRank(fts fts5.Context, ctx sqlite3.Context, arg ...sqlite3.Value) {
	const k1, b = 1.2, 0.75
	type stats struct{ n, avgdl float64 }
	st, _ := fts.GetAuxdata(false).(*stats)
	if st == nil {
		rows, err := fts.RowCount()
		if err != nil {
			ctx.ResultError(err)
			return
		}
		total, err := fts.ColumnTotalSize(-1)
		if err != nil {
			ctx.ResultError(err)
			return
		}
		st = &stats{n: float64(rows), avgdl: float64(total) / float64(max(rows, 1))}
		if err := fts.SetAuxdata(st); err != nil {
			ctx.ResultError(err)
			return
		}
	}
	np := fts.PhraseCount()
	var freqBuf [16]float64
	freq := freqBuf[:0]
	if np > len(freqBuf) {
		freq = make([]float64, np)
	} else {
		freq = freqBuf[:np]
	}
	ni, err := fts.InstCount()
	if err != nil {
		ctx.ResultError(err)
		return
	}
	for i := range ni {
		p, _, _, err := fts.Inst(i)
		if err != nil {
			ctx.ResultError(err)
			return
		}
		freq[p]++
	}
	dl, err := fts.ColumnSize(-1)
	if err != nil {
		ctx.ResultError(err)
		return
	}
	score := 0.0
	for p, f := range freq {
		if f == 0 {
			continue
		}
		df := 0.0
		if p < len(arg) {
			df = arg[p].Float()
		}
		idf := math.Log((st.n - df + 0.5) / (df + 0.5))
		if idf <= 0 {
			idf = 1e-6
		}
		score += idf * f * (k1 + 1) / (f + k1*(1-b+b*float64(dl)/st.avgdl))
	}
	ctx.ResultFloat(-score)
}

// ftsMatch is the MATCH expression of a query.
func ftsMatch(q Query) string {
	var parts []string
	for _, w := range q.Words {
		parts = append(parts, ftsString(w))
	}
	if len(q.Phrase) > 0 {
		parts = append(parts, ftsString(q.Phrase...))
	}
	if len(q.Sender) > 0 {
		var s []string
		for _, w := range q.Sender {
			s = append(s, ftsString(w))
		}
		parts = append(parts, "people : ("+strings.Join(s, " AND ")+")")
	}
	return strings.Join(parts, " AND ")
}

func (e *ftsEngine) Search(ctx context.Context, q Query) ([]int64, error) {
	if !q.hasText() {
		return nil, ErrNoText
	}
	var sql strings.Builder
	if ftsOrder == "recent-rank" {
		sql.WriteString(`SELECT id FROM (SELECT docs.rowid AS id, bm25(docs) AS score FROM docs`)
	} else {
		sql.WriteString(`SELECT docs.rowid FROM docs`)
	}
	filtered := q.Folder != "" || q.From != 0 || q.To != 0
	if filtered {
		// CROSS JOIN keeps docs as the outer loop: SQLite would otherwise
		// walk meta's (folder, date) index and run one full-text lookup
		// per row in range, slow for a broad filter.
		sql.WriteString(` CROSS JOIN meta ON meta.id = docs.rowid`)
	}
	sql.WriteString(` WHERE docs MATCH ?1`)
	if q.Folder != "" {
		sql.WriteString(` AND meta.folder = ?2`)
	}
	if q.From != 0 {
		sql.WriteString(` AND meta.date >= ?3`)
	}
	if q.To != 0 {
		sql.WriteString(` AND meta.date < ?4`)
	}
	var dfs []int64
	if ftsOrder == "wordrank" {
		for _, p := range ftsPhrases(q) {
			df, err := e.docFreq(p)
			if err != nil {
				return nil, err
			}
			dfs = append(dfs, df)
		}
	}
	switch ftsOrder {
	case "wordrank":
		sql.WriteString(` ORDER BY wordrank(docs`)
		for i := range dfs {
			fmt.Fprintf(&sql, `, ?%d`, 7+i)
		}
		sql.WriteString(`) LIMIT ?5`)
	case "newest":
		sql.WriteString(` ORDER BY docs.rowid DESC LIMIT ?5`)
	case "recent-rank":
		sql.WriteString(` ORDER BY docs.rowid DESC LIMIT ?6) ORDER BY score LIMIT ?5`)
	default:
		sql.WriteString(` ORDER BY rank LIMIT ?5`)
	}
	st, _, err := e.conn.Prepare(sql.String())
	if err != nil {
		return nil, fmt.Errorf("search: fts5: prepare: %w", err)
	}
	defer st.Close()
	st.BindText(1, ftsMatch(q))
	if q.Folder != "" {
		st.BindText(2, q.Folder)
	}
	if q.From != 0 {
		st.BindInt64(3, q.From)
	}
	if q.To != 0 {
		st.BindInt64(4, q.To)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	st.BindInt(5, limit)
	if ftsOrder == "recent-rank" {
		st.BindInt(6, ftsRecent)
	}
	for i, df := range dfs {
		st.BindInt64(7+i, df)
	}
	var ids []int64
	for st.Step() {
		ids = append(ids, st.ColumnInt64(0))
	}
	if err := st.Err(); err != nil {
		return nil, fmt.Errorf("search: fts5: query: %w", err)
	}
	return ids, ctx.Err()
}

func (e *ftsEngine) Close() error {
	e.insDoc.Close()
	e.insMet.Close()
	e.vocab.Close()
	return e.conn.Close()
}
