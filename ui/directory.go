package ui

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/postern/postern/client"
)

// The organisation directory for compose (client/directory.go): the
// directory this device holds, or the entries matching what is typed in
// the To field, best first ('postern directory show' and 'search').

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/directory": {handler: (*Server).apiDirectory, content: true},
	})
}

// maxDirectoryLimit caps a lookup's answer.
const maxDirectoryLimit = 50

// directoryJSON is the held directory.
type directoryJSON struct {
	Organisation   string                  `json:"organisation"`
	Version        uint64                  `json:"version"`
	Issued         time.Time               `json:"issued"`
	Administrators []string                `json:"administrators"`
	Entries        []client.DirectoryEntry `json:"entries"`
}

// apiDirectory answers GET /api/directory[?q=QUERY[&limit=N]]: with q, the
// matching entries (at most limit, default 8); without, the whole
// directory. 404 when this device holds none.
func (s *Server) apiDirectory(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	q := r.URL.Query()
	if !q.Has("q") {
		d, err := cl.Directory()
		if err != nil {
			s.directoryFail(w, err)
			return
		}
		out := directoryJSON{Organisation: d.Organisation, Version: d.Version, Issued: d.Issued.UTC(), Administrators: []string{}, Entries: d.Entries}
		for _, a := range d.Administrators {
			out.Administrators = append(out.Administrators, a.String())
		}
		if out.Entries == nil {
			out.Entries = []client.DirectoryEntry{}
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	limit := 8
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit must be a positive number", "")
			return
		}
		limit = min(n, maxDirectoryLimit)
	}
	es, err := cl.LookupDirectory(q.Get("q"), limit)
	if err != nil {
		s.directoryFail(w, err)
		return
	}
	if es == nil {
		es = []client.DirectoryEntry{}
	}
	writeJSON(w, http.StatusOK, es)
}

func (s *Server) directoryFail(w http.ResponseWriter, err error) {
	if errors.Is(err, client.ErrNoDirectory) {
		writeError(w, http.StatusNotFound, "this device holds no organisation directory", "it arrives from the organisation's administrators once this computer's policy names the organisation")
		return
	}
	s.fail(w, err)
}
