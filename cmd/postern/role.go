package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/postern/postern/client"
)

var roleCmd = &command{
	name:  "role",
	usage: "role list [--json] | role take ROLE | role leave ROLE | role set ROLE STAFF|--vacant",
	help: `Role accounts of an organisation directory ("Pharmacy on call"): outsiders
write to the role, and whoever holds it answers.

role list: the role accounts, their teams and who holds each now.

role take ROLE: hold the role (you must be staff of its team): the on-call
handover. The role's open conversations of the previous holder become
yours, assigned by them, and its new ones are claimed for you as they
arrive; those the previous holder gave a colleague stay with the colleague.

role leave ROLE: leave the role vacant: your open conversations of the role
go back to the team's queue, for anyone to claim.

role set ROLE STAFF, role set ROLE --vacant: for an administrator of the
organisation, give the role to a staff member of its team (a contact's name,
or a name in the directory), or leave it vacant.

Each change is signed with your identity and sent to every colleague of the
directory who is one of your contacts. An invitation for a role is made on
the team's profile: 'postern team invite NAME --role ROLE'.

--json prints list as objects with name, team, holder, holder_identity and
sequence.`,
	run: runRole,
}

func runRole(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	vacant := fs.Bool("vacant", false, "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "missing what to do: list, take, leave or set")
	}
	what := pos[0]
	switch {
	case *asJSON && what != "list":
		return usagef(cmd, "--json is for role list")
	case *vacant && what != "set":
		return usagef(cmd, "--vacant is for role set")
	}
	switch what {
	case "list":
		if len(pos) > 1 {
			return usagef(cmd, "too many arguments")
		}
	case "take", "leave", "set":
		switch {
		case len(pos) == 1:
			return usagef(cmd, "missing the role (a name with spaces goes in quotes)")
		case what == "set" && *vacant && len(pos) > 2:
			return usagef(cmd, "role set takes a staff member or --vacant, not both")
		case what == "set" && !*vacant && len(pos) == 2:
			return usagef(cmd, "missing the staff member, or --vacant")
		case what == "set" && len(pos) > 3, what != "set" && len(pos) > 2:
			return usagef(cmd, "too many arguments (a name with spaces goes in quotes)")
		}
	default:
		return usagef(cmd, "%q: want list, take, leave or set", what)
	}
	if pos[0] == "list" {
		cl, err := c.open()
		if err != nil {
			return err
		}
		defer cl.Close()
		rs, err := cl.Roles()
		if err != nil {
			return roleError(err)
		}
		return printList(c, rs, *asJSON, jsonRoleOf, "No role accounts.", "ROLE\tTEAM\tHOLDER", func(r client.RoleInfo) string {
			h := "(vacant)"
			if r.Holder != "" {
				h = safe(r.Holder, false)
			}
			return fmt.Sprintf("%s\t%s\t%s", safe(r.Name, false), safe(r.Team, false), h)
		})
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	var ri client.RoleInfo
	switch pos[0] {
	case "take":
		ri, err = cl.TakeRole(ctx, pos[1])
	case "leave":
		ri, err = cl.LeaveRole(ctx, pos[1])
	case "set":
		staff := ""
		if !*vacant {
			staff = pos[2]
		}
		ri, err = cl.SetRoleHolder(ctx, pos[1], staff)
	}
	if err != nil {
		return roleError(err)
	}
	if ri.Holder == "" {
		fmt.Fprintf(c.stdout, "%s is vacant.\n", safe(ri.Name, false))
	} else {
		fmt.Fprintf(c.stdout, "%s is held by %s.\n", safe(ri.Name, false), safe(ri.Holder, false))
	}
	return nil
}

// jsonRole is a role account in --json output.
type jsonRole struct {
	Name           string `json:"name"`
	Team           string `json:"team"`
	Holder         string `json:"holder,omitempty"`
	HolderIdentity string `json:"holder_identity,omitempty"`
	Sequence       uint64 `json:"sequence"`
}

func jsonRoleOf(r client.RoleInfo) jsonRole {
	j := jsonRole{Name: r.Name, Team: r.Team, Holder: r.Holder, Sequence: r.Seq}
	if r.Holder != "" {
		j.HolderIdentity = r.HolderIdentity.String()
	}
	return j
}

// roleError words the library's role errors.
func roleError(err error) error {
	switch {
	case errors.Is(err, client.ErrNoDirectory):
		return directoryError(err)
	case errors.Is(err, client.ErrUnknownRole):
		return &cliError{msg: strip(err), hint: "see: postern role list", err: err}
	case errors.Is(err, client.ErrRoleRefused), errors.Is(err, client.ErrUnknownContact):
		return &cliError{msg: strip(err), hint: "staff of the role's team take and leave it; administrators set any holder of the team", err: err}
	}
	return err
}
