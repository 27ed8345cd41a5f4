package search

import "errors"

var (
	// ErrQuery: the query cannot be searched (no words, too long, too
	// many terms, not UTF-8). The text says which.
	ErrQuery = errors.New("search: invalid query")
	// ErrCorrupt: the index file does not read as an index (corrupt, or
	// broken by a failure inside SQLite). The caller closes it and opens
	// it again with Reset, which makes it anew.
	ErrCorrupt = errors.New("search: index corrupt")
	// ErrClosed: the index was closed.
	ErrClosed = errors.New("search: index closed")
)
