package ui

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/client"
)

// The search screen's endpoint: the library's Search (client/search.go)
// over the messages kept on this device, with the CLI's filters and
// sentences ('postern search').

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/search": {handler: (*Server).apiSearch, content: true},
	})
}

// apiSearch answers GET /api/search?q=QUERY[&folder=ID][&since=T][&until=T][&limit=N]:
// the matching messages, best first, as /api/inbox gives them. since and
// until take a date (YYYY-MM-DD, in this computer's time zone, both days
// included) or an RFC 3339 time.
func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	q := r.URL.Query()
	opts := &client.SearchOptions{Folder: q.Get("folder")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit must be a positive number", "")
			return
		}
		opts.Limit = min(n, client.MaxSearchLimit)
	}
	for _, b := range []struct {
		name string
		end  bool
		t    *time.Time
	}{{"since", false, &opts.Since}, {"until", true, &opts.Until}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		t, err := client.ParseSearchTime(v, b.end)
		if err != nil {
			writeError(w, http.StatusBadRequest, b.name+": "+err.Error(), "")
			return
		}
		*b.t = t
	}
	if !opts.Since.IsZero() && !opts.Until.IsZero() && !opts.Since.Before(opts.Until) {
		writeError(w, http.StatusBadRequest, "the search's start is not before its end", "give a since date before the until date")
		return
	}
	msgs, err := cl.Search(r.Context(), q.Get("q"), opts)
	switch {
	case errors.Is(err, client.ErrSearchQuery):
		// The library's reason is its last part ("no words to search
		// for"), as 'postern search' shows it.
		reason := err.Error()
		if i := strings.LastIndex(reason, ": "); i >= 0 {
			reason = reason[i+2:]
		}
		writeError(w, http.StatusBadRequest, "cannot search for that: "+reason, fmt.Sprintf(`search for words, "words in a row" or from:NAME, at most %d of them`, client.MaxSearchTerms))
		return
	case errors.Is(err, client.ErrSearchIndex):
		writeError(w, http.StatusServiceUnavailable, "the search index cannot be used just now", "try again; another postern on this home may hold it")
		return
	case err != nil:
		s.fail(w, err)
		return
	}
	out := make([]messageJSON, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, s.toJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
}
