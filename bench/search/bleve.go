package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"

	"github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/custom"
	"github.com/blevesearch/bleve/v2/analysis/analyzer/keyword"
	"github.com/blevesearch/bleve/v2/analysis/token/lowercase"
	"github.com/blevesearch/bleve/v2/analysis/tokenizer/unicode"
	"github.com/blevesearch/bleve/v2/index/scorch"
	"github.com/blevesearch/bleve/v2/index/upsidedown"
	"github.com/blevesearch/bleve/v2/index/upsidedown/store/gtreap"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/registry"
	"github.com/blevesearch/bleve/v2/search/query"
	store "github.com/blevesearch/upsidedown_store_api"
)

// bleve writes its scorch index as segment files that it maps into
// memory and reads in place, and its root in a bbolt file: there is no
// hook through which those bytes could be encrypted. Two ways remain,
// both measured:
//
//   - bleve-sealed: the upsidedown index over an ordered in-memory
//     key-value store (bleve's gtreap) that is written whole to one
//     sealed file (seal.go) on Close and read back whole on open.
//   - bleve-scorch-mem: the scorch index in memory only, nothing on
//     disk; it must be rebuilt from the store at every unlock, so its
//     "open" is a full indexing.
var (
	bleveSealedKind = Kind{
		Name:   "bleve-sealed",
		Create: func(dir string, key []byte) (Engine, error) { return openBleveSealed(dir, key, true) },
		Open:   func(dir string, key []byte) (Engine, error) { return openBleveSealed(dir, key, false) },
	}
	bleveScorchKind = Kind{
		Name: "bleve-scorch-mem",
		Create: func(dir string, key []byte) (Engine, error) {
			idx, err := bleve.NewUsing("", bleveMapping(), scorch.Name, scorch.Name, nil)
			if err != nil {
				return nil, fmt.Errorf("search: bleve: %w", err)
			}
			return &bleveEngine{idx: idx}, nil
		},
	}
)

const (
	sealedStoreName = "postern-sealed"
	sealedFile      = "index.sealed"
)

func init() {
	if err := registry.RegisterKVStore(sealedStoreName, newSealedStore); err != nil {
		panic(err)
	}
}

// bleveMapping: the four text fields with positions (phrase queries need
// them), lower-cased Unicode words with no stemming and no stop words (as
// FTS5's unicode61, so both engines answer the same queries); folder as
// one keyword; date as a number (Unix seconds). Nothing is stored: the
// index answers with IDs, the store has the messages.
func bleveMapping() mapping.IndexMapping {
	m := bleve.NewIndexMapping()
	if err := m.AddCustomAnalyzer("words", map[string]interface{}{
		"type":          custom.Name,
		"tokenizer":     unicode.Name,
		"token_filters": []string{lowercase.Name},
	}); err != nil {
		panic(err) // a constant definition; fails only if bleve's names change
	}
	text := bleve.NewTextFieldMapping()
	text.Analyzer = "words"
	text.Store = false
	text.IncludeInAll = false
	text.IncludeTermVectors = true
	text.DocValues = false
	kw := bleve.NewTextFieldMapping()
	kw.Analyzer = keyword.Name
	kw.Store = false
	kw.IncludeInAll = false
	kw.IncludeTermVectors = false
	kw.DocValues = false
	num := bleve.NewNumericFieldMapping()
	num.Store = false
	num.IncludeInAll = false
	num.DocValues = false
	doc := bleve.NewDocumentStaticMapping()
	for _, f := range textFields {
		doc.AddFieldMappingsAt(f, text)
	}
	doc.AddFieldMappingsAt("folder", kw)
	doc.AddFieldMappingsAt("date", num)
	m.DefaultMapping = doc
	m.DefaultAnalyzer = "words"
	m.StoreDynamic = false
	m.IndexDynamic = false
	m.DocValuesDynamic = false
	return m
}

var textFields = []string{"subject", "body", "attachments", "people"}

type bleveDoc struct {
	Subject     string  `json:"subject"`
	Body        string  `json:"body"`
	Attachments string  `json:"attachments"`
	People      string  `json:"people"`
	Folder      string  `json:"folder"`
	Date        float64 `json:"date"`
}

type bleveEngine struct {
	idx bleve.Index
}

func openBleveSealed(dir string, key []byte, create bool) (*bleveEngine, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("search: bleve: key of %d bytes, want 32", len(key))
	}
	path := filepath.Join(dir, sealedFile)
	if _, err := os.Stat(path); create == (err == nil) {
		if create {
			return nil, fmt.Errorf("search: bleve: %s exists", sealedFile)
		}
		return nil, fmt.Errorf("search: bleve: %w", err)
	}
	// The index itself is given no path: bleve then writes nothing of
	// its own (no index_meta.json), and the mapping is this program's.
	idx, err := bleve.NewUsing("", bleveMapping(), upsidedown.Name, sealedStoreName,
		map[string]interface{}{"sealed_path": path, "sealed_key": key, "sealed_load": !create})
	if err != nil {
		return nil, fmt.Errorf("search: bleve: %w", err)
	}
	return &bleveEngine{idx: idx}, nil
}

func (e *bleveEngine) Add(ctx context.Context, msgs []Message) error {
	b := e.idx.NewBatch()
	for _, m := range msgs {
		if err := b.Index(strconv.FormatInt(m.ID, 10), bleveDoc{
			Subject: m.Subject, Body: m.Body, Attachments: m.AttachmentWords(), People: m.People(),
			Folder: m.Folder, Date: float64(m.Date),
		}); err != nil {
			return fmt.Errorf("search: bleve: %w", err)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := e.idx.Batch(b); err != nil {
		return fmt.Errorf("search: bleve: %w", err)
	}
	return nil
}

// anyField matches a query in any text field.
func anyField(mk func(field string) query.Query) query.Query {
	qs := make([]query.Query, len(textFields))
	for i, f := range textFields {
		qs[i] = mk(f)
	}
	return bleve.NewDisjunctionQuery(qs...)
}

func bleveQuery(q Query) query.Query {
	var must []query.Query
	for _, w := range q.Words {
		must = append(must, anyField(func(f string) query.Query {
			m := bleve.NewMatchQuery(w)
			m.SetField(f)
			return m
		}))
	}
	if len(q.Phrase) > 0 {
		must = append(must, anyField(func(f string) query.Query {
			p := bleve.NewMatchPhraseQuery(joinWords(q.Phrase))
			p.SetField(f)
			return p
		}))
	}
	if len(q.Sender) > 0 {
		m := bleve.NewMatchQuery(joinWords(q.Sender))
		m.SetField("people")
		m.SetOperator(query.MatchQueryOperatorAnd)
		must = append(must, m)
	}
	if q.Folder != "" {
		t := bleve.NewTermQuery(q.Folder)
		t.SetField("folder")
		must = append(must, t)
	}
	if q.From != 0 || q.To != 0 {
		var lo, hi *float64
		if q.From != 0 {
			v := float64(q.From)
			lo = &v
		}
		if q.To != 0 {
			v := float64(q.To)
			hi = &v
		}
		incl, excl := true, false
		r := bleve.NewNumericRangeInclusiveQuery(lo, hi, &incl, &excl)
		r.SetField("date")
		must = append(must, r)
	}
	return bleve.NewConjunctionQuery(must...)
}

func joinWords(w []string) string {
	s := ""
	for i, x := range w {
		if i > 0 {
			s += " "
		}
		s += x
	}
	return s
}

func (e *bleveEngine) Search(ctx context.Context, q Query) ([]int64, error) {
	if !q.hasText() {
		return nil, ErrNoText
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 20
	}
	req := bleve.NewSearchRequestOptions(bleveQuery(q), limit, 0, false)
	res, err := e.idx.SearchInContext(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("search: bleve: %w", err)
	}
	ids := make([]int64, 0, len(res.Hits))
	for _, h := range res.Hits {
		id, err := strconv.ParseInt(h.ID, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("search: bleve: document id %q", h.ID)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func (e *bleveEngine) Close() error { return e.idx.Close() }

// sealedStore is bleve's in-memory gtreap store, loaded from a sealed
// file when opened and written whole to it when closed. The pairs are
// written in key order as uvarint length || key || uvarint length || value.
type sealedStore struct {
	store.KVStore
	path string
	key  []byte
}

func newSealedStore(mo store.MergeOperator, config map[string]interface{}) (store.KVStore, error) {
	path, _ := config["sealed_path"].(string)
	key, _ := config["sealed_key"].([]byte)
	load, _ := config["sealed_load"].(bool)
	if path == "" || len(key) != 32 {
		return nil, errors.New("search: sealed store: needs sealed_path and a 32-byte sealed_key")
	}
	inner, err := gtreap.New(mo, map[string]interface{}{"path": ""})
	if err != nil {
		return nil, err
	}
	s := &sealedStore{KVStore: inner, path: path, key: append([]byte(nil), key...)}
	if load {
		if err := s.load(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *sealedStore) load() error {
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("search: sealed store: %w", err)
	}
	defer f.Close()
	sr, err := openSealed(f, s.key)
	if err != nil {
		return err
	}
	r := bufio.NewReaderSize(sr, 1<<16)
	w, err := s.KVStore.Writer()
	if err != nil {
		return err
	}
	defer w.Close()
	b := w.NewBatch()
	n := 0
	read := func() ([]byte, error) {
		l, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, err
		}
		if l > sealChunk*64 {
			return nil, ErrSealed
		}
		p := make([]byte, l)
		if _, err := io.ReadFull(r, p); err != nil {
			return nil, ErrSealed
		}
		return p, nil
	}
	for {
		k, err := read()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, ErrSealed) {
				return err
			}
			return fmt.Errorf("%w: %v", ErrSealed, err)
		}
		v, err := read()
		if err != nil {
			return ErrSealed
		}
		b.Set(k, v)
		if n++; n%100000 == 0 {
			if err := w.ExecuteBatch(b); err != nil {
				return err
			}
			b = w.NewBatch()
		}
	}
	return w.ExecuteBatch(b)
}

// Close seals every pair to the file (replaced only when complete).
func (s *sealedStore) Close() error {
	if err := s.save(); err != nil {
		s.KVStore.Close()
		return err
	}
	return s.KVStore.Close()
}

func (s *sealedStore) save() (err error) {
	w, err := createSealed(s.path, s.key)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			w.Abort()
		}
	}()
	bw := bufio.NewWriterSize(w, 1<<16)
	rd, err := s.KVStore.Reader()
	if err != nil {
		return err
	}
	defer rd.Close()
	it := rd.PrefixIterator(nil)
	defer it.Close()
	var lb [binary.MaxVarintLen64]byte
	for ; it.Valid(); it.Next() {
		k, v, _ := it.Current()
		for _, p := range [][]byte{k, v} {
			if _, err := bw.Write(lb[:binary.PutUvarint(lb[:], uint64(len(p)))]); err != nil {
				return err
			}
			if _, err := bw.Write(p); err != nil {
				return err
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return w.Close()
}
