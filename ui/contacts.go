package ui

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/postern/postern/client"
)

// The contacts' pages: a contact with its safety number, the number as a
// QR code to scan with a phone, and its verification (the calls of
// 'postern contacts' and 'postern contacts verify').

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/contacts/{name}":         {handler: (*Server).apiContact, content: true},
		"GET /api/contacts/{name}/qr":      {handler: (*Server).apiContactQR, content: true},
		"POST /api/contacts/{name}/verify": {handler: (*Server).apiVerifyContact, content: true},
	})
}

func toContactJSON(c client.Contact) contactJSON {
	return contactJSON{
		Name: c.Name, Identity: c.Identity.String(), SafetyNumber: c.SafetyNumber,
		Added: c.Added.UTC(), Blocked: c.Blocked, Verification: c.Verification.String(),
		Restricted: c.Restricted.String(), RestrictedByMe: c.RestrictedByMe.String(),
		SendsRefused: c.SendsRefused, Team: teamNoticeOf(c),
	}
}

// findContact returns the contact named name, or answers the CLI's
// sentence for an unknown one itself.
func (s *Server) findContact(w http.ResponseWriter, cl *client.Client, name string) (client.Contact, bool) {
	cs, err := cl.Contacts()
	if err != nil {
		s.fail(w, err)
		return client.Contact{}, false
	}
	for _, c := range cs {
		if c.Name == name {
			return c, true
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no contact named %q", name), "open Contacts to see them")
	return client.Contact{}, false
}

func (s *Server) apiContact(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	if c, ok := s.findContact(w, cl, r.PathValue("name")); ok {
		writeJSON(w, http.StatusOK, toContactJSON(c))
	}
}

// apiContactQR draws the contact's safety number as a QR code
// (client.SafetyNumberQR: protocol/SPEC.md section 8 "Safety number").
func (s *Server) apiContactQR(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	if c, ok := s.findContact(w, cl, r.PathValue("name")); ok {
		writeQR(w, client.SafetyNumberQR(c.SafetyNumber))
	}
}

type verifyRequest struct {
	// Compared must be true: the person says they compared the number
	// with the contact's, in person or on a call.
	Compared bool `json:"compared"`
	// Number, if given, is the number the contact read out or their QR
	// code's text; it must match.
	Number string `json:"number,omitempty"`
}

type verifyResponse struct {
	Contact contactJSON `json:"contact"`
	Message string      `json:"message"`
}

// apiVerifyContact is 'postern contacts verify NAME [--number DIGITS]':
// it records that the person compared the safety number, and answers
// with the CLI's sentences.
func (s *Server) apiVerifyContact(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req verifyRequest
	if !readJSON(w, r, &req) {
		return
	}
	name := r.PathValue("name")
	if !req.Compared {
		// Verifying says the person compared: it is never implied.
		writeError(w, http.StatusBadRequest, "confirm that you compared the safety number (\"compared\": true)", "compare it with "+name+"'s, in person or on a call")
		return
	}
	switch err := cl.VerifyContact(name, req.Number); {
	case errors.Is(err, client.ErrUnknownContact):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no contact named %q", name), "open Contacts to see them")
		return
	case errors.Is(err, client.ErrSafetyNumberMismatch):
		writeError(w, http.StatusConflict, fmt.Sprintf("the number does not match %s's safety number; nothing was changed", name),
			"compare again, in person or on a call")
		return
	case err != nil:
		s.fail(w, err)
		return
	}
	c, ok := s.findContact(w, cl, name)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, verifyResponse{
		Contact: toContactJSON(c),
		Message: fmt.Sprintf("Verified %s. If their safety number changes, nothing is sent to them until you verify them again.", name),
	})
}
