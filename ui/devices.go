package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/postern/postern/client"
)

// The devices' page: link a new device ('postern device link'), revoke
// one ('postern device revoke'), and the alerts of devices linked to
// this person, kept until acknowledged.
//
// A link code is a capability: whoever has it until it expires can ask
// to become a device of this person (the person still confirms the name
// it gives). It is kept only in this process's memory while the link
// waits, given only to the signed-in page (and integrations) by the
// link's endpoints, never logged, and dropped when the link ends or the
// app locks.

func init() {
	addRoutes(map[string]apiRoute{
		"POST /api/devices/link":            {handler: (*Server).apiLinkStart, content: true},
		"GET /api/devices/link":             {handler: (*Server).apiLinkState, content: true},
		"GET /api/devices/link/qr":          {handler: (*Server).apiLinkQR, content: true},
		"POST /api/devices/link/confirm":    {handler: (*Server).apiLinkConfirm, content: true},
		"DELETE /api/devices/link":          {handler: (*Server).apiLinkCancel, content: true},
		"POST /api/devices/{id}/revoke":     {handler: (*Server).apiRevokeDevice, content: true},
		"GET /api/devices/alerts":           {handler: (*Server).apiDeviceAlerts, content: true},
		"POST /api/devices/alerts/{id}/ack": {handler: (*Server).apiAckDeviceAlert, content: true},
	})
}

// The phases of a link, as GET /api/devices/link names them.
const (
	linkNone     = "none"     // no link was started (or the app locked since)
	linkStarting = "starting" // making the code
	linkWaiting  = "waiting"  // the code is shown; waiting for the new device
	linkConfirm  = "confirm"  // a device asked: the person says whether to link it
	linkLinking  = "linking"  // accepted: answering it
	linkLinked   = "linked"
	linkDeclined = "declined"
	linkFailed   = "failed"
	linkCanceled = "canceled"
)

// linkState is the one link this app runs at a time.
type linkState struct {
	mu  sync.Mutex
	cur *linkSession
}

type linkSession struct {
	cancel  context.CancelFunc
	answer  chan bool     // the person's answer in phase confirm
	taken   chan struct{} // closed once the answer was taken
	phase   string
	code    string // only while starting/waiting/confirm
	expires time.Time
	asking  string // the name the asking device gave itself
	info    client.DeviceInfo
	msg     string // the CLI's sentence for the outcome
	hint    string
}

// stop cancels the link, if any, and forgets it and its code (at lock).
func (l *linkState) stop() {
	l.mu.Lock()
	cur := l.cur
	l.cur = nil
	l.mu.Unlock()
	if cur != nil {
		cur.cancel()
	}
}

type linkJSON struct {
	State   string      `json:"state"`
	Code    string      `json:"code,omitempty"`
	Expires *time.Time  `json:"expires,omitempty"`
	Asking  string      `json:"asking,omitempty"`
	Device  *deviceJSON `json:"device,omitempty"`
	Message string      `json:"message,omitempty"`
	Hint    string      `json:"hint,omitempty"`
}

func toDeviceJSON(d client.DeviceInfo) deviceJSON {
	return deviceJSON{ID: d.ID.String(), Name: d.Name, This: d.This, Linked: d.Linked.UTC(), Relay: d.Relay}
}

// view is the link as the API shows it; l.mu is held.
func (ls *linkSession) view() linkJSON {
	if ls == nil {
		return linkJSON{State: linkNone}
	}
	j := linkJSON{State: ls.phase, Asking: ls.asking, Message: ls.msg, Hint: ls.hint}
	switch ls.phase {
	case linkWaiting, linkConfirm:
		j.Code = ls.code
		e := ls.expires
		j.Expires = &e
	case linkLinked:
		d := toDeviceJSON(ls.info)
		j.Device = &d
	}
	return j
}

func (s *Server) linkView() linkJSON {
	s.links.mu.Lock()
	defer s.links.mu.Unlock()
	return s.links.cur.view()
}

// apiLinkStart starts linking a new device: it cancels a link already
// running, makes a code and answers with it. The link then runs in the
// background: the page follows it with GET /api/devices/link.
func (s *Server) apiLinkStart(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	s.links.stop()
	ctx, cancel := context.WithCancel(context.Background())
	ls := &linkSession{cancel: cancel, answer: make(chan bool, 1), taken: make(chan struct{}), phase: linkStarting}
	shown := make(chan struct{})
	s.links.mu.Lock()
	s.links.cur = ls
	s.links.mu.Unlock()
	// set changes ls under the lock, unless another link replaced it.
	set := func(f func()) {
		s.links.mu.Lock()
		defer s.links.mu.Unlock()
		f()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		info, err := cl.LinkDevice(ctx, &client.LinkOptions{
			Show: func(code string) {
				exp, err := client.LinkCodeExpiry(code)
				if err != nil {
					exp = time.Now().Add(10 * time.Minute)
				}
				set(func() { ls.code, ls.expires, ls.phase = code, exp.UTC(), linkWaiting })
				close(shown)
			},
			Confirm: func(name string) bool {
				set(func() { ls.asking, ls.phase = name, linkConfirm })
				var ok bool
				select {
				case ok = <-ls.answer:
				case <-ctx.Done():
				case <-time.After(time.Until(ls.expires)):
				}
				set(func() {
					ls.code = "" // spent either way
					if ok {
						ls.phase = linkLinking
					}
				})
				close(ls.taken)
				return ok
			},
		})
		set(func() {
			ls.code = ""
			switch {
			case err == nil:
				ls.phase, ls.info = linkLinked, info
				ls.msg = fmt.Sprintf("Linked %s (%s). Your other devices show an alert; your contacts learn of it when it first writes to them.", info.Name, info.ID.Short())
			case errors.Is(err, client.ErrLinkDeclined):
				ls.phase, ls.msg = linkDeclined, "Not linked."
			case ctx.Err() != nil && !errors.Is(err, client.ErrLinkExpired):
				ls.phase, ls.msg = linkCanceled, "Not linked: the link was canceled."
			default:
				ls.phase = linkFailed
				ls.msg, ls.hint = s.explain(err)
			}
		})
		if err != nil && !errors.Is(err, client.ErrLinkDeclined) && ctx.Err() == nil {
			s.log.Info("ui: linking a device failed", "err", err)
		}
	}()
	select {
	case <-shown:
	case <-done:
	case <-r.Context().Done():
	}
	writeJSON(w, http.StatusOK, s.linkView())
}

func (s *Server) apiLinkState(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	writeJSON(w, http.StatusOK, s.linkView())
}

// apiLinkQR draws the waiting link's code as a QR code.
func (s *Server) apiLinkQR(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	v := s.linkView()
	if v.Code == "" {
		writeError(w, http.StatusNotFound, "no link code is waiting", "start linking a device on the Devices page")
		return
	}
	writeQR(w, v.Code)
}

// apiLinkConfirm answers the question of a device that asked to be
// linked: {"link": true} links it, false refuses it ("Not linked.").
func (s *Server) apiLinkConfirm(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	var req struct {
		Link *bool `json:"link"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.Link == nil {
		writeError(w, http.StatusBadRequest, "say whether to link the device (\"link\": true or false)", "")
		return
	}
	s.links.mu.Lock()
	ls := s.links.cur
	if ls == nil || ls.phase != linkConfirm {
		s.links.mu.Unlock()
		writeError(w, http.StatusConflict, "no device is asking to be linked", "")
		return
	}
	select {
	case ls.answer <- *req.Link:
	default: // answered already
	}
	s.links.mu.Unlock()
	// The answer is taken at once; what follows shows in the state.
	select {
	case <-ls.taken:
	case <-r.Context().Done():
	}
	writeJSON(w, http.StatusOK, s.linkView())
}

// apiLinkCancel stops the link: its code no longer works.
func (s *Server) apiLinkCancel(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	s.links.mu.Lock()
	ls := s.links.cur
	s.links.mu.Unlock()
	if ls != nil {
		ls.cancel()
	}
	w.WriteHeader(http.StatusNoContent)
}

type revokeResponse struct {
	Device  deviceJSON `json:"device"`
	Message string     `json:"message"`
}

// apiRevokeDevice is 'postern device revoke NAME|ID': {id} is the
// device's ID (at least 8 hex digits of its start) or its name.
func (s *Server) apiRevokeDevice(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	info, err := cl.RevokeDevice(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, client.ErrNoSuchDevice):
		s.failWith(w, http.StatusNotFound, err)
		return
	case errors.Is(err, client.ErrRevokeSelf):
		s.failWith(w, http.StatusConflict, err)
		return
	case err != nil:
		s.fail(w, err)
		return
	}
	name := "(unnamed)"
	if info.Name != "" {
		name = info.Name
	}
	writeJSON(w, http.StatusOK, revokeResponse{
		Device:  toDeviceJSON(info),
		Message: fmt.Sprintf("Revoked %s (%s). The relay refuses it from now on; it deletes its keys and messages the next time it reaches the relay.", name, info.ID.Short()),
	})
}

// failWith is fail with the status given.
func (s *Server) failWith(w http.ResponseWriter, status int, err error) {
	msg, hint := s.explain(err)
	writeError(w, status, msg, hint)
}

type deviceAlertJSON struct {
	ID      string    `json:"id"`
	Device  string    `json:"device"`
	Name    string    `json:"name,omitempty"`
	Linked  time.Time `json:"linked"`
	Noticed time.Time `json:"noticed"`
}

// apiDeviceAlerts lists the devices linked to this person whose alert
// was not acknowledged on this device, oldest first.
func (s *Server) apiDeviceAlerts(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	as, err := cl.DeviceAlerts()
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]deviceAlertJSON, 0, len(as))
	for _, a := range as {
		out = append(out, deviceAlertJSON{ID: a.ID, Device: a.Device.String(), Name: a.Name, Linked: a.Linked.UTC(), Noticed: a.Noticed.UTC()})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiAckDeviceAlert(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	if err := cl.AcknowledgeDeviceAlert(r.PathValue("id")); err != nil {
		if errors.Is(err, client.ErrNoMessage) {
			writeError(w, http.StatusNotFound, "no such alert", "")
			return
		}
		s.fail(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
