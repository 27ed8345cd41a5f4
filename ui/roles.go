package ui

import (
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/postern/postern/client"
)

// Role accounts (client/roles.go; SPEC 15.7 "Role accounts over the
// relay"): the organisation directory's role accounts with who holds
// each now, taking and leaving one (a staff member of its team), and,
// for an administrator of the organisation, setting its holder ('postern
// role list', 'take', 'leave', 'set'). A change of holder moves the
// role's queue conversations, which the queue shows as they move.

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/roles":                {handler: (*Server).apiRoles, content: true},
		"POST /api/roles/{role}/take":   {handler: (*Server).apiRoleTake, content: true},
		"POST /api/roles/{role}/leave":  {handler: (*Server).apiRoleLeave, content: true},
		"POST /api/roles/{role}/holder": {handler: (*Server).apiRoleHolder, content: true},
	})
}

// rolesJSON is GET /api/roles's answer, and every change's.
type rolesJSON struct {
	// Administrator: this person administers the organisation, and may
	// set any role's holder.
	Administrator bool       `json:"administrator"`
	Roles         []roleJSON `json:"roles"`
}

// roleJSON is one role account with what this person may do with it
// now, so that the page offers only those.
type roleJSON struct {
	Name string `json:"name"`
	Team string `json:"team"`
	// Holder: "me" for this person, a contact's name, else the
	// directory's name; "" when it is vacant.
	Holder         string `json:"holder,omitempty"`
	HolderIdentity string `json:"holder_identity,omitempty"`
	Sequence       uint64 `json:"sequence"`
	Mine           bool   `json:"mine"`      // this person holds it
	CanTake        bool   `json:"can_take"`  // staff of its team, not holding it
	CanLeave       bool   `json:"can_leave"` // holding it
	// Staff: for an administrator, the staff of the role's team, whom
	// the holder picker offers.
	Staff []roleStaffJSON `json:"staff,omitempty"`
}

// roleStaffJSON is a staff member the holder picker offers: Name is what
// POST /api/roles/{role}/holder takes ("me", a contact's name or the
// directory's name), Shown the directory's name.
type roleStaffJSON struct {
	Name     string `json:"name"`
	Shown    string `json:"shown"`
	Identity string `json:"identity"`
}

// roleHolderRequest is POST /api/roles/{role}/holder's body.
type roleHolderRequest struct {
	Staff string `json:"staff"` // "" leaves the role vacant
}

// rolesOf is the role accounts as this person sees them, with the
// directory they come from.
func rolesOf(cl *client.Client) (rolesJSON, error) {
	d, err := cl.Directory()
	if err != nil {
		return rolesJSON{}, err
	}
	rs, err := cl.Roles()
	if err != nil {
		return rolesJSON{}, err
	}
	out := rolesJSON{Administrator: slices.Contains(d.Administrators, cl.Whoami().Identity), Roles: []roleJSON{}}
	for _, r := range rs {
		j := roleJSON{Name: r.Name, Team: r.Team, Holder: r.Holder, Sequence: r.Seq, Mine: r.Holder == client.Me}
		if r.Holder != "" {
			j.HolderIdentity = r.HolderIdentity.String()
		}
		for _, s := range teamStaff(d, r.Team) {
			if s.Name == client.Me && !j.Mine {
				j.CanTake = true
			}
			if out.Administrator {
				j.Staff = append(j.Staff, s)
			}
		}
		j.CanLeave = j.Mine
		out.Roles = append(out.Roles, j)
	}
	return out, nil
}

// teamStaff is the staff of the directory's team named team, as the
// holder picker offers them: this person as "me", a contact by their
// contact name, anyone else by the directory's name.
func teamStaff(d *client.Directory, team string) []roleStaffJSON {
	var out []roleStaffJSON
	for _, e := range d.Entries {
		if e.Kind != client.DirectoryPerson || !slices.Contains(e.Teams, team) {
			continue
		}
		s := roleStaffJSON{Name: e.Name, Shown: e.Name, Identity: e.ID}
		switch {
		case e.Self:
			s.Name = client.Me
		case e.Contact != "":
			s.Name = e.Contact
		}
		out = append(out, s)
	}
	return out
}

// findRole is the role named by the request's path, or a 404 written.
func (s *Server) findRole(w http.ResponseWriter, r *http.Request, cl *client.Client) (rolesJSON, roleJSON, bool) {
	all, err := rolesOf(cl)
	if err != nil {
		s.directoryFail(w, err)
		return all, roleJSON{}, false
	}
	name := r.PathValue("role")
	for _, j := range all.Roles {
		if j.Name == name {
			return all, j, true
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("The organisation directory lists no role account named %q.", name), "")
	return all, roleJSON{}, false
}

// apiRoles answers GET /api/roles: the role accounts of the organisation
// directory, by name; 404 without a directory.
func (s *Server) apiRoles(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	all, err := rolesOf(cl)
	if err != nil {
		s.directoryFail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, all)
}

// apiRoleTake answers POST /api/roles/{role}/take: this person becomes
// the role's holder (the on-call handover); the roles as they are now.
func (s *Server) apiRoleTake(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	_, role, ok := s.findRole(w, r, cl)
	if !ok {
		return
	}
	switch {
	case role.Mine:
		writeError(w, http.StatusConflict, fmt.Sprintf("You hold %s already.", role.Name), "")
		return
	case !role.CanTake:
		writeError(w, http.StatusForbidden, fmt.Sprintf("Only staff of %s take %s: the organisation directory does not list you in %s.", role.Team, role.Name, role.Team),
			"an administrator of the organisation can set who holds it")
		return
	}
	_, err := cl.TakeRole(r.Context(), role.Name)
	s.roleChanged(w, cl, err)
}

// apiRoleLeave answers POST /api/roles/{role}/leave: the role this person
// holds becomes vacant, and their open conversations of it go back to
// new.
func (s *Server) apiRoleLeave(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	_, role, ok := s.findRole(w, r, cl)
	if !ok {
		return
	}
	switch {
	case role.Holder == "":
		writeError(w, http.StatusConflict, fmt.Sprintf("%s is vacant: there is nothing to leave.", role.Name), "")
		return
	case !role.Mine:
		writeError(w, http.StatusConflict, fmt.Sprintf("You do not hold %s: %s does, and only the holder leaves it.", role.Name, role.Holder),
			"an administrator of the organisation can set who holds it")
		return
	}
	_, err := cl.LeaveRole(r.Context(), role.Name)
	s.roleChanged(w, cl, err)
}

// apiRoleHolder answers POST /api/roles/{role}/holder, for an
// administrator of the organisation: {"staff": NAME} makes that staff
// member of the role's team its holder, {"staff": ""} leaves it vacant.
func (s *Server) apiRoleHolder(w http.ResponseWriter, r *http.Request, cl *client.Client) {
	var req roleHolderRequest
	if !readJSON(w, r, &req) {
		return
	}
	all, role, ok := s.findRole(w, r, cl)
	if !ok {
		return
	}
	if !all.Administrator {
		writeError(w, http.StatusForbidden, fmt.Sprintf("Only an administrator of the organisation sets who holds %s.", role.Name),
			"staff of "+role.Team+" take and leave it themselves")
		return
	}
	if req.Staff == "" {
		if role.Holder == "" {
			writeError(w, http.StatusConflict, fmt.Sprintf("%s is vacant already.", role.Name), "")
			return
		}
	} else {
		i := slices.IndexFunc(role.Staff, func(st roleStaffJSON) bool { return st.Name == req.Staff || st.Shown == req.Staff })
		if i < 0 {
			writeError(w, http.StatusConflict, fmt.Sprintf("%s is not staff of %s: only its staff may hold %s.", req.Staff, role.Team, role.Name), "")
			return
		}
		if role.Staff[i].Identity == role.HolderIdentity {
			writeError(w, http.StatusConflict, fmt.Sprintf("%s holds %s already.", role.Staff[i].Shown, role.Name), "")
			return
		}
		req.Staff = role.Staff[i].Name
	}
	_, err := cl.SetRoleHolder(r.Context(), role.Name, req.Staff)
	s.roleChanged(w, cl, err)
}

// roleChanged answers a change of holder: the roles as they are now, or
// the refusal.
func (s *Server) roleChanged(w http.ResponseWriter, cl *client.Client, err error) {
	switch {
	case errors.Is(err, client.ErrNoDirectory):
		s.directoryFail(w, err)
		return
	case errors.Is(err, client.ErrUnknownRole):
		writeError(w, http.StatusNotFound, "The organisation directory no longer lists that role account.", "")
		return
	case errors.Is(err, client.ErrRoleRefused), errors.Is(err, client.ErrUnknownContact):
		s.failWith(w, http.StatusForbidden, err)
		return
	case err != nil:
		s.fail(w, err)
		return
	}
	all, err := rolesOf(cl)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, all)
}
