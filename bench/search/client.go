package main

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/client/internal/search"
)

// The client's engine: the package the client itself runs
// (client/internal/search: FTS5 through the "adiantum" VFS, its schema,
// settings and queries), given the corpus as the client gives it its
// messages. This module's path lies under client/ so that it may import
// that internal package, and go.mod replaces the main module with this
// checkout: the figures are those of the code the client ships.
var clientKind = Kind{
	Name:   "client",
	Create: openClient,
	Open:   openClient,
	Prepare: func(e Engine) error {
		return e.(*clientEngine).ix.Update(context.Background(), (*search.Batch).Optimize)
	},
}

type clientEngine struct{ ix *search.Index }

func openClient(dir string, key []byte) (Engine, error) {
	ix, _, err := search.Open(filepath.Join(dir, search.FileName), key)
	if err != nil {
		return nil, err
	}
	return &clientEngine{ix: ix}, nil
}

func (e *clientEngine) Add(ctx context.Context, msgs []Message) error {
	return e.ix.Update(ctx, func(b *search.Batch) error {
		for _, m := range msgs {
			d := search.Doc{Seq: uint64(m.ID), ID: strconv.FormatInt(m.ID, 10), Subject: m.Subject, Text: m.Body,
				Attachments: m.Attachments, People: append([]string{m.Sender}, m.Recipients...),
				Folder: m.Folder, Time: time.Unix(m.Date, 0)}
			if err := b.Put(&d); err != nil {
				return err
			}
		}
		return nil
	})
}

// Search asks as the client's query parser would have it: each word a
// term, the phrase one term, the sender's name a term of the people
// field (a phrase when it has two words, as from:"first last"). Words are
// split as the parser splits typed text (its word characters).
func (e *clientEngine) Search(ctx context.Context, q Query) ([]int64, error) {
	if !q.hasText() {
		return nil, ErrNoText
	}
	var sq search.Query
	for _, w := range q.Words {
		if ws := parsedWords(w); len(ws) > 0 {
			sq.Terms = append(sq.Terms, search.Term{Words: ws, Phrase: len(ws) > 1})
		}
	}
	if ws := parsedWords(q.Phrase...); len(ws) > 0 {
		sq.Terms = append(sq.Terms, search.Term{Words: ws, Phrase: true})
	}
	if ws := parsedWords(q.Sender...); len(ws) > 0 {
		sq.Terms = append(sq.Terms, search.Term{Words: ws, Phrase: len(ws) > 1, People: true})
	}
	if len(sq.Terms) == 0 {
		return nil, nil // no word characters at all (query syntax only): nothing matches
	}
	f := search.Filter{Folder: q.Folder}
	if q.From != 0 {
		f.Since = time.Unix(q.From, 0)
	}
	if q.To != 0 {
		f.Until = time.Unix(q.To, 0)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	hits, err := e.ix.Search(ctx, sq, f, limit)
	if err != nil {
		return nil, err
	}
	ids := make([]int64, len(hits))
	for i, h := range hits {
		ids[i] = int64(h.Seq)
	}
	return ids, nil
}

func (e *clientEngine) Close() error { return e.ix.Close() }

// parsedWords are the words the client's parser reads in ws.
func parsedWords(ws ...string) []string {
	var out []string
	for _, w := range ws {
		q, err := search.ParseQuery(strings.ReplaceAll(w, `"`, " "))
		if err != nil {
			continue // no words in w
		}
		for _, t := range q.Terms {
			out = append(out, t.Words...)
		}
	}
	return out
}
