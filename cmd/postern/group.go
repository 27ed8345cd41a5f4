package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/postern/postern/client"
)

var groupCmd = &command{
	name:  "group",
	usage: "group list [--json] | group create NAME [CONTACT...] | group add NAME CONTACT [--role ROLE] [--for MEMBER] | group remove NAME CONTACT | group send NAME [--urgent] TEXT... | group contact NAME MEMBER CONTACT",
	help: `Groups: one message reaches every member's devices, sealed once and
fanned out by the relay.

group list: your groups with your role and their members; a member who is
not your contact (known only through the group) is marked "(not a contact)".
--json prints an array of objects with id, name, role, version, removed and
members (name, role, for, devices, joined, contact).

group create NAME [CONTACT...]: make a group with you as its admin and the
contacts named as members. Every device of every member must use your relay.
The members' devices join by themselves at their next sync.

group add NAME CONTACT [--role ROLE] [--for MEMBER]: add a contact (admins
only). ROLE is member (the default), observer (reads, cannot send), delegate
(writes for MEMBER, shown as "CONTACT for MEMBER") or admin.

group remove NAME CONTACT: remove a member (admins only). The group's keys
change: the removed member cannot read anything sent afterwards.

group send NAME [--urgent] TEXT...: send a message to the group (--urgent marks
it urgent, as for 'postern send'). Observers cannot.

group contact NAME MEMBER CONTACT: make MEMBER, a member of the group who is
not your contact, your contact named CONTACT. Members who are not contacts of
each other read each other's group messages without it (their devices
introduce themselves through the group); they are not in your contacts, and
direct messages between you are read only once each of you made the other a
contact.

NAME is the group's name or its ID (as 'group list --json' shows it).`,
	run: runGroup,
}

func runGroup(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	role := fs.String("role", "", "")
	forName := fs.String("for", "", "")
	urgent := fs.Bool("urgent", false, "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "missing what to do: list, create, add, remove, send or contact")
	}
	limits, ok := map[string][2]int{"list": {0, 0}, "create": {1, -1}, "add": {2, 2}, "remove": {2, 2}, "send": {2, -1}, "contact": {3, 3}}[pos[0]]
	least, most := limits[0], limits[1]
	switch {
	case !ok:
		return usagef(cmd, "unknown group command %q", pos[0])
	case *asJSON && pos[0] != "list":
		return usagef(cmd, "--json is for group list")
	case (*role != "" || *forName != "") && pos[0] != "add":
		return usagef(cmd, "--role and --for are for group add")
	case *urgent && pos[0] != "send":
		return usagef(cmd, "--urgent is for group send")
	case len(pos)-1 < least:
		what := []string{"NAME", "CONTACT", "TEXT"}
		if pos[0] == "contact" {
			what = []string{"NAME", "MEMBER", "CONTACT"}
		}
		return usagef(cmd, "missing %s", what[min(len(pos)-1, 2)])
	case most >= 0 && len(pos)-1 > most:
		return usagef(cmd, "too many arguments")
	}
	r := client.GroupMember
	switch *role {
	case "", "member":
	case "observer":
		r = client.GroupObserver
	case "delegate":
		r = client.GroupDelegate
		if *forName == "" {
			return usagef(cmd, "a delegate needs --for MEMBER")
		}
	case "admin":
		r = client.GroupAdmin
	default:
		return usagef(cmd, "unknown role %q: member, observer, delegate or admin", *role)
	}
	if *forName != "" && r != client.GroupDelegate {
		return usagef(cmd, "--for is for a delegate")
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	switch pos[0] {
	case "list":
		return listGroups(c, cl, *asJSON)
	case "create":
		g, err := cl.CreateGroup(ctx, pos[1], pos[2:]...)
		if err != nil {
			return groupError(err, pos[1])
		}
		fmt.Fprintf(c.stdout, "Made group %s (%s) with %d members.\n", safe(g.Name, false), g.ID, len(g.Members))
	case "add":
		g, err := cl.AddGroupMember(ctx, pos[1], pos[2], r, *forName)
		if err != nil {
			return groupError(err, pos[1])
		}
		fmt.Fprintf(c.stdout, "Added %s to %s as %s.\n", safe(pos[2], false), safe(g.Name, false), r)
	case "remove":
		g, err := cl.RemoveGroupMember(ctx, pos[1], pos[2])
		if err != nil {
			return groupError(err, pos[1])
		}
		fmt.Fprintf(c.stdout, "Removed %s from %s; the group's keys changed.\n", safe(pos[2], false), safe(g.Name, false))
	case "send":
		m, err := cl.SendGroup(ctx, pos[1], strings.Join(pos[2:], " "), &client.SendOptions{Urgent: *urgent})
		if err != nil {
			return groupError(err, pos[1])
		}
		fmt.Fprintf(c.stdout, "Sent to %s (%s).\n", safe(m.To, false), m.ID)
	case "contact":
		ct, err := cl.MakeContact(ctx, pos[1], pos[2], pos[3])
		if errors.Is(err, client.ErrNotKnownThroughGroup) {
			return &cliError{msg: fmt.Sprintf("%s is not a member of %s known only through it", safe(pos[2], false), safe(pos[1], false)),
				hint: "members who are not your contacts are marked in: postern group list", err: err}
		}
		if err != nil {
			return groupError(err, pos[1])
		}
		fmt.Fprintf(c.stdout, "%s is now your contact %s.\n", safe(pos[2], false), safe(ct.Name, false))
	}
	return nil
}

// jsonGroup is a group in --json output.
type jsonGroup struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Role    string            `json:"role"`
	Version uint64            `json:"version"`
	Removed bool              `json:"removed"`
	Members []jsonGroupMember `json:"members"`
}

type jsonGroupMember struct {
	Name    string `json:"name"`
	Role    string `json:"role"`
	For     string `json:"for,omitempty"`
	Devices int    `json:"devices"`
	Joined  int    `json:"joined"`
	Contact bool   `json:"contact"`
}

func listGroups(c *cli, cl *client.Client, asJSON bool) error {
	gs, err := cl.Groups()
	if err != nil {
		return err
	}
	return printList(c, gs, asJSON, func(g client.Group) jsonGroup {
		j := jsonGroup{ID: g.ID, Name: g.Name, Role: g.Role.String(), Version: g.Version, Removed: g.Removed, Members: []jsonGroupMember{}}
		if g.Removed {
			j.Role = "removed"
		}
		for _, m := range g.Members {
			j.Members = append(j.Members, jsonGroupMember{Name: m.Name, Role: m.Role.String(), For: m.For, Devices: m.Devices, Joined: m.Joined, Contact: m.Contact})
		}
		return j
	}, "No groups.", "GROUP\tROLE\tMEMBERS", func(g client.Group) string {
		role := g.Role.String()
		if g.Removed {
			role = "removed"
		}
		var ms []string
		for _, m := range g.Members {
			n := safe(m.Name, false)
			switch {
			case m.Role == client.GroupDelegate && m.For != "":
				n += " (delegate for " + safe(m.For, false) + ")"
			case m.Role != client.GroupMember:
				n += " (" + m.Role.String() + ")"
			}
			if !m.Contact {
				n += " (not a contact)"
			}
			ms = append(ms, n)
		}
		return fmt.Sprintf("%s\t%s\t%s", safe(g.Name, false), role, strings.Join(ms, ", "))
	})
}

// groupError words the library's group errors.
func groupError(err error, name string) error {
	switch {
	case errors.Is(err, client.ErrUnknownGroup):
		return &cliError{msg: fmt.Sprintf("no group %q", name), hint: "list groups with: postern group list", err: err}
	case errors.Is(err, client.ErrObserver):
		return &cliError{msg: fmt.Sprintf("you observe %s: observers read, and cannot send", name), err: err}
	case errors.Is(err, client.ErrNotGroupAdmin):
		return &cliError{msg: fmt.Sprintf("only the admins of %s can change its members", name), err: err}
	case errors.Is(err, client.ErrNotGroupMember):
		return &cliError{msg: err.Error(), err: err}
	case errors.Is(err, client.ErrGroupRelay):
		return &cliError{msg: "a member has a device on another relay", hint: "in this version every member's devices must use the group's relay", err: err}
	}
	return err
}
