package ui

import (
	"errors"
	"net/http"
	"time"

	"github.com/postern/postern/client"
)

// The disappearing-message timer of a conversation (client/disappear.go):
// read and set per contact. Setting it reaches the contact's devices and
// this person's other devices through the library; expired messages leave
// the page through the "expired" event (events.go).

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/disappear/{name}": {handler: (*Server).apiDisappearing, content: true},
		"PUT /api/disappear/{name}": {handler: (*Server).apiSetDisappearing, content: true},
	})
}

// disappearJSON is a conversation's timer: seconds 0 means off.
type disappearJSON struct {
	Contact    string `json:"contact"`
	Seconds    int64  `json:"seconds"`
	MinSeconds int64  `json:"min_seconds"`
	MaxSeconds int64  `json:"max_seconds"`
}

func timerJSON(name string, d time.Duration) disappearJSON {
	return disappearJSON{
		Contact: name, Seconds: int64(d / time.Second),
		MinSeconds: int64(client.MinDisappearing / time.Second), MaxSeconds: int64(client.MaxDisappearing / time.Second),
	}
}

func (s *Server) apiDisappearing(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	name := r.PathValue("name")
	d, err := cl.Disappearing(name)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, timerJSON(name, d))
}

type disappearRequest struct {
	Seconds *int64 `json:"seconds"`
}

// apiSetDisappearing sets the timer. A change that waits in the outbox
// (the contact's relay unreachable) is made all the same: the answer is
// the timer as set, with the queued sentence in "queued".
func (s *Server) apiSetDisappearing(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req disappearRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Seconds == nil || *req.Seconds < 0 || *req.Seconds > int64(client.MaxDisappearing/time.Second) {
		writeError(w, http.StatusBadRequest, "a timer runs from 5 seconds to 4 weeks, or 0 for off", "")
		return
	}
	name := r.PathValue("name")
	d := time.Duration(*req.Seconds) * time.Second
	err := cl.SetDisappearing(r.Context(), name, d)
	switch {
	case errors.Is(err, client.ErrDisappearing):
		writeError(w, http.StatusBadRequest, "a timer runs from 5 seconds to 4 weeks, or 0 for off", "")
		return
	case errors.Is(err, client.ErrQueued):
		writeJSON(w, http.StatusOK, struct {
			disappearJSON
			Queued string `json:"queued"`
		}{timerJSON(name, d), err.Error()})
		return
	case err != nil:
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, timerJSON(name, d))
}
