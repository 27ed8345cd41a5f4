package ui

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/postern/postern/client"
)

// heartbeat is how often an idle event stream gets a comment line, so that
// a connection gone dead is noticed by both ends.
const heartbeat = 25 * time.Second

// apiEvents streams the client's events as Server-Sent Events until the
// request ends or the app locks (then a last "locked" event):
//
//	event: message     data: a message (messageJSON), new or updated (sent)
//	event: contact     data: {"name": ..., "change": ...}
//	event: connection  data: {"state": "online"|"reconnecting"|"offline"}
//	event: missed      data: {} (events were dropped: read /api/inbox again)
//	event: receipt     data: a sent message whose Delivered or ReadReceipt
//	                   was just set (receipts)
//	event: alert       data: a notice about this person's own devices
//	event: expired     data: {"id": ..., "conversation": ...}: a
//	                   disappearing message was deleted (disappear.go)
//	event: queue       data: {"team": ...}: a colleague's change of a
//	                   team's queue conversation, or their read of it,
//	                   arrived (team.go)
//	event: status      data: {"name": ...}: a colleague's availability
//	                   status arrived (status.go)
//	event: role        data: {"role": ..., "team": ...}: a role account's
//	                   holder changed, here or by a colleague (roles.go)
//	event: locked      data: {}
//
// Only an authenticated caller of an unlocked app gets here (route).
func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, "event streams are not supported here", "")
		return
	}
	ch, err := cl.Subscribe(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": stream\n\n")
	fl.Flush()
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-tick.C:
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			fl.Flush()
		case ev, open := <-ch:
			if !open {
				// The client was closed: the app locked.
				writeEvent(w, "locked", struct{}{})
				fl.Flush()
				return
			}
			name, data := s.eventData(ev)
			if name == "" {
				continue
			}
			if err := writeEvent(w, name, data); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

// eventData is the name and payload of ev on the stream; "" for events
// the page has no use for.
func (s *Server) eventData(ev client.Event) (string, any) {
	switch ev.Kind {
	case client.EventMessage, client.EventSent:
		return "message", s.toJSON(ev.Message)
	case client.EventReceipt:
		return "receipt", s.toJSON(ev.Message)
	case client.EventAlert:
		return "alert", s.toJSON(ev.Message)
	case client.EventContact:
		return "contact", map[string]string{"name": ev.Contact, "change": ev.Change.String()}
	case client.EventConnection:
		return "connection", map[string]string{"state": ev.State.String()}
	case client.EventMissed:
		return "missed", struct{}{}
	case client.EventRecalled:
		return "recalled", s.toJSON(ev.Message)
	case client.EventExpired:
		return "expired", map[string]string{"id": ev.Message.ID, "conversation": ev.Message.Conversation}
	case client.EventQueue:
		return "queue", map[string]string{"team": ev.Team}
	case client.EventStatus:
		return "status", map[string]string{"name": ev.Contact}
	case client.EventRole:
		return "role", map[string]string{"role": ev.Role, "team": ev.Team}
	}
	return "", nil
}

// writeEvent writes one event; JSON has no raw newline, so data is one
// line.
func writeEvent(w http.ResponseWriter, name string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
	return err
}
