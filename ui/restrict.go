package ui

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/postern/postern/client"
)

// Restrictions (client/restrict.go; protocol/SPEC.md section 9
// "Restrictions"). On the organisation's side, a contact's page restricts
// them at one of the three levels and restores their access. On the
// restricted person's side, a refused send answers the level's sentence
// (restrictedError below), the conversation says so while they are opted
// out, and the opt-in screen shows the terms of use and records their
// acceptance (client.OptIn) before compose works again.

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/contacts/{name}/restriction":    {handler: (*Server).apiRestriction, content: true},
		"PUT /api/contacts/{name}/restriction":    {handler: (*Server).apiRestrict, content: true},
		"DELETE /api/contacts/{name}/restriction": {handler: (*Server).apiUnrestrict, content: true},
		"POST /api/contacts/{name}/optin":         {handler: (*Server).apiOptIn, content: true},
	})
}

// restrictionLevels are the levels' names in the API, as the CLI's
// --json and client.Restriction.String() spell them.
var restrictionLevels = map[string]client.Restriction{
	"service": client.RestrictedService,
	"new":     client.RestrictedNew,
	"replies": client.RestrictedReplies,
}

// levelSentence is the sentence this app's library gives a person
// restricted at level, with the organisation it was configured with.
func (s *Server) levelSentence(level client.Restriction) string {
	return (&client.RestrictedError{Level: level, Organisation: s.organisation()}).Error()
}

func (s *Server) organisation() string {
	if s.clientOpt == nil {
		return ""
	}
	return s.clientOpt.Organisation
}

// restrictionJSON is a contact's restrictions both ways.
type restrictionJSON struct {
	Contact string `json:"contact"`
	// ByMe: the level at which you restricted the contact ("" none).
	ByMe string `json:"by_me"`
	// Restricted: the contact restricted your access at this level
	// ("" none), at RestrictedAt, and you are opted out: nothing is sent
	// to them until you opt in again. Sentence is what you are told.
	Restricted   string     `json:"restricted"`
	RestrictedAt *time.Time `json:"restricted_at,omitempty"`
	Sentence     string     `json:"sentence,omitempty"`
	// SendsRefused: compose refuses to send now (a team's level 2 or 3
	// may stop only one of its two routes).
	SendsRefused bool `json:"sends_refused,omitempty"`
	// OptedIn, OptInTerms: when you last opted in again, to which
	// version of the terms of use.
	OptedIn    *time.Time `json:"opted_in,omitempty"`
	OptInTerms string     `json:"opt_in_terms,omitempty"`
	// TermsVersion is the version of the terms an opt-in accepts now.
	TermsVersion string `json:"terms_version"`
	// Sentences: what a person restricted at each level is told.
	Sentences map[string]string `json:"sentences"`
	// Message says what a change did.
	Message string `json:"message,omitempty"`
}

func (s *Server) toRestrictionJSON(c client.Contact) restrictionJSON {
	j := restrictionJSON{
		Contact: c.Name, ByMe: c.RestrictedByMe.String(), Restricted: c.Restricted.String(),
		SendsRefused: c.SendsRefused, OptInTerms: c.OptInTerms, TermsVersion: TermsVersion, Sentences: map[string]string{},
	}
	for name, l := range restrictionLevels {
		j.Sentences[name] = s.levelSentence(l)
	}
	if c.Restricted != 0 {
		j.Sentence = s.levelSentence(c.Restricted)
		if !c.RestrictedAt.IsZero() {
			t := c.RestrictedAt.UTC()
			j.RestrictedAt = &t
		}
	}
	if !c.OptedIn.IsZero() {
		t := c.OptedIn.UTC()
		j.OptedIn = &t
	}
	return j
}

func (s *Server) apiRestriction(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	if c, ok := s.findContact(w, cl, r.PathValue("name")); ok {
		writeJSON(w, http.StatusOK, s.toRestrictionJSON(c))
	}
}

// levelWords name the levels in the answers' sentences.
var levelWords = map[client.Restriction]string{
	client.RestrictedService: "from the whole service",
	client.RestrictedNew:     "from sending new messages",
	client.RestrictedReplies: "from replying",
}

type restrictRequest struct {
	Level string `json:"level"`
}

// apiRestrict restricts the contact at the level asked (restricting again
// replaces the level). A bad level changes nothing.
func (s *Server) apiRestrict(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req restrictRequest
	if !readJSON(w, r, &req) {
		return
	}
	level, ok := restrictionLevels[req.Level]
	if !ok {
		writeError(w, http.StatusBadRequest, `a restriction's level is "service" (the whole service), "new" (new messages) or "replies" (replies)`, "see docs/API.md")
		return
	}
	c, ok := s.findContact(w, cl, r.PathValue("name"))
	if !ok {
		return
	}
	if err := cl.Restrict(r.Context(), c.Name, level); err != nil {
		s.failRestrict(w, c.Name, err)
		return
	}
	s.writeRestriction(w, cl, c.Name, fmt.Sprintf("%s is restricted %s: the relay refuses what they send you, and they are told why. What you send still reaches them.", c.Name, levelWords[level]))
}

// apiUnrestrict restores the contact's access; their Postern asks them to
// accept the terms of use again before it sends.
func (s *Server) apiUnrestrict(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	c, ok := s.findContact(w, cl, r.PathValue("name"))
	if !ok {
		return
	}
	if c.RestrictedByMe == 0 {
		s.writeRestriction(w, cl, c.Name, fmt.Sprintf("%s was not restricted; nothing changed.", c.Name))
		return
	}
	if err := cl.Unrestrict(r.Context(), c.Name); err != nil {
		s.failRestrict(w, c.Name, err)
		return
	}
	s.writeRestriction(w, cl, c.Name, fmt.Sprintf("%s's access is restored. They write to you again once they accept the terms of use again; tell them their access is restored.", c.Name))
}

func (s *Server) failRestrict(w http.ResponseWriter, name string, err error) {
	if errors.Is(err, client.ErrContactBlocked) {
		writeError(w, http.StatusConflict, fmt.Sprintf("you blocked %s, which refuses their messages already; nothing was changed", name),
			"unblock them first to restrict them instead")
		return
	}
	s.fail(w, err)
}

func (s *Server) writeRestriction(w http.ResponseWriter, cl *client.Client, name, msg string) {
	c, ok := s.findContact(w, cl, name)
	if !ok {
		return
	}
	j := s.toRestrictionJSON(c)
	j.Message = msg
	writeJSON(w, http.StatusOK, j)
}

type optInRequest struct {
	// Accept must be true: the person accepts the terms of use.
	Accept bool `json:"accept"`
	// TermsVersion is the version of the terms the page showed; it must
	// be TermsVersion.
	TermsVersion string `json:"terms_version"`
}

// apiOptIn is 'postern optin NAME': the person accepts the terms of use
// of the version shown, recorded with its time, and writes to the
// contact again. Anything refused changes nothing.
func (s *Server) apiOptIn(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req optInRequest
	if !readJSON(w, r, &req) {
		return
	}
	if !req.Accept {
		writeError(w, http.StatusBadRequest, `accept the terms of use to opt in again ("accept": true)`, "")
		return
	}
	c, ok := s.findContact(w, cl, r.PathValue("name"))
	if !ok {
		return
	}
	switch {
	case req.TermsVersion != TermsVersion:
		writeError(w, http.StatusConflict, "the terms of use changed: the version now is "+TermsVersion, "read them again and accept that version")
		return
	case c.Restricted == 0:
		writeError(w, http.StatusConflict, fmt.Sprintf("%s has not restricted your access: there is nothing to opt in to", c.Name), "")
		return
	}
	if err := cl.OptIn(c.Name, TermsVersion); err != nil {
		s.fail(w, err)
		return
	}
	s.writeRestriction(w, cl, c.Name, fmt.Sprintf("You opted in again to writing to %s and accepted the terms of use, version %s. If your access was not restored, your next message is refused again.", c.Name, TermsVersion))
}

// restrictedErrorJSON answers a send refused because of a restriction:
// the level's sentence exactly as the library says it, with no hint (it
// says whom to ask), and the level, so that the page can offer the
// opt-in.
type restrictedErrorJSON struct {
	Error       string `json:"error"`
	Restriction string `json:"restriction"`
	// OptedOut: refused by this device, not the relay: the person has
	// not opted in again since (POST /api/contacts/{name}/optin).
	OptedOut bool `json:"opted_out,omitempty"`
}

// writeRestricted answers err if it is a restriction (true), else leaves
// it to fail.
func writeRestricted(w http.ResponseWriter, err error) bool {
	var re *client.RestrictedError
	if !errors.As(err, &re) {
		return false
	}
	writeJSON(w, http.StatusForbidden, restrictedErrorJSON{Error: re.Error(), Restriction: re.Level.String(), OptedOut: re.OptIn})
	return true
}
