package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/postern/postern/client"
)

// The care team's queue (client/team.go, teamqueue.go, claims.go,
// teamblock.go; SPEC 15.9): the teams of this device, a team's queue
// (unclaimed, mine, all: urgent first, then the longest waiting), a
// conversation with its thread, claiming, assigning, resolving and
// answering it, blocking its outsider, exporting it for the record, and
// the team's figures (counts and times, no content). Names are the client's; the page sets them as
// text only.

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/teams":                 {handler: (*Server).apiTeams, content: true},
		"GET /api/teams/{team}/queue":    {handler: (*Server).apiTeamQueue, content: true},
		"GET /api/teams/{team}/figures":  {handler: (*Server).apiTeamFigures, content: true},
		"POST /api/teams/{team}/block":   {handler: (*Server).apiTeamBlock, content: true},
		"POST /api/teams/{team}/unblock": {handler: (*Server).apiTeamUnblock, content: true},
		"GET /api/queue/{id}":            {handler: (*Server).apiQueueItem, content: true},
		"POST /api/queue/{id}/claim":     {handler: (*Server).apiQueueClaim, content: true},
		"POST /api/queue/{id}/assign":    {handler: (*Server).apiQueueAssign, content: true},
		"POST /api/queue/{id}/resolve":   {handler: (*Server).apiQueueResolve, content: true},
		"POST /api/queue/{id}/reply":     {handler: (*Server).apiQueueReply, content: true},
		"GET /api/queue/{id}/export":     {handler: (*Server).apiQueueExport, content: true},
	})
}

type teamJSON struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Intake        bool              `json:"intake,omitempty"`
	Staff         []groupMemberJSON `json:"staff"`
	Conversations int               `json:"conversations"`
}

func toTeamJSON(tm client.Team) teamJSON {
	g := toGroupJSON(client.Group{Members: tm.Staff})
	return teamJSON{ID: tm.ID, Name: tm.Name, Intake: tm.Intake, Staff: g.Members, Conversations: tm.Conversations}
}

// queueItemJSON is a queue conversation with what this person may do
// with it now, so that the page offers only those.
type queueItemJSON struct {
	ID         string    `json:"id"`
	Team       string    `json:"team"`
	Outsider   string    `json:"outsider"`
	State      string    `json:"state"`
	Owner      string    `json:"owner,omitempty"` // "me" for this person
	AssignedBy string    `json:"assigned_by,omitempty"`
	Urgent     bool      `json:"urgent,omitempty"`
	Opened     time.Time `json:"opened"`
	Waiting    int64     `json:"waiting_seconds"` // since Opened, while open
	Reopens    int       `json:"reopens,omitempty"`
	Messages   int       `json:"messages"`
	// Role: the role account the conversation is addressed to.
	Role string `json:"role,omitempty"`
	// Conversation: its messages' conversation (messageJSON.Conversation),
	// for the page to tell a live message of this conversation.
	Conversation string `json:"conversation"`
	CanClaim     bool   `json:"can_claim,omitempty"`
	CanAssign    bool   `json:"can_assign,omitempty"` // and resolve: the owner's
}

func toQueueItemJSON(it client.QueueItem, now time.Time) queueItemJSON {
	open := it.State == "new" || it.State == "claimed" || it.State == "assigned"
	j := queueItemJSON{
		ID: it.ID, Team: it.Team, Outsider: it.Outsider, State: it.State, Owner: it.Owner, AssignedBy: it.AssignedBy,
		Urgent: it.Urgent, Opened: it.Opened.UTC(), Reopens: it.Reopens, Messages: it.Messages, Conversation: it.Conversation, Role: it.Role,
		CanClaim: it.State == "new", CanAssign: open && it.State != "new" && it.Owner == client.Me,
	}
	if open && now.After(it.Opened) {
		j.Waiting = int64(now.Sub(it.Opened) / time.Second)
	}
	return j
}

func (s *Server) apiTeams(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	ts, err := cl.Teams()
	if err != nil {
		s.fail(w, err)
		return
	}
	out := []teamJSON{}
	for _, tm := range ts {
		out = append(out, toTeamJSON(tm))
	}
	writeJSON(w, http.StatusOK, out)
}

var queueFilters = map[string]client.QueueFilter{
	"": client.QueueAll, "all": client.QueueAll, "unclaimed": client.QueueUnclaimed, "mine": client.QueueMine,
}

func (s *Server) apiTeamQueue(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	f, ok := queueFilters[r.URL.Query().Get("filter")]
	if !ok {
		writeError(w, http.StatusBadRequest, "A queue's filter is all, unclaimed or mine.", "")
		return
	}
	items, err := cl.Queue(r.PathValue("team"), f)
	if err != nil {
		s.teamFail(w, err)
		return
	}
	now := time.Now()
	out := []queueItemJSON{}
	for _, it := range items {
		out = append(out, toQueueItemJSON(it, now))
	}
	writeJSON(w, http.StatusOK, out)
}

// findQueueItem is the queue conversation with ID id, in any team.
func findQueueItem(cl *client.Client, id string) (client.QueueItem, error) {
	ts, err := cl.Teams()
	if err != nil {
		return client.QueueItem{}, err
	}
	for _, tm := range ts {
		items, err := cl.Queue(tm.ID, client.QueueAll)
		if err != nil {
			return client.QueueItem{}, err
		}
		for _, it := range items {
			if it.ID == id {
				return it, nil
			}
		}
	}
	return client.QueueItem{}, client.ErrUnknownQueueItem
}

type queueThreadJSON struct {
	Item     queueItemJSON `json:"item"`
	Messages []messageJSON `json:"messages"` // oldest first
}

func (s *Server) apiQueueItem(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	it, err := findQueueItem(cl, r.PathValue("id"))
	if err != nil {
		s.teamFail(w, err)
		return
	}
	if !callerFrom(r.Context()).bearer {
		// Opened on the page: the patient's messages are read here, the
		// staff learn who read them and the patient that the team did
		// (client.ReadQueue); an integration's reading marks nothing.
		if err := cl.ReadQueue(r.Context(), it.ID); err != nil {
			s.teamFail(w, err)
			return
		}
	}
	s.writeQueueItem(w, cl, it)
}

// writeQueueItem answers the conversation it with its thread.
func (s *Server) writeQueueItem(w http.ResponseWriter, cl *client.Client, it client.QueueItem) {
	th, err := cl.QueueThread(it.ID)
	if err != nil {
		s.teamFail(w, err)
		return
	}
	out := queueThreadJSON{Item: toQueueItemJSON(it, time.Now()), Messages: []messageJSON{}}
	for _, m := range th {
		out.Messages = append(out.Messages, s.toJSON(m))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) apiQueueClaim(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	it, err := cl.Claim(r.Context(), r.PathValue("id"))
	if err != nil {
		s.teamFail(w, err)
		return
	}
	s.writeQueueItem(w, cl, it)
}

type queueAssignRequest struct {
	Contact string `json:"contact"`
}

func (s *Server) apiQueueAssign(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req queueAssignRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Contact = strings.TrimSpace(req.Contact); req.Contact == "" {
		writeError(w, http.StatusBadRequest, "Name the staff member to assign the conversation to.", "")
		return
	}
	it, err := cl.Assign(r.Context(), r.PathValue("id"), req.Contact)
	if err != nil {
		s.teamFail(w, err)
		return
	}
	s.writeQueueItem(w, cl, it)
}

func (s *Server) apiQueueResolve(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	it, err := cl.Resolve(r.Context(), r.PathValue("id"))
	if err != nil {
		s.teamFail(w, err)
		return
	}
	s.writeQueueItem(w, cl, it)
}

type queueReplyRequest struct {
	Text string `json:"text"`
	// Attachments are IDs of finished uploads (POST /api/uploads).
	Attachments []string `json:"attachments,omitempty"`
}

// apiQueueReply answers the conversation's outsider, from the team: the
// finished uploads are sent through the library, then dropped; after a
// failure they stay, for the page to send again (as POST /api/send).
func (s *Server) apiQueueReply(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req queueReplyRequest
	if !readJSON(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Text) == "" && len(req.Attachments) == 0 {
		writeError(w, http.StatusBadRequest, "A reply needs text or a file.", "")
		return
	}
	ups, files, release, ok := s.takeUploads(w, req.Attachments) // attach.go
	if !ok {
		return
	}
	m, err := cl.ReplyQueueData(r.Context(), r.PathValue("id"), req.Text, files)
	release()
	if err == nil || errors.Is(err, client.ErrQueued) {
		for _, u := range ups {
			s.uploads.remove(u)
		}
	}
	if err != nil && !errors.Is(err, client.ErrQueued) {
		s.teamFail(w, err)
		return
	}
	s.writeSent(w, m, err)
}

type teamBlockRequest struct {
	Contact string `json:"contact"`
	Level   string `json:"level,omitempty"` // new (default), replies, all; not for unblock
}

var blockLevels = map[string]client.Restriction{
	"": client.RestrictedNew, "new": client.RestrictedNew, "replies": client.RestrictedReplies, "all": client.RestrictedService,
}

func (s *Server) apiTeamBlock(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req teamBlockRequest
	if !readJSON(w, r, &req) {
		return
	}
	level, ok := blockLevels[req.Level]
	switch {
	case !ok:
		writeError(w, http.StatusBadRequest, "A block's level is new, replies or all.", "")
		return
	case strings.TrimSpace(req.Contact) == "":
		writeError(w, http.StatusBadRequest, "Name the person to block, as the queue shows them.", "")
		return
	}
	if err := cl.BlockOutsider(r.Context(), r.PathValue("team"), req.Contact, level); err != nil {
		s.teamFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"contact": req.Contact, "level": req.Level})
}

func (s *Server) apiTeamUnblock(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req teamBlockRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.Level != "" || strings.TrimSpace(req.Contact) == "" {
		writeError(w, http.StatusBadRequest, "Name the person to unblock, as the queue shows them (and no level).", "")
		return
	}
	if err := cl.UnblockOutsider(r.Context(), r.PathValue("team"), req.Contact); err != nil {
		s.teamFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"contact": req.Contact})
}

// apiTeamFigures is the team's figures document (the one `postern team
// stats NAME --json` prints): counts and durations, no content.
func (s *Server) apiTeamFigures(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	f, err := cl.TeamFigures(r.PathValue("team"))
	if err != nil {
		s.teamFail(w, err)
		return
	}
	b, err := json.Marshal(f)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, json.RawMessage(b))
}

// teamFail answers a team operation's refusal in a sentence a person can
// act on.
func (s *Server) teamFail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, client.ErrUnknownTeam):
		writeError(w, http.StatusNotFound, "There is no such team on this device.", "")
	case errors.Is(err, client.ErrUnknownQueueItem):
		writeError(w, http.StatusNotFound, "There is no such conversation in the team's queue.", "")
	case errors.Is(err, client.ErrOwned):
		writeError(w, http.StatusConflict, "Another staff member owns this conversation.", "the queue shows who")
	case errors.Is(err, client.ErrNotOwner):
		writeError(w, http.StatusForbidden, "Only the conversation's owner can do this.", "claim it first, or ask its owner")
	case errors.Is(err, client.ErrQueueState):
		writeError(w, http.StatusConflict, "The conversation's state does not allow this.", "the queue shows its state now")
	case errors.Is(err, client.ErrNotStaff):
		writeError(w, http.StatusForbidden, "That person is not on the team's staff, or this device holds none of its keys.", "")
	case errors.Is(err, client.ErrObserver):
		writeError(w, http.StatusForbidden, "An observer of the team reads its queue, and cannot act on it.", "")
	case errors.Is(err, client.ErrRestrictionLevel):
		writeError(w, http.StatusBadRequest, "A block's level is new, replies or all.", "")
	case errors.Is(err, client.ErrUnknownContact):
		writeError(w, http.StatusNotFound, "There is no one of that name here.", "")
	default:
		s.fail(w, err)
	}
}

// apiQueueExport answers the signed record export of a queue conversation
// (or of its message ?message=ID), as GET /api/export does: built whole
// (and reported to the team's profile) before the first byte is sent.
func (s *Server) apiQueueExport(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var buf bytes.Buffer
	info, err := cl.ExportQueue(r.Context(), &buf, r.PathValue("id"), r.URL.Query().Get("message"))
	switch {
	case errors.Is(err, client.ErrRecordTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error(), "export fewer messages: one at a time")
		return
	case err != nil:
		s.teamFail(w, err)
		return
	}
	writeRecord(w, buf.Bytes(), info)
}
