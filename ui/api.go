package ui

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/postern/postern/client"
)

// maxBody bounds a request body: a message's text and subject with room
// for JSON escaping.
const maxBody = 8 * client.MaxTextSize

// apiRoute is one endpoint. content marks those that need the unlocked
// client: they answer 423 while locked.
type apiRoute struct {
	handler func(s *Server, w http.ResponseWriter, r *http.Request, cl *client.Client)
	content bool
	// raw: the body is a file's bytes (application/octet-stream), bounded
	// by the endpoint rather than by maxBody.
	raw bool
}

// addRoutes adds endpoints to apiRoutes: each screen's file adds its own
// from an init function. A pattern given twice is a programming error.
func addRoutes(routes map[string]apiRoute) {
	for pattern, rt := range routes {
		if _, dup := apiRoutes[pattern]; dup {
			panic("ui: endpoint " + pattern + " added twice")
		}
		apiRoutes[pattern] = rt
	}
}

// apiRoutes are the API's endpoints.
var apiRoutes = map[string]apiRoute{
	"GET /api/state":         {handler: (*Server).apiState},
	"POST /api/unlock":       {handler: (*Server).apiUnlock},
	"POST /api/lock":         {handler: (*Server).apiLock},
	"POST /api/ping":         {handler: (*Server).apiPing, content: true},
	"GET /api/whoami":        {handler: (*Server).apiWhoami, content: true},
	"GET /api/inbox":         {handler: (*Server).apiInbox, content: true},
	"GET /api/messages/{id}": {handler: (*Server).apiMessage, content: true},
	"POST /api/send":         {handler: (*Server).apiSend, content: true},
	"GET /api/contacts":      {handler: (*Server).apiContacts, content: true},
	"GET /api/devices":       {handler: (*Server).apiDevices, content: true},
	"GET /api/events":        {handler: (*Server).apiEvents, content: true},

	"GET /api/folders":             {handler: (*Server).apiFolders, content: true},
	"POST /api/folders":            {handler: (*Server).apiCreateFolder, content: true},
	"PATCH /api/folders/{id}":      {handler: (*Server).apiRenameFolder, content: true},
	"DELETE /api/folders/{id}":     {handler: (*Server).apiDeleteFolder, content: true},
	"POST /api/messages/{id}/move": {handler: (*Server).apiMove, content: true},
	"GET /api/thread/{id}":         {handler: (*Server).apiThread, content: true},
	"GET /api/drafts":              {handler: (*Server).apiDrafts, content: true},
	"GET /api/drafts/{id}":         {handler: (*Server).apiDraft, content: true},
	"POST /api/drafts":             {handler: (*Server).apiSaveDraft, content: true},
	"DELETE /api/drafts/{id}":      {handler: (*Server).apiDeleteDraft, content: true},
	"POST /api/drafts/{id}/send":   {handler: (*Server).apiSendDraft, content: true},
	"GET /api/settings":            {handler: (*Server).apiSettings, content: true},
	"PUT /api/settings":            {handler: (*Server).apiPutSettings, content: true},
}

// newAPIMux routes /api/ to the endpoints, each behind the checks of
// route.
func (s *Server) newAPIMux() *http.ServeMux {
	m := http.NewServeMux()
	for pattern, rt := range apiRoutes {
		m.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			s.route(w, r, pattern, rt)
		})
	}
	m.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint", "see docs/API.md")
	})
	return m
}

// serveAPI authenticates the caller before anything else, even a 404.
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	who, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	s.api.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, who)))
}

// route checks a JSON body's type and size (a raw body's type only),
// refuses content while locked, counts the request as activity, then runs
// the endpoint.
func (s *Server) route(w http.ResponseWriter, r *http.Request, pattern string, rt apiRoute) {
	handler := rt.handler
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case rt.raw && r.ContentLength != 0 && (err != nil || mt != "application/octet-stream"):
			writeError(w, http.StatusUnsupportedMediaType, "the request body must be the file's bytes (Content-Type: application/octet-stream)", "")
			return
		case !rt.raw && r.ContentLength != 0 && (err != nil || mt != "application/json"):
			writeError(w, http.StatusUnsupportedMediaType, "the request body must be JSON (Content-Type: application/json)", "")
			return
		case !rt.raw:
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		}
	}
	var cl *client.Client
	if rt.content {
		var terms bool
		cl, terms = s.clientAndTerms()
		switch {
		case cl == nil && s.needsSetup():
			writeNeedsSetup(w)
			return
		case cl == nil:
			writeLocked(w)
			return
		case !terms:
			writeTermsNeeded(w)
			return
		}
		if pattern != "GET /api/events" {
			s.touch() // an open event stream is no activity
		}
	}
	handler(s, w, r, cl)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// apiError is every error's body: the sentence the CLI gives, and its
// hint if it has one.
type apiError struct {
	Error string `json:"error"`
	Hint  string `json:"hint,omitempty"`
}

func writeError(w http.ResponseWriter, status int, msg, hint string) {
	writeJSON(w, status, apiError{Error: msg, Hint: hint})
}

// lockedSentence is the answer of every content endpoint while locked.
const lockedSentence = "Postern is locked"

func writeLocked(w http.ResponseWriter) {
	writeError(w, http.StatusLocked, lockedSentence, "unlock it with your passphrase")
}

// fail answers err from the library in the CLI's words, with a status
// that says whose fault it is.
func (s *Server) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, client.ErrClosed) {
		writeLocked(w) // locked while the request ran
		return
	}
	if writeRestricted(w, err) { // restrict.go: the level's sentence, exactly
		return
	}
	msg, hint := s.explain(err)
	writeError(w, statusOf(err), msg, hint)
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, client.ErrWrongPassphrase):
		return http.StatusForbidden
	case errors.Is(err, client.ErrUnknownContact), errors.Is(err, client.ErrNoMessage),
		errors.Is(err, client.ErrNoFolder), errors.Is(err, client.ErrNoDraft):
		return http.StatusNotFound
	case errors.Is(err, client.ErrFolderName), errors.Is(err, client.ErrSystemFolder),
		errors.Is(err, client.ErrFolderNotAllowed), errors.Is(err, client.ErrDraftIncomplete):
		return http.StatusBadRequest
	case errors.Is(err, client.ErrFolderExists), errors.Is(err, client.ErrTooManyFolders),
		errors.Is(err, client.ErrTooManyDrafts):
		return http.StatusConflict
	case errors.Is(err, client.ErrTooLong), errors.Is(err, client.ErrInvalidText),
		errors.Is(err, client.ErrInvalidSubject), errors.Is(err, client.ErrReplyTo),
		errors.Is(err, client.ErrEmptyPassphrase):
		return http.StatusBadRequest
	case errors.Is(err, client.ErrTooManyFiles), errors.Is(err, client.ErrInvalidAttachment),
		errors.Is(err, client.ErrPatientContext), errors.Is(err, client.ErrRecordInvalid):
		return http.StatusBadRequest
	case errors.Is(err, client.ErrNoAttachments):
		return http.StatusNotFound
	case errors.Is(err, client.ErrBlocked), errors.Is(err, client.ErrContactBlocked),
		errors.Is(err, client.ErrIdentityChanged):
		return http.StatusConflict
	case errors.Is(err, client.ErrRestricted):
		return http.StatusForbidden // the organisation's decision: the sentence says whom to ask
	case errors.Is(err, client.ErrNotInitialised):
		return http.StatusNotFound
	}
	return http.StatusBadGateway // the relay, the disk: not the request
}

// readJSON decodes the request body into v, answering a bad one itself.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	// One value and nothing after it: of a body with two, which one was
	// meant is a guess.
	if err := d.Decode(v); err != nil || d.Decode(&struct{}{}) != io.EOF {
		writeError(w, http.StatusBadRequest, "the request body is not the JSON this endpoint takes", "see docs/API.md")
		return false
	}
	return true
}

type stateJSON struct {
	Locked      bool  `json:"locked"`
	IdleTimeout int64 `json:"idle_timeout_seconds"`
	// Setup: the home holds no identity yet; the page shows the first
	// run (setup.go).
	Setup bool `json:"setup,omitempty"`
	// TermsNeeded: unlocked, but the terms of use of this version are not
	// accepted on this device (TermsVersion); content is refused.
	TermsNeeded bool `json:"terms_needed,omitempty"`
}

func (s *Server) state() stateJSON {
	cl, terms := s.clientAndTerms()
	return stateJSON{
		Locked: cl == nil, IdleTimeout: int64(s.lockTimeout() / time.Second),
		Setup: cl == nil && s.needsSetup(), TermsNeeded: cl != nil && !terms,
	}
}

func (s *Server) apiState(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	writeJSON(w, http.StatusOK, s.state())
}

func (s *Server) apiUnlock(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	var req struct {
		Passphrase string `json:"passphrase"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	if req.Passphrase == "" {
		s.fail(w, client.ErrEmptyPassphrase)
		return
	}
	if err := s.unlock([]byte(req.Passphrase)); err != nil {
		s.log.Info("ui: unlock refused")
		s.fail(w, err)
		return
	}
	s.apiState(w, r, nil)
}

func (s *Server) apiLock(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	s.lockNow("asked")
	s.apiState(w, r, nil)
}

func (s *Server) apiPing(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	w.WriteHeader(http.StatusNoContent)
}

type whoamiJSON struct {
	Name     string `json:"name"`
	Relay    string `json:"relay"`
	Identity string `json:"identity"`
	Device   string `json:"device"`
}

func (s *Server) apiWhoami(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	me := cl.Whoami()
	writeJSON(w, http.StatusOK, whoamiJSON{Name: me.Name, Relay: me.Relay, Identity: me.Identity.String(), Device: me.Device.String()})
}

// messageJSON is a message as the API gives it; the names are those of
// 'postern inbox --json'.
type messageJSON struct {
	ID           string           `json:"id"`
	From         string           `json:"from"`
	To           string           `json:"to"`
	Subject      string           `json:"subject,omitempty"`
	Text         string           `json:"text"`
	Time         time.Time        `json:"time"`
	Received     time.Time        `json:"received"`
	Outgoing     bool             `json:"outgoing"`
	Notice       bool             `json:"notice,omitempty"`
	Conversation string           `json:"conversation,omitempty"`
	ReplyTo      string           `json:"reply_to,omitempty"`
	Urgent       bool             `json:"urgent,omitempty"`
	Queued       bool             `json:"queued,omitempty"`
	SendError    string           `json:"send_error,omitempty"`
	Attachments  []attachmentJSON `json:"attachments,omitempty"`
	// Folder: inbox, sent, archive or the ID of a folder of one's own.
	Folder string `json:"folder,omitempty"`
	// Unread: a received message not read on any of this person's
	// devices (client.Message.Read).
	Unread bool `json:"unread,omitempty"`
	// Delivered, ReadReceipt: for a sent message, when the recipient
	// reported it delivered and read (receipts).
	Delivered   *time.Time `json:"delivered,omitempty"`
	ReadReceipt *time.Time `json:"read_receipt,omitempty"`
	// Expires: when a disappearing message is deleted (disappear.go).
	Expires *time.Time `json:"expires,omitempty"`
	// Recalled, RecalledBy: when and by whom ("me" or the contact) the
	// message was deleted for everyone (recall.go); no text or files.
	Recalled   *time.Time `json:"recalled,omitempty"`
	RecalledBy string     `json:"recalled_by,omitempty"`
	// Forwarding by availability status (status.go): a sent message a
	// colleague also received (forwarded_to, forward_reason) or that
	// could not go to them (not_forwarded); forwarded_for: a copy
	// forwarded for that person.
	ForwardedTo   string `json:"forwarded_to,omitempty"`
	ForwardReason string `json:"forward_reason,omitempty"`
	NotForwarded  string `json:"not_forwarded,omitempty"`
	ForwardedFor  string `json:"forwarded_for,omitempty"`
	// ReadBy: a patient's message in a team's queue conversation, the
	// staff who read it ("me" for this person), first first.
	ReadBy []readByJSON `json:"read_by,omitempty"`
}

type readByJSON struct {
	By string    `json:"by"`
	At time.Time `json:"at"`
}

type attachmentJSON struct {
	Name      string `json:"name"` // made safe to show (client.SafeFileName)
	MediaType string `json:"media_type"`
	Size      int64  `json:"size"`
}

func (s *Server) toJSON(m client.Message) messageJSON {
	j := messageJSON{
		ID: m.ID, From: m.From, To: m.To, Subject: m.Subject, Text: m.Text,
		Time: m.Time.UTC(), Received: m.Received.UTC(), Outgoing: m.Outgoing, Notice: m.Notice,
		Conversation: m.Conversation, ReplyTo: m.ReplyTo, Urgent: m.Urgent, Queued: m.Queued, SendError: m.SendError,
		ForwardedTo: m.ForwardedTo, ForwardReason: m.ForwardReason, NotForwarded: m.NotForwarded, ForwardedFor: m.ForwardedFor,
	}
	for _, a := range m.Attachments {
		j.Attachments = append(j.Attachments, attachmentJSON{Name: client.SafeFileName(a.Name), MediaType: a.MediaType, Size: a.Size})
	}
	j.Folder, j.Unread = m.Folder, !m.Read
	if !m.Delivered.IsZero() {
		t := m.Delivered.UTC()
		j.Delivered = &t
	}
	if !m.ReadReceipt.IsZero() {
		t := m.ReadReceipt.UTC()
		j.ReadReceipt = &t
	}
	if !m.Expires.IsZero() {
		t := m.Expires.UTC()
		j.Expires = &t
	}
	if !m.Recalled.IsZero() {
		t := m.Recalled.UTC()
		j.Recalled, j.RecalledBy = &t, m.RecalledBy
	}
	for _, r := range m.ReadBy {
		j.ReadBy = append(j.ReadBy, readByJSON{By: r.By, At: r.At.UTC()})
	}
	return j
}

// apiInbox lists the messages, newest first: with ?limit=N the N newest
// (at most client.MaxListLimit; all of them without limit), with
// ?before=ID those older than message ID (the next page after a page
// that ended with ID), and with ?folder=F those of folder F only. A
// page is read from the store's index without loading the others.
func (s *Server) apiInbox(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	q := r.URL.Query()
	limit := -1
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, "limit must be a positive number", "")
			return
		}
		limit = n
	}
	opts := &client.ListOptions{Folder: q.Get("folder"), Before: q.Get("before"), Limit: limit}
	if opts.Before != "" {
		if _, err := cl.Message(opts.Before); err != nil { // a page after an unknown message is an error, not empty
			s.fail(w, err)
			return
		}
	}
	var out []messageJSON
	for {
		if limit < 0 || limit > client.MaxListLimit {
			opts.Limit = client.MaxListLimit
		}
		page, err := cl.Messages(opts)
		if err != nil {
			s.fail(w, err)
			return
		}
		for _, m := range page {
			out = append(out, s.toJSON(m))
		}
		if limit > 0 && len(out) >= limit {
			out = out[:limit]
			break
		}
		if len(page) < opts.Limit {
			break
		}
		opts.Before = page[len(page)-1].ID
	}
	if out == nil {
		out = []messageJSON{}
	}
	writeJSON(w, http.StatusOK, out)
}

// apiMessage returns one message; reading it on the page (not through
// an integration) marks it read.
func (s *Server) apiMessage(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	m, err := cl.Message(r.PathValue("id"))
	if err != nil {
		s.fail(w, err)
		return
	}
	if !callerFrom(r.Context()).bearer && !m.Read {
		// Opened on the page: read here, on the person's other devices
		// (inbox sync) and, unless turned off, for its sender (receipt).
		if err := cl.MarkRead(r.Context(), m.ID); err != nil {
			s.fail(w, err)
			return
		}
		if m, err = cl.Message(m.ID); err != nil {
			s.fail(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, s.toJSON(m))
}

type sendRequest struct {
	To      string `json:"to"`
	Text    string `json:"text"`
	Subject string `json:"subject,omitempty"`
	ReplyTo string `json:"reply_to,omitempty"`
	Urgent  bool   `json:"urgent,omitempty"`
	// Attachments are IDs of finished uploads (POST /api/uploads).
	Attachments []string `json:"attachments,omitempty"`
}

// sendResponse is the message as stored, and for a message that waits
// in the outbox (its relay could not be reached) the CLI's sentence
// saying so.
type sendResponse struct {
	Message messageJSON `json:"message"`
	Queued  string      `json:"queued,omitempty"`
}

func (s *Server) apiSend(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req sendRequest
	if !readJSON(w, r, &req) {
		return
	}
	if len(req.Attachments) > 0 {
		s.sendUploads(w, r, cl, &req) // attach.go
		return
	}
	m, err := cl.SendWith(r.Context(), req.To, req.Text, &client.SendOptions{Subject: req.Subject, ReplyTo: req.ReplyTo, Urgent: req.Urgent})
	s.writeSent(w, m, err)
}

// writeSent answers a send: the message as stored, 202 with the CLI's
// sentence when it waits for its relay.
func (s *Server) writeSent(w http.ResponseWriter, m client.Message, err error) {
	switch {
	case errors.Is(err, client.ErrQueued):
		// Not a failure: stored, and sent when the relay is back.
		writeJSON(w, http.StatusAccepted, sendResponse{Message: s.toJSON(m), Queued: err.Error()})
	case err != nil:
		s.fail(w, err)
	default:
		writeJSON(w, http.StatusOK, sendResponse{Message: s.toJSON(m)})
	}
}

type contactJSON struct {
	Name         string    `json:"name"`
	Identity     string    `json:"identity"`
	SafetyNumber string    `json:"safety_number"`
	Added        time.Time `json:"added"`
	Blocked      bool      `json:"blocked,omitempty"`
	Verification string    `json:"verification"`
	// Disappear: the conversation's disappearing-message timer in
	// seconds (disappear.go); omitted when off.
	Disappear int64 `json:"disappear_seconds,omitempty"`
	// Restricted: the contact restricted your access ("service", "new"
	// or "replies") and you have not opted in again; RestrictedByMe: you
	// restricted the contact (restrict.go).
	Restricted     string `json:"restricted,omitempty"`
	RestrictedByMe string `json:"restricted_by_me,omitempty"`
	// SendsRefused: what you write to the contact is refused now (a
	// team's restriction may stop only new conversations, or only
	// replies in answered ones).
	SendsRefused bool `json:"sends_refused,omitempty"`
	// Team: the contact said it is a team (client.Contact.Team); omitted
	// when not.
	Team *teamNoticeJSON `json:"team,omitempty"`
}

// teamNoticeJSON is what compose shows about a team: Postern's fixed
// notice, and the team's response windows as a sentence when it stated
// them.
type teamNoticeJSON struct {
	Name    string `json:"name"`
	Notice  string `json:"notice"`
	Windows string `json:"windows,omitempty"`
}

func teamNoticeOf(c client.Contact) *teamNoticeJSON {
	if c.Team == nil {
		return nil
	}
	return &teamNoticeJSON{Name: c.Team.Name, Notice: client.TeamNoticeText, Windows: c.Team.Sentence(c.Name)}
}

func (s *Server) apiContacts(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	cs, err := cl.Contacts()
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]contactJSON, 0, len(cs))
	for _, c := range cs {
		out = append(out, contactJSON{
			Name: c.Name, Identity: c.Identity.String(), SafetyNumber: c.SafetyNumber,
			Added: c.Added.UTC(), Blocked: c.Blocked, Verification: c.Verification.String(),
			Disappear:  int64(c.Disappearing / time.Second),
			Restricted: c.Restricted.String(), RestrictedByMe: c.RestrictedByMe.String(),
			SendsRefused: c.SendsRefused, Team: teamNoticeOf(c),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

type deviceJSON struct {
	ID     string    `json:"id"`
	Name   string    `json:"name,omitempty"`
	This   bool      `json:"this,omitempty"`
	Linked time.Time `json:"linked"`
	Relay  string    `json:"relay"`
}

// apiDevices lists this person's devices, checked against the relay's
// transparency log (it needs the relay).
func (s *Server) apiDevices(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	ds, err := cl.Devices(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	out := make([]deviceJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, deviceJSON{ID: d.ID.String(), Name: d.Name, This: d.This, Linked: d.Linked.UTC(), Relay: d.Relay})
	}
	writeJSON(w, http.StatusOK, out)
}
