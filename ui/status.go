package ui

import (
	"errors"
	"net/http"
	"time"

	"github.com/postern/postern/client"
)

// Availability and do-not-disturb (client/status.go): the statuses this
// device holds, for compose ("Bob is off duty; your message also goes
// to Carol") and the settings screen, where a staff member sets their
// own ('postern status' and 'status set').

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/status":  {handler: (*Server).apiStatuses, content: true},
		"POST /api/status": {handler: (*Server).apiSetStatus, content: true},
	})
}

// statusJSON is one person's status.
type statusJSON struct {
	Name         string     `json:"name"` // a contact's name, "me", or the directory's name
	Identity     string     `json:"identity"`
	Availability string     `json:"availability"` // "available", "busy" or "off duty"
	Set          time.Time  `json:"set"`
	DNDUntil     *time.Time `json:"dnd_until,omitempty"`
	DoNotDisturb bool       `json:"do_not_disturb"`
	ForwardTo    string     `json:"forward_to,omitempty"`
	Forwarding   bool       `json:"forwarding"`
}

func toStatusJSON(s client.Status) statusJSON {
	j := statusJSON{
		Name: s.Name, Identity: s.Identity.String(), Availability: s.Availability.String(), Set: s.Set.UTC(),
		DoNotDisturb: s.DoNotDisturb, ForwardTo: s.ForwardTo, Forwarding: s.Forwarding,
	}
	if !s.DNDUntil.IsZero() {
		u := s.DNDUntil.UTC()
		j.DNDUntil = &u
	}
	return j
}

// apiStatuses answers GET /api/status: the statuses held, by name (this
// person's as "me"); 404 without an organisation directory.
func (s *Server) apiStatuses(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	if _, err := cl.Directory(); err != nil {
		s.directoryFail(w, err)
		return
	}
	ss, err := cl.Statuses()
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]statusJSON, 0, len(ss))
	for _, st := range ss {
		out = append(out, toStatusJSON(st))
	}
	writeJSON(w, http.StatusOK, out)
}

// setStatusRequest is POST /api/status's body.
type setStatusRequest struct {
	Availability string `json:"availability"` // available, busy or off
	// DNDMinutes: do-not-disturb for that long from now (0: none).
	DNDMinutes int    `json:"dnd_minutes,omitempty"`
	ForwardTo  string `json:"forward_to,omitempty"`
}

// maxDNDMinutes bounds a do-not-disturb set from the page: four weeks.
const maxDNDMinutes = 4 * 7 * 24 * 60

// apiSetStatus answers POST /api/status: signs and sends this person's
// status; the status as set, with how many colleagues it went to.
func (s *Server) apiSetStatus(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req setStatusRequest
	if !readJSON(w, r, &req) {
		return
	}
	a, err := client.ParseAvailability(req.Availability)
	if err != nil {
		writeError(w, http.StatusBadRequest, "availability must be available, busy or off", "")
		return
	}
	if req.DNDMinutes < 0 || req.DNDMinutes > maxDNDMinutes {
		writeError(w, http.StatusBadRequest, "do-not-disturb runs from 1 minute to 4 weeks", "")
		return
	}
	o := client.StatusOptions{Availability: a, ForwardTo: req.ForwardTo}
	if req.DNDMinutes > 0 {
		o.DNDUntil = time.Now().Add(time.Duration(req.DNDMinutes) * time.Minute)
	}
	set, err := cl.SetStatus(r.Context(), o)
	switch {
	case errors.Is(err, client.ErrNoDirectory):
		s.directoryFail(w, err)
	case errors.Is(err, client.ErrInvalidStatus):
		writeError(w, http.StatusBadRequest, err.Error(), "")
	case errors.Is(err, client.ErrUnknownContact):
		writeError(w, http.StatusNotFound, req.ForwardTo+" is neither a contact nor in the organisation directory", "")
	case err != nil:
		s.fail(w, err)
	default:
		writeJSON(w, http.StatusOK, map[string]any{"status": toStatusJSON(set.Status), "sent": set.Sent, "unreached": set.Unreached})
	}
}
