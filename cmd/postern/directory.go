package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/postern/postern/client"
)

var directoryCmd = &command{
	name:  "directory",
	usage: "directory publish FILE | directory show [--json] | directory search QUERY... [--json] | directory contact NAME",
	help: `The organisation's directory: its staff, teams and role accounts, signed by
its administrators and kept in the relay's transparency log, so that staff
find colleagues and teams without exchanging invitations. This computer
trusts the directory that the organisation's policy file names
(directory-organisation and directory-administrators, docs/POLICY.md).

directory publish FILE: (administrators) sign the directory FILE describes
(JSON, docs/TEAMS.md), log it on the relay and send it to every listed
colleague who is one of your contacts. "-" reads standard input.

directory show: the directory this device holds: teams, role accounts and
staff. --json prints an object with organisation, version, issued,
administrators and entries (kind, id, name, title, teams, holder, contact,
self).

directory search QUERY...: the entries that match, best first, as compose
suggests them. --json prints an array of entries.

directory contact NAME: make the staff member the directory names NAME
(quote a name with spaces) your contact, without an invitation: their
device published where colleagues reach it. The contact is named as the
directory names them.`,
	run: runDirectory,
}

// maxDirectorySearch is how many entries a search prints.
const maxDirectorySearch = 20

func runDirectory(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "missing what to do: publish, show, search or contact")
	}
	switch pos[0] {
	case "publish":
		switch {
		case *asJSON:
			return usagef(cmd, "--json is for directory show and directory search")
		case len(pos) < 2:
			return usagef(cmd, "missing FILE")
		case len(pos) > 2:
			return usagef(cmd, "too many arguments")
		}
		return publishDirectory(ctx, c, pos[1])
	case "contact":
		switch {
		case *asJSON:
			return usagef(cmd, "--json is for directory show and directory search")
		case len(pos) < 2:
			return usagef(cmd, "missing NAME")
		case len(pos) > 2:
			return usagef(cmd, "too many arguments: quote a name with spaces")
		}
		return reachColleague(ctx, c, pos[1])
	case "show":
		if len(pos) > 1 {
			return usagef(cmd, "too many arguments")
		}
	case "search":
		if len(pos) < 2 {
			return usagef(cmd, "missing QUERY")
		}
	default:
		return usagef(cmd, "unknown directory command %q", pos[0])
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	if pos[0] == "show" {
		d, err := cl.Directory()
		if err != nil {
			return directoryError(err)
		}
		if *asJSON {
			return writeJSON(c.stdout, jsonDirectoryOf(d))
		}
		fmt.Fprintf(c.stdout, "Organisation %s, directory version %d, issued %s.\n", d.Organisation, d.Version, d.Issued.UTC().Format(time.DateTime+" MST"))
		return printEntries(c, d.Entries, false)
	}
	es, err := cl.LookupDirectory(strings.Join(pos[1:], " "), maxDirectorySearch)
	if err != nil {
		return directoryError(err)
	}
	return printEntries(c, es, *asJSON)
}

func publishDirectory(ctx context.Context, c *cli, path string) error {
	var spec []byte
	var err error
	if path == "-" {
		spec, err = io.ReadAll(io.LimitReader(c.stdin, client.MaxDirectorySpecSize+1))
	} else {
		spec, err = readSpec(path, client.MaxDirectorySpecSize+1)
	}
	if err != nil {
		return &cliError{msg: fmt.Sprintf("cannot read %s: %v", path, errText(err)), err: err}
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	p, err := cl.PublishDirectory(ctx, spec)
	if err != nil {
		return directoryError(err)
	}
	fmt.Fprintf(c.stdout, "Published directory version %d; sent to %d colleagues", p.Version, p.Sent)
	if p.Unreached > 0 {
		fmt.Fprintf(c.stdout, " (%d listed colleagues are not your contacts and did not get it)", p.Unreached)
	}
	fmt.Fprintln(c.stdout, ".")
	if p.Administrators+p.AdministratorsUnreached > 0 {
		fmt.Fprintf(c.stdout, "The other administrators can publish the next version: %d were sent the publishing capability", p.Administrators)
		if p.AdministratorsUnreached > 0 {
			fmt.Fprintf(c.stdout, "; %d are not your contacts and cannot publish until you publish again as their contact", p.AdministratorsUnreached)
		}
		fmt.Fprintln(c.stdout, ".")
	}
	return nil
}

func reachColleague(ctx context.Context, c *cli, name string) error {
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	ct, err := cl.ReachColleague(ctx, name)
	if err != nil {
		return reachError(err, name)
	}
	fmt.Fprintf(c.stdout, "Added %s from the organisation directory; you can write to them now.\n", safe(ct.Name, false))
	return nil
}

// reachError words ReachColleague's refusals.
func reachError(err error, name string) error {
	switch {
	case errors.Is(err, client.ErrNotEnrolled):
		return &cliError{msg: "this device is not enrolled in an organisation", hint: "the organisation's policy file names it (directory-organisation, directory-administrators)", err: err}
	case errors.Is(err, client.ErrNoReachSecret):
		return &cliError{msg: "this device cannot reach colleagues through the directory yet", hint: "it can once an administrator publishes the directory again and this device syncs", err: err}
	case errors.Is(err, client.ErrNotInDirectory):
		return &cliError{msg: strip(err), hint: "see the names with 'postern directory search " + safe(name, false) + "'", err: err}
	case errors.Is(err, client.ErrAlreadyContact):
		return &cliError{msg: strip(err), hint: "write to them with 'postern send'", err: err}
	case errors.Is(err, client.ErrColleagueNotPublished):
		return &cliError{msg: "the colleague's device has not said yet where colleagues reach it", hint: "it does when it next syncs; try again later, or exchange an invitation", err: err}
	case errors.Is(err, client.ErrIdentityMismatch):
		return &cliError{msg: "the keys the relay gave for this colleague are not the ones the directory lists; nothing was added", hint: "tell the organisation's administrators; their device corrects it at its next sync", err: err}
	}
	return directoryError(err)
}

// readSpec reads at most n bytes of the file at path.
func readSpec(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}

// jsonDirectory is the directory in --json output.
type jsonDirectory struct {
	Organisation   string                  `json:"organisation"`
	Version        uint64                  `json:"version"`
	Issued         time.Time               `json:"issued"`
	Administrators []string                `json:"administrators"`
	Entries        []client.DirectoryEntry `json:"entries"`
}

func jsonDirectoryOf(d *client.Directory) jsonDirectory {
	j := jsonDirectory{Organisation: d.Organisation, Version: d.Version, Issued: d.Issued.UTC(), Administrators: []string{}, Entries: d.Entries}
	for _, a := range d.Administrators {
		j.Administrators = append(j.Administrators, a.String())
	}
	if j.Entries == nil {
		j.Entries = []client.DirectoryEntry{}
	}
	return j
}

func printEntries(c *cli, es []client.DirectoryEntry, asJSON bool) error {
	return printList(c, es, asJSON, func(e client.DirectoryEntry) client.DirectoryEntry { return e },
		"No entries.", "KIND\tNAME\tTITLE\tTEAMS\tCONTACT", func(e client.DirectoryEntry) string {
			teams := make([]string, len(e.Teams))
			for i, t := range e.Teams {
				teams[i] = safe(t, false)
			}
			contact := safe(e.Contact, false)
			switch {
			case e.Self:
				contact = "(you)"
			case e.Kind == client.DirectoryPerson && e.Contact == "":
				contact = "(in the directory)"
			case e.Kind == client.DirectoryRole && e.Holder != "":
				contact = "held by " + safe(e.Holder, false)
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", e.Kind, safe(e.Name, false), safe(e.Title, false), strings.Join(teams, ", "), contact)
		})
}

// directoryError words the library's directory errors.
func directoryError(err error) error {
	switch {
	case errors.Is(err, client.ErrNoDirectory):
		return &cliError{msg: "this device holds no organisation directory", hint: "it arrives from an administrator once the organisation's policy file names the organisation (directory-organisation, directory-administrators)", err: err}
	case errors.Is(err, client.ErrInvalidDirectory):
		return &cliError{msg: strip(err), hint: "see docs/TEAMS.md for the directory file's format", err: err}
	case errors.Is(err, client.ErrDirectoryRefused):
		return &cliError{msg: strip(err), hint: "nothing was changed; tell the organisation's administrators", err: err}
	case errors.Is(err, client.ErrDirectoryCapability):
		return &cliError{msg: strip(err), hint: "publish from the administrator's device that published first", err: err}
	}
	return err
}
