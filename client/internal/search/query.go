package search

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Query limits (protocol/SPEC.md section 6 "Limits").
const (
	// MaxQuerySize is the longest query, in bytes of UTF-8.
	MaxQuerySize = 1024
	// MaxQueryTerms is the most terms (words, phrases, from:NAME) of a
	// query; MaxQueryWords the most words in all of them.
	MaxQueryTerms = 16
	MaxQueryWords = 32
)

// Term is one condition of a query: its words, consecutive if a phrase,
// in any field or (People) in the people field only.
type Term struct {
	Words  []string
	Phrase bool
	People bool
}

// Query is a parsed query: every term must match.
type Query struct{ Terms []Term }

// ParseQuery reads a query as a person types it:
//
//	word            a word anywhere (subject, text, attachment names, people)
//	"two words"     a phrase: the words one after the other
//	from:NAME       NAME (a word, or a "quoted name") among the sender and
//	                recipients
//
// Terms are separated by spaces and all must match. Letter case and
// diacritics do not count; anything but letters and digits separates
// words (so "echo_report.pdf" is a phrase of three words). An unclosed
// quote runs to the end. ErrQuery for a query with no words, longer than
// MaxQuerySize, with more than MaxQueryTerms terms or MaxQueryWords words,
// or not UTF-8.
func ParseQuery(s string) (Query, error) {
	if len(s) > MaxQuerySize {
		return Query{}, fmt.Errorf("%w: longer than %d bytes", ErrQuery, MaxQuerySize)
	}
	if !utf8.ValidString(s) {
		return Query{}, fmt.Errorf("%w: not UTF-8", ErrQuery)
	}
	var q Query
	words := 0
	for s != "" {
		r, n := utf8.DecodeRuneInString(s)
		if unicode.IsSpace(r) {
			s = s[n:]
			continue
		}
		var t Term
		if len(s) >= 5 && strings.EqualFold(s[:5], "from:") {
			t.People = true
			s = s[5:]
		}
		var text string
		if strings.HasPrefix(s, `"`) {
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				text, s = s[1:], ""
			} else {
				text, s = s[1:1+end], s[2+end:]
			}
			t.Phrase = true
		} else {
			end := strings.IndexFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == '"' })
			if end < 0 {
				end = len(s)
			}
			text, s = s[:end], s[end:]
		}
		t.Words = splitWords(text)
		if len(t.Words) == 0 {
			continue
		}
		if len(t.Words) > 1 {
			t.Phrase = true // "echo_report" is the words echo, report in a row
		}
		words += len(t.Words)
		q.Terms = append(q.Terms, t)
		if len(q.Terms) > MaxQueryTerms {
			return Query{}, fmt.Errorf("%w: more than %d terms", ErrQuery, MaxQueryTerms)
		}
		if words > MaxQueryWords {
			return Query{}, fmt.Errorf("%w: more than %d words", ErrQuery, MaxQueryWords)
		}
	}
	if len(q.Terms) == 0 {
		return Query{}, fmt.Errorf("%w: no words to search for", ErrQuery)
	}
	return q, nil
}

// splitWords splits s into words of letters, digits and marks, as FTS5's
// unicode61 tokenizer does closely enough: the words are quoted again
// before FTS5 sees them, and it splits them its own way.
func splitWords(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)
	})
}

// match is q as an FTS5 MATCH expression. Each term is one FTS5 string
// (double quotes, a quote inside doubled): FTS5 reads nothing in it as
// syntax, so no input can make AND, OR, NOT, NEAR, a column filter, a
// prefix '*' or a syntax error.
func (q Query) match() string {
	var b strings.Builder
	for i, t := range q.Terms {
		if i > 0 {
			b.WriteString(" AND ")
		}
		if t.People {
			b.WriteString("people : ")
		}
		b.WriteByte('"')
		b.WriteString(strings.ReplaceAll(strings.Join(t.Words, " "), `"`, `""`))
		b.WriteByte('"')
	}
	return b.String()
}

// String is q in the syntax ParseQuery reads.
func (q Query) String() string {
	var parts []string
	for _, t := range q.Terms {
		w := strings.Join(t.Words, " ")
		if t.Phrase {
			w = `"` + w + `"`
		}
		if t.People {
			w = "from:" + w
		}
		parts = append(parts, w)
	}
	return strings.Join(parts, " ")
}
