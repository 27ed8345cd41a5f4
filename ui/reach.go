package ui

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/postern/postern/client"
)

// Writing to a colleague of the organisation directory who is not yet a
// contact (client/reach.go, 'postern directory contact NAME'): compose's
// "Write" button beside such a person.

func init() {
	addRoutes(map[string]apiRoute{
		"POST /api/directory/people/{name}/contact": {handler: (*Server).apiReachColleague, content: true},
	})
}

// apiReachColleague answers POST /api/directory/people/{name}/contact:
// the staff member the held directory names {name} becomes a contact
// without an invitation; the answer is {"contact": …}.
func (s *Server) apiReachColleague(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	name := r.PathValue("name")
	c, err := cl.ReachColleague(r.Context(), name)
	switch {
	case errors.Is(err, client.ErrNotEnrolled), errors.Is(err, client.ErrNoDirectory):
		s.directoryFail(w, client.ErrNoDirectory)
	case errors.Is(err, client.ErrNoReachSecret):
		writeError(w, http.StatusConflict, "This device cannot reach colleagues through the directory yet.", "it can once an administrator publishes the directory again")
	case errors.Is(err, client.ErrNotInDirectory):
		writeError(w, http.StatusNotFound, fmt.Sprintf("%s is not a colleague in your organisation's directory.", name), "")
	case errors.Is(err, client.ErrAlreadyContact):
		writeError(w, http.StatusConflict, fmt.Sprintf("%s is one of your contacts already.", name), "")
	case errors.Is(err, client.ErrColleagueNotPublished):
		writeError(w, http.StatusConflict, fmt.Sprintf("%s cannot be reached through the directory yet.", name), "their device makes it possible when it next connects; try again later")
	case errors.Is(err, client.ErrIdentityMismatch):
		writeError(w, http.StatusConflict, fmt.Sprintf("The keys given for %s are not the ones the directory lists; nothing was added.", name), "tell your organisation's administrators")
	case err != nil:
		s.fail(w, err)
	default:
		writeJSON(w, http.StatusOK, reachResponse{Contact: toContactJSON(c)})
	}
}

type reachResponse struct {
	Contact contactJSON `json:"contact"`
}
