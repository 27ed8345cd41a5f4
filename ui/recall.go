package ui

import (
	"errors"
	"net/http"

	"github.com/postern/postern/client"
)

// Deleting a message for everyone (client/recall.go): the sender's
// "Delete for everyone" on the message screen. The page learns of a
// message deleted elsewhere through the "recalled" event (events.go).

func init() {
	addRoutes(map[string]apiRoute{
		"POST /api/messages/{id}/recall": {handler: (*Server).apiRecall, content: true},
	})
}

// recallJSON is the answer to a recall: the message as stored now and,
// when some device could not be told yet, why (the outbox retries what
// it could queue).
type recallJSON struct {
	messageJSON
	Warning string `json:"warning,omitempty"`
}

func (s *Server) apiRecall(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	m, err := cl.Recall(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, client.ErrNotSender):
		writeError(w, http.StatusForbidden, "Only the person who sent a message can delete it for everyone.", "")
		return
	case err != nil && m.ID == "":
		s.fail(w, err)
		return
	}
	out := recallJSON{messageJSON: s.toJSON(m)}
	if err != nil {
		out.Warning = "Deleted here, but not every device could be told yet; Postern keeps trying."
		s.log.Info("a recall could not reach every device", "err", err)
	}
	writeJSON(w, http.StatusOK, out)
}
