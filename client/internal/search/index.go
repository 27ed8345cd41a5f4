package search

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/ext/fts5"
	_ "github.com/ncruces/go-sqlite3/vfs/adiantum" // registers the "adiantum" VFS
)

const (
	// FileName is the index file under the home; SQLite keeps its
	// journal beside it (FileName + "-journal").
	FileName = "search.db"
	// KeyLabel derives, with HKDF-SHA-256 from the store key, the key
	// that encrypts the index.
	KeyLabel = "postern.v1 search-index-key"
	// Format is the index's layout; another is rebuilt.
	Format = 1

	// DefaultLimit and MaxLimit bound the answers of a search.
	DefaultLimit = 50
	MaxLimit     = 1000

	// busyTimeout is how long a statement waits for another process on
	// the same home that holds the index's lock.
	busyTimeout = 10 * time.Second
	// cacheKiB is SQLite's page cache: pages are decrypted on the way in,
	// so the cache saves decryption as well as reads.
	cacheKiB = 8 << 10
)

// Doc is what the index is given of one message.
type Doc struct {
	Seq         uint64 // the store's key of the message (its insertion sequence)
	ID          string // the message ID
	Subject     string
	Text        string
	Attachments []string // file names
	People      []string // names of the sender and recipients
	Folder      string   // the folder ID it shows in
	Time        time.Time
}

// Filter narrows a search; zero fields do not.
type Filter struct {
	Folder string    // only messages in this folder
	Since  time.Time // only messages at or after Since
	Until  time.Time // only messages before Until
}

// Hit is one answer: the store key and ID of a message.
type Hit struct {
	Seq uint64
	ID  string
}

// Index is an open search.db. Its methods are safe for concurrent use;
// several processes may use one file (SQLite's locks).
type Index struct {
	path string
	mu   sync.Mutex
	conn *sqlite3.Conn // nil once closed or broken
}

// Key is the index key of a store key.
func Key(storeKey []byte) []byte {
	k, err := hkdf.Key(sha256.New, storeKey, nil, KeyLabel, 32)
	if err != nil {
		panic(err) // sizes are constants
	}
	return k
}

// Open opens the index at path under key (Key of the store key), making
// it if it does not exist. An existing file that does not read as
// an index of this Format under this key is removed and made anew, empty:
// fresh reports that the index is new (its marker is 0). Other failures
// (another process holding a lock too long, a full disk) are errors and
// change nothing.
func Open(path string, key []byte) (ix *Index, fresh bool, err error) {
	if len(key) != 32 {
		return nil, false, fmt.Errorf("search: key of %d bytes, want 32", len(key))
	}
	ix, fresh, err = open(path, key)
	if errors.Is(err, ErrCorrupt) {
		if err := Remove(path); err != nil {
			return nil, false, err
		}
		ix, fresh, err = open(path, key)
	}
	return ix, fresh, err
}

// Remove deletes the index file and its journal.
func Remove(path string) error {
	for _, p := range []string{path, path + "-journal"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("search: remove %s: %w", filepath.Base(p), err)
		}
	}
	return nil
}

func open(path string, key []byte) (_ *Index, fresh bool, err error) {
	defer recoverPanic(&err)
	// Made here with mode 0600: SQLite would make them readable by all
	// (the umask aside). An empty file is an empty database.
	for _, p := range []string{path, path + "-journal"} {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err == nil {
			err = f.Chmod(0o600) // a journal SQLite made before
		}
		if err != nil {
			return nil, false, fmt.Errorf("search: open index: %w", err)
		}
		st, err := f.Stat()
		f.Close()
		if err != nil {
			return nil, false, fmt.Errorf("search: open index: %w", err)
		}
		if p == path && st.Size() == 0 {
			fresh = true
		}
	}
	// SQLite reads the path of a URI with %HH escapes and ends it at '?'
	// or '#'; "file:C:/..." is a Windows path as it is.
	uri := "file:" + uriPath.Replace(filepath.ToSlash(path)) + "?vfs=adiantum"
	conn, err := sqlite3.OpenFlags(uri, sqlite3.OPEN_READWRITE|sqlite3.OPEN_URI)
	if err != nil {
		return nil, false, fmt.Errorf("search: open index: %w", err)
	}
	defer func() {
		if err != nil {
			conn.Close()
		}
	}()
	// The key first: the VFS reads no block before it has one.
	if err := conn.Exec(`PRAGMA hexkey='` + hex.EncodeToString(key) + `'`); err != nil {
		return nil, false, fmt.Errorf("search: index key: %w", err)
	}
	if err := conn.BusyTimeout(busyTimeout); err != nil {
		return nil, false, fmt.Errorf("search: open index: %w", err)
	}
	// The key check: the first read decrypts the file's first block,
	// which must be an SQLite header (a wrong key gives random bytes:
	// NOTADB).
	if err := conn.Exec(`SELECT count(*) FROM sqlite_schema`); err != nil {
		return nil, false, dbErr("open index", err)
	}
	if err := fts5.RegisterCustom(conn, func(api *fts5.API) error { return api.CreateFunction(rankFunc, termRank) }); err != nil {
		return nil, false, dbErr("open index", err)
	}
	if err := conn.Exec(fmt.Sprintf(`PRAGMA temp_store=memory; PRAGMA journal_mode=truncate; PRAGMA synchronous=normal; PRAGMA secure_delete=on; PRAGMA cache_size=%d`, -cacheKiB)); err != nil {
		return nil, false, dbErr("open index", err)
	}
	ix := &Index{path: path, conn: conn}
	if fresh {
		err = ix.create()
	} else {
		err = ix.checkFormat()
	}
	if err != nil {
		return nil, false, err
	}
	return ix, fresh, nil
}

var uriPath = strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")

func (ix *Index) create() error {
	err := ix.conn.Exec(`BEGIN IMMEDIATE;
		CREATE TABLE IF NOT EXISTS state(k TEXT PRIMARY KEY, v BLOB) WITHOUT ROWID;
		CREATE TABLE IF NOT EXISTS msgs(seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, folder TEXT NOT NULL, time INTEGER NOT NULL);
		CREATE INDEX IF NOT EXISTS msgs_folder_time ON msgs(folder, time);
		CREATE VIRTUAL TABLE IF NOT EXISTS docs USING fts5(subject, body, attachments, people,
			content='', contentless_delete=1, tokenize='unicode61 remove_diacritics 2');
		INSERT INTO docs(docs, rank) VALUES('rank', 'bm25(2.0, 1.0, 1.0, 1.0)');
		INSERT OR IGNORE INTO state(k, v) VALUES('format', 1), ('marker', 0), ('marker-id', '');
		COMMIT`)
	if err != nil {
		ix.conn.Exec(`ROLLBACK`)
		return dbErr("make index", err)
	}
	return ix.checkFormat()
}

func (ix *Index) checkFormat() error {
	var f int64
	found, err := ix.query(`SELECT v FROM state WHERE k = 'format'`, nil, func(s *sqlite3.Stmt) { f = s.ColumnInt64(0) })
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return fmt.Errorf("%w: not an index", ErrCorrupt)
		}
		return dbErr("open index", err)
	}
	if found == 0 || f != Format {
		return fmt.Errorf("%w: index format %d, want %d", ErrCorrupt, f, Format)
	}
	return nil
}

// dbErr wraps an SQLite error; one that says the file is not a database
// or is malformed matches ErrCorrupt.
func dbErr(what string, err error) error {
	if errors.Is(err, sqlite3.NOTADB) || errors.Is(err, sqlite3.CORRUPT) {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
	}
	return fmt.Errorf("search: %s: %w", what, err)
}

// recoverPanic turns a panic inside SQLite (translated to Go, it panics
// where C would crash) into ErrCorrupt: the caller drops the index and
// rebuilds it rather than taking the client down.
func recoverPanic(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: failure inside SQLite: %v", ErrCorrupt, r)
	}
}

// query runs sql with args bound in order, calling row for each row; it
// returns the number of rows.
func (ix *Index) query(sql string, args []any, row func(*sqlite3.Stmt)) (int, error) {
	st, _, err := ix.conn.Prepare(sql)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if err := bind(st, args); err != nil {
		return 0, err
	}
	n := 0
	for st.Step() {
		n++
		if row != nil {
			row(st)
		}
	}
	return n, st.Err()
}

func bind(st *sqlite3.Stmt, args []any) error {
	for i, a := range args {
		var err error
		switch v := a.(type) {
		case string:
			err = st.BindText(i+1, v)
		case int64:
			err = st.BindInt64(i+1, v)
		case int:
			err = st.BindInt64(i+1, int64(v))
		case float64:
			err = st.BindFloat(i+1, v)
		default:
			panic(fmt.Sprintf("search: bind %T", a)) // a bug here, never input
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Close closes the index.
func (ix *Index) Close() (err error) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	defer recoverPanic(&err)
	if ix.conn == nil {
		return nil
	}
	c := ix.conn
	ix.conn = nil
	return c.Close()
}

// Path is the index file's path.
func (ix *Index) Path() string { return ix.path }

// lock takes the index for one call; it fails once the index is closed.
func (ix *Index) lock() error {
	ix.mu.Lock()
	if ix.conn == nil {
		ix.mu.Unlock()
		return ErrClosed
	}
	return nil
}

// fail drops the connection after a failure that may have left SQLite
// in an unknown state (a panic): the index is then closed.
func (ix *Index) fail(err error) {
	if errors.Is(err, ErrCorrupt) && ix.conn != nil {
		func() {
			defer func() { recover() }()
			ix.conn.Close()
		}()
		ix.conn = nil
	}
}

// Update runs fn in one write transaction: committed if fn returns nil,
// rolled back otherwise.
func (ix *Index) Update(ctx context.Context, fn func(*Batch) error) (err error) {
	if err := ix.lock(); err != nil {
		return err
	}
	defer ix.mu.Unlock()
	defer func() { ix.fail(err) }()
	defer recoverPanic(&err)
	old := ix.conn.SetInterrupt(ctx)
	defer ix.conn.SetInterrupt(old)
	if err := ix.conn.Exec(`BEGIN IMMEDIATE`); err != nil {
		return dbErr("begin", err)
	}
	b := &Batch{ix: ix}
	err = fn(b)
	if err == nil {
		if err = ix.conn.Exec(`COMMIT`); err != nil {
			err = dbErr("commit", err)
		}
	}
	if err != nil && !ix.conn.GetAutocommit() {
		ix.conn.Exec(`ROLLBACK`)
	}
	// SQLite makes the journal readable by all (the umask aside) when it
	// deletes an empty one at open and makes it again; the home is 0700
	// and the journal encrypted, but its mode should be the store's.
	os.Chmod(ix.path+"-journal", 0o600)
	return err
}

// Batch is one write transaction of Update.
type Batch struct{ ix *Index }

// Marker returns the store sequence up to which the index was brought
// and the ID of the message stored there (SetMarker).
func (b *Batch) Marker() (seq uint64, id string, err error) {
	_, err = b.ix.query(`SELECT k, v FROM state WHERE k IN ('marker', 'marker-id')`, nil, func(s *sqlite3.Stmt) {
		switch s.ColumnText(0) {
		case "marker":
			seq = uint64(s.ColumnInt64(1))
		case "marker-id":
			id = s.ColumnText(1)
		}
	})
	if err != nil {
		return 0, "", dbErr("read marker", err)
	}
	return seq, id, nil
}

// SetMarker records that every message the store held up to sequence
// seq (the message ID stored there: id) is indexed.
func (b *Batch) SetMarker(seq uint64, id string) error {
	if _, err := b.ix.query(`UPDATE state SET v = ?1 WHERE k = 'marker'`, []any{int64(seq)}, nil); err != nil {
		return dbErr("set marker", err)
	}
	if _, err := b.ix.query(`UPDATE state SET v = ?1 WHERE k = 'marker-id'`, []any{id}, nil); err != nil {
		return dbErr("set marker", err)
	}
	return nil
}

// Put indexes d, replacing what was indexed under its sequence or ID.
func (b *Batch) Put(d *Doc) error {
	if err := b.deleteWhere(`seq = ?1 OR id = ?2`, int64(d.Seq), d.ID); err != nil {
		return err
	}
	var atts strings.Builder
	for _, a := range d.Attachments {
		atts.WriteString(a)
		atts.WriteByte('\n')
	}
	if _, err := b.ix.query(`INSERT INTO docs(rowid, subject, body, attachments, people) VALUES(?1, ?2, ?3, ?4, ?5)`,
		[]any{int64(d.Seq), d.Subject, d.Text, atts.String(), strings.Join(d.People, "\n")}, nil); err != nil {
		return dbErr("index message", err)
	}
	if _, err := b.ix.query(`INSERT INTO msgs(seq, id, folder, time) VALUES(?1, ?2, ?3, ?4)`,
		[]any{int64(d.Seq), d.ID, d.Folder, d.Time.UnixMilli()}, nil); err != nil {
		return dbErr("index message", err)
	}
	return nil
}

// Delete removes message id from the index, if it is there.
func (b *Batch) Delete(id string) error { return b.deleteWhere(`id = ?1`, id) }

func (b *Batch) deleteWhere(cond string, args ...any) error {
	var seqs []int64
	if _, err := b.ix.query(`SELECT seq FROM msgs WHERE `+cond, args, func(s *sqlite3.Stmt) {
		seqs = append(seqs, s.ColumnInt64(0))
	}); err != nil {
		return dbErr("delete message", err)
	}
	if len(args) > 0 {
		if seq, ok := args[0].(int64); ok && !contains(seqs, seq) {
			seqs = append(seqs, seq) // a document without its row
		}
	}
	for _, seq := range seqs {
		if _, err := b.ix.query(`DELETE FROM docs WHERE rowid = ?1`, []any{seq}, nil); err != nil {
			return dbErr("delete message", err)
		}
		if _, err := b.ix.query(`DELETE FROM msgs WHERE seq = ?1`, []any{seq}, nil); err != nil {
			return dbErr("delete message", err)
		}
	}
	return nil
}

func contains(s []int64, v int64) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// SetFolder records that message id is now in folder.
func (b *Batch) SetFolder(id, folder string) error {
	if _, err := b.ix.query(`UPDATE msgs SET folder = ?1 WHERE id = ?2`, []any{folder, id}, nil); err != nil {
		return dbErr("move message", err)
	}
	return nil
}

// Clear empties the index and sets the marker to 0.
func (b *Batch) Clear() error {
	if err := b.ix.conn.Exec(`INSERT INTO docs(docs) VALUES('delete-all'); DELETE FROM msgs`); err != nil {
		return dbErr("clear index", err)
	}
	return b.SetMarker(0, "")
}

// Optimize merges the index's segments into one: after a rebuild, and to
// drop the words of deleted messages from the file.
func (b *Batch) Optimize() error {
	if err := b.ix.conn.Exec(`INSERT INTO docs(docs) VALUES('optimize')`); err != nil {
		return dbErr("optimize index", err)
	}
	return nil
}

// Search returns the messages matching q and f, best first, at most
// limit (DefaultLimit if 0, at most MaxLimit).
func (ix *Index) Search(ctx context.Context, q Query, f Filter, limit int) (hits []Hit, err error) {
	if len(q.Terms) == 0 {
		return nil, fmt.Errorf("%w: no words to search for", ErrQuery)
	}
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	if err := ix.lock(); err != nil {
		return nil, err
	}
	defer ix.mu.Unlock()
	defer func() { ix.fail(err) }()
	defer recoverPanic(&err)
	old := ix.conn.SetInterrupt(ctx)
	defer ix.conn.SetInterrupt(old)

	// One term (a word, a phrase): termRank, bm25()'s order without its
	// second pass over the table (rank.go). More terms: bm25(), whose
	// IDFs weigh the terms against each other.
	single := len(q.Terms) == 1
	var avgdl float64
	if single {
		if avgdl, err = ix.meanLength(); err != nil {
			return nil, dbErr("search", err)
		}
	}
	// CROSS JOIN keeps the full-text match as the outer loop: SQLite
	// would otherwise walk msgs' (folder, time) index and run one
	// full-text lookup per message in range.
	var sql strings.Builder
	sql.WriteString(`SELECT msgs.seq, msgs.id FROM docs CROSS JOIN msgs ON msgs.seq = docs.rowid`)
	if single {
		sql.WriteString(` CROSS JOIN docs_docsize ON docs_docsize.id = docs.rowid`)
	}
	sql.WriteString(` WHERE docs MATCH ?1`)
	args := []any{q.match()}
	if f.Folder != "" {
		args = append(args, f.Folder)
		fmt.Fprintf(&sql, ` AND msgs.folder = ?%d`, len(args))
	}
	if !f.Since.IsZero() {
		args = append(args, f.Since.UnixMilli())
		fmt.Fprintf(&sql, ` AND msgs.time >= ?%d`, len(args))
	}
	if !f.Until.IsZero() {
		args = append(args, f.Until.UnixMilli())
		fmt.Fprintf(&sql, ` AND msgs.time < ?%d`, len(args))
	}
	if single {
		args = append(args, avgdl)
		fmt.Fprintf(&sql, ` ORDER BY %s(docs, docs_docsize.sz, ?%d), docs.rowid DESC`, rankFunc, len(args))
	} else {
		sql.WriteString(` ORDER BY rank`)
	}
	args = append(args, limit)
	fmt.Fprintf(&sql, ` LIMIT ?%d`, len(args))
	_, err = ix.query(sql.String(), args, func(s *sqlite3.Stmt) {
		hits = append(hits, Hit{Seq: uint64(s.ColumnInt64(0)), ID: s.ColumnText(1)})
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, sqlite3.ERROR) && !errors.Is(err, sqlite3.CORRUPT) {
			// A MATCH that FTS5 does not parse: match() quotes every
			// word, so this is a bug, reported as the query's.
			return nil, fmt.Errorf("%w: %v", ErrQuery, err)
		}
		return nil, dbErr("search", err)
	}
	return hits, nil
}
