// Package search is a Postern home's full-text index of its messages: the
// file search.db beside store.db, an SQLite database with one FTS5 table,
// every block of it (and of its journal) encrypted by the "adiantum" VFS
// of github.com/ncruces/go-sqlite3 under a key derived from the store key
// (protocol/SPEC.md section 9 "Local state", "Search index").
//
// It owns:
//   - the file: Open makes it (0600), opens it, and replaces it with an
//     empty one when it does not decrypt as an index of this format (a
//     wrong key, a corrupt or foreign file): the index is derived data,
//     rebuilt from the store by its caller;
//   - the documents: one row per message, keyed by the store's insertion
//     sequence, holding the words of its subject, text, attachment names
//     and people (positions only: the table is contentless, the texts stay
//     in the store), with its message ID, folder and time as filters;
//   - the marker: the store sequence up to which the caller indexed, so
//     that a caller finds what a crash between the store's commit and the
//     index's left out;
//   - queries: ParseQuery reads what a person types (words, "quoted
//     phrases", from:NAME) and Search runs it, ranked by BM25 (FTS5's
//     bm25(), the subject weighted twice; a query of one term by
//     termRank, the same order in one pass over the matches, rank.go). Every word reaches FTS5 as a
//     quoted string and every value as a bound parameter: no input is read
//     as FTS5 syntax or SQL.
//
// It does not read the store: the client gives it documents and reads
// every answer back from the store.
//
// # Security
//
//   - Adiantum hides the content but is deterministic and length
//     preserving, and it authenticates nothing: someone who can write the
//     file can change answers (not texts, which come from the store), and
//     someone who keeps copies learns which 4 KiB blocks changed. So only
//     message IDs are taken from the index; the client reads each message
//     from the authenticated store and drops IDs the store does not hold.
//   - Temporary files are kept in memory; secure_delete overwrites freed
//     pages. Words of a deleted message can stay in FTS5 segments (still
//     encrypted) until they are merged.
//   - The key is given by PRAGMA hexkey, never in the file name's URI.
package search
