package ui

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/postern/postern/client"
)

// Groups (client/group.go): the list of this person's groups with their
// members and roles, making a group, adding and removing members (the
// admins), and writing to a group. Names are the client's; the page sets
// them as text only.

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/groups":                              {handler: (*Server).apiGroups, content: true},
		"POST /api/groups":                             {handler: (*Server).apiCreateGroup, content: true},
		"GET /api/groups/{id}":                         {handler: (*Server).apiGroup, content: true},
		"POST /api/groups/{id}/members":                {handler: (*Server).apiAddGroupMember, content: true},
		"DELETE /api/groups/{id}/members/{name}":       {handler: (*Server).apiRemoveGroupMember, content: true},
		"POST /api/groups/{id}/send":                   {handler: (*Server).apiSendGroup, content: true},
		"POST /api/groups/{id}/members/{name}/contact": {handler: (*Server).apiMakeContact, content: true},
	})
}

// maxGroupMessages bounds the messages a group's page shows, and
// groupScan the messages looked through to find them.
const (
	maxGroupMessages = 50
	groupScan        = 5000
)

type groupMemberJSON struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	For     string `json:"for,omitempty"`
	Shown   string `json:"shown"` // "ASSISTANT for CLINICIAN" for a delegate
	Devices int    `json:"devices"`
	Joined  int    `json:"joined"`
	// Contact: false for someone known only through the group (SPEC
	// 15.10), not in the contact list.
	Contact bool `json:"contact"`
}

type groupJSON struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Role     string            `json:"role"`
	Removed  bool              `json:"removed,omitempty"`
	Members  []groupMemberJSON `json:"members"`
	Messages []messageJSON     `json:"messages,omitempty"`
}

func toGroupJSON(g client.Group) groupJSON {
	out := groupJSON{ID: g.ID, Name: g.Name, Role: g.Role.String(), Removed: g.Removed, Members: []groupMemberJSON{}}
	for _, m := range g.Members {
		shown := m.Name
		if m.For != "" {
			shown = m.Name + " for " + m.For
		}
		out.Members = append(out.Members, groupMemberJSON{Name: m.Name, Role: m.Role.String(), For: m.For, Shown: shown, Devices: m.Devices, Joined: m.Joined, Contact: m.Contact})
	}
	return out
}

func (s *Server) apiGroups(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	gs, err := cl.Groups()
	if err != nil {
		s.fail(w, err)
		return
	}
	out := []groupJSON{}
	for _, g := range gs {
		out = append(out, toGroupJSON(g))
	}
	writeJSON(w, http.StatusOK, out)
}

// findGroup is the group with ID id.
func findGroup(cl *client.Client, id string) (client.Group, error) {
	gs, err := cl.Groups()
	if err != nil {
		return client.Group{}, err
	}
	for _, g := range gs {
		if g.ID == id {
			return g, nil
		}
	}
	return client.Group{}, client.ErrUnknownGroup
}

// apiGroup is a group with its newest messages, newest first.
func (s *Server) apiGroup(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	g, err := findGroup(cl, r.PathValue("id"))
	if err != nil {
		s.groupFail(w, err)
		return
	}
	out := toGroupJSON(g)
	opts := &client.ListOptions{Limit: client.MaxListLimit}
	for seen := 0; seen < groupScan && len(out.Messages) < maxGroupMessages; {
		page, err := cl.Messages(opts)
		if err != nil {
			s.fail(w, err)
			return
		}
		for _, m := range page {
			if m.Conversation == g.Conversation && len(out.Messages) < maxGroupMessages {
				out.Messages = append(out.Messages, s.toJSON(m))
			}
		}
		seen += len(page)
		if len(page) < opts.Limit {
			break
		}
		opts.Before = page[len(page)-1].ID
	}
	writeJSON(w, http.StatusOK, out)
}

type createGroupRequest struct {
	Name    string   `json:"name"`
	Members []string `json:"members"`
}

func (s *Server) apiCreateGroup(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req createGroupRequest
	if !readJSON(w, r, &req) {
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		writeError(w, http.StatusBadRequest, "A group needs a name.", "")
		return
	}
	g, err := cl.CreateGroup(r.Context(), req.Name, req.Members...)
	if err != nil {
		s.groupFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toGroupJSON(g))
}

type groupMemberRequest struct {
	Contact string `json:"contact"`
	Role    string `json:"role"` // member (default), observer, delegate, admin
	For     string `json:"for"`  // a delegate: the member it acts for
}

var groupRoles = map[string]client.GroupRole{
	"": client.GroupMember, "member": client.GroupMember, "observer": client.GroupObserver,
	"delegate": client.GroupDelegate, "admin": client.GroupAdmin,
}

func (s *Server) apiAddGroupMember(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req groupMemberRequest
	if !readJSON(w, r, &req) {
		return
	}
	role, ok := groupRoles[req.Role]
	switch {
	case !ok:
		writeError(w, http.StatusBadRequest, "A role is member, observer, delegate or admin.", "")
		return
	case role == client.GroupDelegate && req.For == "":
		writeError(w, http.StatusBadRequest, "A delegate acts for a member: name the member.", "")
		return
	case role != client.GroupDelegate && req.For != "":
		writeError(w, http.StatusBadRequest, "Only a delegate acts for a member.", "")
		return
	}
	g, err := cl.AddGroupMember(r.Context(), r.PathValue("id"), req.Contact, role, req.For)
	if err != nil {
		s.groupFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toGroupJSON(g))
}

func (s *Server) apiRemoveGroupMember(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	g, err := cl.RemoveGroupMember(r.Context(), r.PathValue("id"), r.PathValue("name"))
	if err != nil {
		s.groupFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, toGroupJSON(g))
}

// makeContactRequest names the new contact (the member's shown name if
// empty).
type makeContactRequest struct {
	Name string `json:"name"`
}

// apiMakeContact makes a member known only through the group a contact
// (client.MakeContact; protocol/SPEC.md section 15.10): it answers the
// new contact and the group, where the member now shows as a contact.
func (s *Server) apiMakeContact(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req makeContactRequest
	if !readJSON(w, r, &req) {
		return
	}
	member := r.PathValue("name")
	if req.Name == "" {
		req.Name = member
	}
	c, err := cl.MakeContact(r.Context(), r.PathValue("id"), member, req.Name)
	switch {
	case errors.Is(err, client.ErrNotKnownThroughGroup):
		writeError(w, http.StatusConflict, fmt.Sprintf("%s is not someone known only through this group (a contact already, or not introduced yet).", member), "")
		return
	case errors.Is(err, client.ErrContactExists):
		writeError(w, http.StatusConflict, fmt.Sprintf("A contact is named %s already.", req.Name), "choose another name")
		return
	case errors.Is(err, client.ErrInvalidName):
		writeError(w, http.StatusBadRequest, "A contact's name is 1 to 64 bytes, on one line, and not \"me\".", "")
		return
	case err != nil:
		s.groupFail(w, err)
		return
	}
	g, err := findGroup(cl, r.PathValue("id"))
	if err != nil {
		s.groupFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, makeContactResponse{Contact: toContactJSON(c), Group: toGroupJSON(g)})
}

type makeContactResponse struct {
	Contact contactJSON `json:"contact"`
	Group   groupJSON   `json:"group"`
}

type groupSendRequest struct {
	Text    string `json:"text"`
	Subject string `json:"subject,omitempty"`
	Urgent  bool   `json:"urgent,omitempty"`
}

func (s *Server) apiSendGroup(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req groupSendRequest
	if !readJSON(w, r, &req) {
		return
	}
	m, err := cl.SendGroup(r.Context(), r.PathValue("id"), req.Text, &client.SendOptions{Subject: req.Subject, Urgent: req.Urgent})
	if err != nil {
		s.groupFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, sendResponse{Message: s.toJSON(m)})
}

// groupFail answers a group operation's refusal in a sentence a person
// can act on.
func (s *Server) groupFail(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, client.ErrUnknownGroup):
		writeError(w, http.StatusNotFound, "There is no such group.", "")
	case errors.Is(err, client.ErrObserver):
		writeError(w, http.StatusForbidden, "You are an observer in this group: you read it, and cannot write to it.", "")
	case errors.Is(err, client.ErrNotGroupAdmin):
		writeError(w, http.StatusForbidden, "Only the group's admins can change its members.", "")
	case errors.Is(err, client.ErrNotGroupMember):
		writeError(w, http.StatusConflict, err.Error(), "")
	case errors.Is(err, client.ErrGroupRelay):
		writeError(w, http.StatusConflict, "Every device of a group's members must use your relay.", "")
	case errors.Is(err, client.ErrGroupSize):
		writeError(w, http.StatusBadRequest, "A group has at most 200 people.", "")
	default:
		s.fail(w, err)
	}
}
