package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

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
var (
	ftsOrder  = "rank"
	ftsRecent = 2000
)

type ftsEngine struct {
	conn   *sqlite3.Conn
	insDoc *sqlite3.Stmt
	insMet *sqlite3.Stmt
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
	if err := fts5.Register(conn); err != nil {
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
				content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');`); err != nil {
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
	switch ftsOrder {
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
	return e.conn.Close()
}
