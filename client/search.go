package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/postern/postern/client/internal/search"
)

// Search (protocol/SPEC.md section 9 "Local state", search.db): a
// full-text index of the stored messages, encrypted at rest under a key
// derived from the store key, kept in step with the store after every
// commit that adds, moves or deletes messages, and rebuilt from the store
// when it is missing, behind, or does not open. It answers with message
// IDs only: every message a search returns is read from the store.

// Search limits (protocol/SPEC.md section 6 "Limits").
const (
	// MaxSearchQuerySize is the longest query, in bytes of UTF-8.
	MaxSearchQuerySize = search.MaxQuerySize
	// MaxSearchTerms is the most terms of a query (words, "phrases",
	// from:NAME), MaxSearchWords the most words in all of them.
	MaxSearchTerms = search.MaxQueryTerms
	MaxSearchWords = search.MaxQueryWords
	// DefaultSearchLimit and MaxSearchLimit bound the answers.
	DefaultSearchLimit = search.DefaultLimit
	MaxSearchLimit     = search.MaxLimit
)

// SearchFileName is the search index's file under the home (its journal
// is SearchFileName + "-journal").
const SearchFileName = search.FileName

var (
	// ErrSearchQuery: the query cannot be searched (no words, longer than
	// MaxSearchQuerySize, more than MaxSearchTerms terms or
	// MaxSearchWords words, not UTF-8); the text says why.
	ErrSearchQuery = errors.New("client: invalid search query")
	// ErrSearchIndex: the search index could not be opened, made or
	// brought up to date (another process holding it too long, a full
	// disk). The store is unchanged; a later search tries again.
	ErrSearchIndex = errors.New("client: search index unavailable")
)

// SearchOptions narrow a search. A nil *SearchOptions means all defaults.
type SearchOptions struct {
	// Folder is the ID of the folder to search (see Folders). Default
	// "": every folder.
	Folder string
	// Since and Until bound the messages' times (Message.Time): at or
	// after Since, before Until. Default zero: no bound.
	Since, Until time.Time
	// Limit is the most messages returned. Default (0):
	// DefaultSearchLimit; at most MaxSearchLimit.
	Limit int
}

// Search returns the stored messages matching query, best first (BM25:
// a word in the subject counts twice, a word repeated more than once).
// The query is words (every one must match, in the subject, text,
// attachment names or people), "quoted phrases" (the words in a row) and
// from:NAME (NAME, a word or a "quoted name", among the sender and
// recipients); letter case and diacritics do not count. Notices are not
// searched. ErrSearchQuery for a query that cannot be searched,
// ErrNoFolder for an unknown folder, ErrSearchIndex when the index cannot
// be used.
//
// The first search on a home makes its index from the store (about
// 10,000 messages a second); later ones find it up to date.
func (c *Client) Search(ctx context.Context, query string, opts *SearchOptions) ([]Message, error) {
	var o SearchOptions
	if opts != nil {
		o = *opts
	}
	q, err := search.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSearchQuery, err)
	}
	if o.Limit <= 0 {
		o.Limit = DefaultSearchLimit
	}
	o.Limit = min(o.Limit, MaxSearchLimit)
	if o.Folder != "" && !isSystemFolder(o.Folder) {
		if err := c.st.view(func(t *tx) error {
			live, err := t.liveFolders()
			if err == nil && live[o.Folder] == nil {
				err = fmt.Errorf("%w: %q", ErrNoFolder, o.Folder)
			}
			return err
		}); err != nil {
			return nil, err
		}
	}
	if c.isClosed() {
		return nil, ErrClosed
	}
	f := search.Filter{Folder: o.Folder, Since: o.Since, Until: o.Until}
	// A second round only if the first found the index wrong about a
	// message (gone, or moved by a process that stopped before telling
	// the index): those are fixed, and the search runs again.
	// An index found corrupt is removed and made again from the store,
	// once.
	for round := 0; ; round++ {
		ix, err := c.st.idx.ready(ctx, c.st, true)
		if err != nil {
			return nil, err
		}
		hits, err := ix.Search(ctx, q, f, o.Limit)
		if err != nil {
			if errors.Is(err, search.ErrQuery) {
				return nil, fmt.Errorf("%w: %w", ErrSearchQuery, err)
			}
			err = c.st.idx.failed(err)
			if round == 0 && errors.Is(err, ErrSearchIndex) {
				continue
			}
			return nil, err
		}
		out, stale, err := c.searchResults(hits, o)
		if err != nil || len(stale) == 0 || round > 0 {
			return out, err
		}
		c.st.idx.repair(ctx, c.st, stale)
	}
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// searchResults reads the messages of hits from the store, keeping those
// the store holds under that key with that ID and that pass o's filters
// on the store's record; the IDs of the others are stale.
func (c *Client) searchResults(hits []search.Hit, o SearchOptions) (out []Message, stale []string, err error) {
	err = c.st.view(func(t *tx) error {
		out, stale = nil, nil
		live, err := t.liveFolders()
		if err != nil {
			return err
		}
		set := liveSet(live)
		for _, h := range hits {
			var m messageRecord
			ok, err := t.Get(bucketMessages, messageKey(h.Seq), &m)
			if err != nil {
				return err
			}
			switch {
			case !ok || m.ID != h.ID || m.Notice,
				o.Folder != "" && folderOf(&m, set) != o.Folder,
				!o.Since.IsZero() && m.Time.Before(o.Since),
				!o.Until.IsZero() && !m.Time.Before(o.Until):
				stale = append(stale, h.ID)
				continue
			}
			pm := c.messageFromRecord(&m)
			pm.Folder = folderOf(&m, set)
			out = append(out, pm)
		}
		return nil
	})
	return out, stale, err
}

// messageKey is the store's key of the message stored at sequence seq.
func messageKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// messageChanges are what one store transaction did to messages.
type messageChanges struct {
	added   bool
	moved   []string // IDs whose folder changed
	deleted []string
}

func (ch *messageChanges) any() bool { return ch.added || len(ch.moved) > 0 || len(ch.deleted) > 0 }

// AddMessage, UpdateMessage and DeleteMessage are the store's, noting
// what changed for the search index.

func (t *tx) AddMessage(m *messageRecord) (bool, error) {
	ok, err := t.Tx.AddMessage(m)
	if ok && err == nil && t.ch != nil {
		t.ch.added = true
	}
	return ok, err
}

func (t *tx) UpdateMessage(id string, fn func(*messageRecord)) (bool, error) {
	return t.Tx.UpdateMessage(id, func(m *messageRecord) {
		old := m.Folder
		fn(m)
		if m.Folder != old && t.ch != nil {
			t.ch.moved = append(t.ch.moved, id)
		}
	})
}

func (t *tx) DeleteMessage(id string) error {
	err := t.Tx.DeleteMessage(id)
	if err == nil && t.ch != nil {
		t.ch.deleted = append(t.ch.deleted, id)
	}
	return err
}

// searchIndex is a store's search index, opened on first use.
type searchIndex struct {
	path string
	key  []byte // search.Key of the store key
	log  *slog.Logger

	mu     sync.Mutex
	ix     *search.Index
	closed bool
}

func newSearchIndex(storePath string, storeKey []byte) *searchIndex {
	return &searchIndex{
		path: filepath.Join(filepath.Dir(storePath), search.FileName),
		key:  search.Key(storeKey),
		log:  slog.New(slog.DiscardHandler),
	}
}

// catchUpBatch is how many messages one index transaction takes from the
// store while catching up: each batch is one short store transaction, so
// a rebuild does not hold the store from other processes.
const catchUpBatch = 1000

// ready returns the open index brought up to date with the store: opened
// (made if create, or if the file exists) and caught up. With create
// false and no index file, it returns nil and no error.
func (s *searchIndex) ready(ctx context.Context, st *localStore, create bool) (*search.Index, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	fresh := false
	if s.ix == nil {
		if !create {
			if _, err := os.Lstat(s.path); err != nil {
				return nil, nil
			}
		}
		ix, f, err := search.Open(s.path, s.key)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSearchIndex, err)
		}
		s.ix, fresh = ix, f
	}
	n, err := s.catchUp(ctx, st)
	if errors.Is(err, search.ErrCorrupt) {
		// Found corrupt while catching up: made anew, once.
		s.failedLocked(err)
		var ix *search.Index
		if ix, _, err = search.Open(s.path, s.key); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrSearchIndex, err)
		}
		s.ix, fresh = ix, true
		n, err = s.catchUp(ctx, st)
	}
	if err != nil {
		return nil, s.failedLocked(err)
	}
	if fresh || n >= catchUpBatch {
		// Merged into one segment after a rebuild: smaller, faster, and
		// no words of messages deleted since.
		if err := s.ix.Update(ctx, func(b *search.Batch) error { return b.Optimize() }); err != nil {
			return nil, s.failedLocked(err)
		}
	}
	return s.ix, nil
}

// catchUp indexes the messages stored after the marker, in batches; an
// index ahead of the store (an older store.db put back) is cleared first.
// It returns how many messages it indexed.
func (s *searchIndex) catchUp(ctx context.Context, st *localStore) (int, error) {
	total := 0
	for {
		n := 0
		err := s.ix.Update(ctx, func(b *search.Batch) error {
			n = 0
			marker, markerID, err := b.Marker()
			if err != nil {
				return err
			}
			var docs []search.Doc
			var lastSeq uint64
			var lastID string
			clear := false
			err = st.view(func(t *tx) error {
				docs, clear = nil, false
				bk := t.Bolt().Bucket(bucketMessages)
				if bk == nil {
					return errStoreCorrupt
				}
				cur := bk.Cursor()
				last, _ := cur.Last()
				if last != nil && len(last) != 8 {
					return errStoreCorrupt
				}
				if last == nil || binary.BigEndian.Uint64(last) < marker {
					clear = marker > 0
				} else if marker > 0 {
					var m messageRecord
					ok, err := t.Get(bucketMessages, messageKey(marker), &m)
					if err != nil {
						return err
					}
					clear = ok && m.ID != markerID
				}
				if clear {
					marker = 0
				}
				live, err := t.liveFolders()
				if err != nil {
					return err
				}
				set := liveSet(live)
				start := messageKey(marker + 1)
				for k, _ := cur.Seek(start); k != nil && len(docs) < catchUpBatch; k, _ = cur.Next() {
					if len(k) != 8 {
						return errStoreCorrupt
					}
					var m messageRecord
					if _, err := t.Get(bucketMessages, k, &m); err != nil {
						return err
					}
					lastSeq, lastID = binary.BigEndian.Uint64(k), m.ID
					n++
					if !m.Notice {
						docs = append(docs, searchDoc(lastSeq, &m, set))
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("%w: %w", ErrStore, err)
			}
			if clear {
				if err := b.Clear(); err != nil {
					return err
				}
			}
			for i := range docs {
				if err := b.Put(&docs[i]); err != nil {
					return err
				}
			}
			if n > 0 {
				return b.SetMarker(lastSeq, lastID)
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += n
		if n < catchUpBatch {
			return total, nil
		}
	}
}

// searchDoc is what the index is given of stored message m at seq.
func searchDoc(seq uint64, m *messageRecord, live map[string]bool) search.Doc {
	d := search.Doc{Seq: seq, ID: m.ID, Subject: m.Subject, Text: m.Text, Folder: folderOf(m, live), Time: m.Time}
	for _, a := range m.Attachments {
		d.Attachments = append(d.Attachments, a.Name)
	}
	for _, p := range []string{m.From, m.To} {
		if p != Me && p != "" {
			d.People = append(d.People, p)
		}
	}
	return d
}

// committed brings the index in step after a store transaction that
// changed messages, if this store's index is open or its file exists
// (the first search makes it otherwise). A failure is logged: the store
// committed, and the next search repairs the index.
func (s *searchIndex) committed(st *localStore, ch *messageChanges) {
	ctx := context.Background()
	ix, err := s.ready(ctx, st, false)
	if err == nil && ix != nil && len(ch.moved)+len(ch.deleted) > 0 {
		err = s.refresh(ctx, st, ix, ch.moved, ch.deleted)
	}
	if err != nil {
		s.log.Warn("search index not updated; the next search repairs it", "err", err)
	}
}

// repair brings the messages ids, found wrong by a search, in step.
func (s *searchIndex) repair(ctx context.Context, st *localStore, ids []string) {
	s.mu.Lock()
	ix := s.ix
	s.mu.Unlock()
	if ix == nil {
		return
	}
	if err := s.refresh(ctx, st, ix, ids, nil); err != nil {
		s.log.Warn("search index not repaired", "err", err)
	}
}

// refresh gives the messages ids the folder the store has for them,
// removing those the store no longer holds, and removes deleted.
func (s *searchIndex) refresh(ctx context.Context, st *localStore, ix *search.Index, ids, deleted []string) error {
	folders := map[string]string{} // ID -> folder; "" for gone
	err := st.view(func(t *tx) error {
		live, err := t.liveFolders()
		if err != nil {
			return err
		}
		set := liveSet(live)
		for _, id := range ids {
			m, err := t.MessageByID(id)
			if err != nil {
				return err
			}
			folders[id] = ""
			if m != nil && !m.Notice {
				folders[id] = folderOf(m, set)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err)
	}
	err = ix.Update(ctx, func(b *search.Batch) error {
		for _, id := range deleted {
			if err := b.Delete(id); err != nil {
				return err
			}
		}
		for id, f := range folders {
			var err error
			if f == "" {
				err = b.Delete(id)
			} else {
				err = b.SetFolder(id, f)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s.failed(err)
	}
	return nil
}

// failed handles an index error: an index found corrupt is closed and
// removed, to be made anew from the store by the next use.
func (s *searchIndex) failed(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failedLocked(err)
}

func (s *searchIndex) failedLocked(err error) error {
	if errors.Is(err, search.ErrCorrupt) || errors.Is(err, search.ErrClosed) {
		if s.ix != nil {
			s.ix.Close()
			s.ix = nil
		}
		if errors.Is(err, search.ErrCorrupt) {
			if rerr := search.Remove(s.path); rerr != nil {
				s.log.Warn("could not remove the corrupt search index", "err", rerr)
			}
		}
	}
	if errors.Is(err, ErrStore) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrSearchIndex, err)
}

// close closes the index; later uses fail with ErrClosed.
func (s *searchIndex) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.ix != nil {
		s.ix.Close()
		s.ix = nil
	}
}

// remove closes the index and deletes its files (the device's home is
// wiped).
func (s *searchIndex) remove() error {
	s.close()
	return search.Remove(s.path)
}

// ParseSearchTime reads a bound of SearchOptions' dates as 'postern search'
// and the web app take them: a date (YYYY-MM-DD, in local time) or an
// RFC 3339 time. A date as the end bound means the end of that day (the
// bound is exclusive: the next day's start).
func ParseSearchTime(s string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseInLocation(time.DateOnly, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date (YYYY-MM-DD) or an RFC 3339 time", s)
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}
