package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"
)

// Query is one search as the client would ask it. Every part given must
// hold; an empty part is not a condition. Words and Phrase match in any
// text field (subject, text, attachment names, people); Sender matches
// the people field; Folder and the date range filter.
type Query struct {
	Words  []string
	Phrase []string // consecutive words
	Sender []string // words of a name
	Folder string
	From   int64 // Unix seconds, inclusive; 0: no lower bound
	To     int64 // Unix seconds, exclusive; 0: no upper bound
	Limit  int
}

// ErrNoText: a query needs words, a phrase or a sender; filters alone are
// a listing, not a search.
var ErrNoText = errors.New("search: query has no words")

func (q Query) hasText() bool { return len(q.Words)+len(q.Phrase)+len(q.Sender) > 0 }

// Engine is one candidate index.
type Engine interface {
	// Add indexes messages (one batch: one transaction or one bleve batch).
	Add(ctx context.Context, msgs []Message) error
	// Search returns message IDs, best first.
	Search(ctx context.Context, q Query) ([]int64, error)
	// Close writes what must persist (encrypted) and releases the index.
	Close() error
}

// Kind makes and opens one candidate's index in a directory of its own.
type Kind struct {
	Name string
	// Create makes a new empty index in dir, encrypted under key.
	Create func(dir string, key []byte) (Engine, error)
	// Open opens the index that Create made and Close persisted; nil for
	// a kind that persists nothing (it is rebuilt at every unlock).
	Open func(dir string, key []byte) (Engine, error)
	// Prepare runs after the last Add and before Close (FTS5's optimize).
	Prepare func(Engine) error
}

// QuerySet is a named list of queries of one shape.
type QuerySet struct {
	Name    string
	Queries []Query
}

// Queries makes count queries of each shape from the corpus,
// deterministically. Words are drawn uniformly from vocabulary ranks 20
// to 5,000 (from words in most messages to words in a few dozen), phrases
// are two or three consecutive words of a random message, senders a
// random person's full name, folders by their share, date ranges random
// three-month windows.
func (c *Corpus) Queries(count int, seed uint64) []QuerySet {
	r := rand.New(rand.NewPCG(seed, 7))
	word := func() string { return c.vocab[20+r.IntN(5000-20)] }
	phrase := func() []string {
		for {
			f := strings.Fields(c.Msgs[r.IntN(len(c.Msgs))].Body)
			k := 2 + r.IntN(2)
			if len(f) < k {
				continue
			}
			i := r.IntN(len(f) - k + 1)
			return f[i : i+k]
		}
	}
	sender := func() []string { return strings.Fields(strings.ToLower(c.people[r.IntN(len(c.people))])) }
	folder := func() string {
		x := r.IntN(1000)
		for _, f := range folders {
			if x < f.share {
				return f.name
			}
			x -= f.share
		}
		return folders[0].name
	}
	window := func() (int64, int64) {
		from := corpusStart + r.Int64N(corpusSpan-90*24*3600)
		return from, from + 90*24*3600
	}
	sets := []QuerySet{{Name: "word"}, {Name: "two-words"}, {Name: "phrase"}, {Name: "sender"},
		{Name: "folder"}, {Name: "date"}, {Name: "combined"}}
	for range count {
		sets[0].Queries = append(sets[0].Queries, Query{Words: []string{word()}})
		sets[1].Queries = append(sets[1].Queries, Query{Words: []string{word(), word()}})
		sets[2].Queries = append(sets[2].Queries, Query{Phrase: phrase()})
		sets[3].Queries = append(sets[3].Queries, Query{Sender: sender()})
		sets[4].Queries = append(sets[4].Queries, Query{Words: []string{word()}, Folder: folder()})
		from, to := window()
		sets[5].Queries = append(sets[5].Queries, Query{Words: []string{word()}, From: from, To: to})
		from, to = window()
		sets[6].Queries = append(sets[6].Queries, Query{Words: []string{word(), word()},
			Sender: sender()[1:], Folder: folder(), From: from, To: to})
	}
	for s := range sets {
		for i := range sets[s].Queries {
			sets[s].Queries[i].Limit = 20
		}
	}
	return sets
}

// unixDay is a date for the planted queries.
func unixDay(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix()
}
