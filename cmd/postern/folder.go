package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/postern/postern/client"
)

var folderCmd = &command{
	name:  "folder",
	usage: "folder list [--json] | folder create NAME | folder rename OLD NEW | folder delete NAME | folder move ID FOLDER",
	help: `Folders of messages. Inbox holds the messages you receive, Sent those you
send, Drafts your drafts ('postern draft'), Archive what you put away; you
can make up to 256 folders of your own. Changes reach your other devices.

folder list: every folder with its unread and total counts. --json prints an
array of objects with id, name, system, messages and unread.

folder create NAME: make a folder (a name of at most 64 bytes on one line,
not one of the four above, not the name of another folder).

folder rename OLD NEW: rename a folder of your own.

folder delete NAME: delete a folder of your own; its messages go back to
Inbox (received) or Sent (sent).

folder move ID FOLDER: put message ID (an unambiguous prefix will do) in
FOLDER: Archive, a folder of your own, or back in Inbox (received messages)
or Sent (sent ones).

Folder names are matched without regard to letter case. Nothing here
contacts your contacts: folders are yours alone.`,
	run: runFolder,
}

func runFolder(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "missing what to do: list, create, rename, delete or move")
	}
	want := map[string][]string{
		"list": nil, "create": {"NAME"}, "rename": {"OLD", "NEW"}, "delete": {"NAME"}, "move": {"ID", "FOLDER"},
	}
	names, ok := want[pos[0]]
	switch {
	case !ok:
		return usagef(cmd, "unknown folder command %q", pos[0])
	case *asJSON && pos[0] != "list":
		return usagef(cmd, "--json is for folder list")
	case len(pos)-1 < len(names):
		return usagef(cmd, "missing %s", names[len(pos)-1])
	case len(pos)-1 > len(names):
		return usagef(cmd, "too many arguments")
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	switch pos[0] {
	case "list":
		return listFolders(c, cl, *asJSON)
	case "create":
		f, err := cl.CreateFolder(ctx, pos[1])
		if err != nil {
			return folderError(err, pos[1])
		}
		fmt.Fprintf(c.stdout, "Made folder %s.\n", safe(f.Name, false))
	case "rename":
		f, err := findFolder(cl, pos[1])
		if err != nil {
			return err
		}
		if err := cl.RenameFolder(ctx, f.ID, pos[2]); err != nil {
			return folderError(err, pos[2])
		}
		fmt.Fprintf(c.stdout, "Renamed folder %s to %s.\n", safe(f.Name, false), safe(pos[2], false))
	case "delete":
		f, err := findFolder(cl, pos[1])
		if err != nil {
			return err
		}
		if err := cl.DeleteFolder(ctx, f.ID); err != nil {
			return folderError(err, f.Name)
		}
		fmt.Fprintf(c.stdout, "Deleted folder %s; its messages are back in Inbox or Sent.\n", safe(f.Name, false))
	case "move":
		m, err := findMessage(cl, pos[1])
		if err != nil {
			return err
		}
		f, err := findFolder(cl, pos[2])
		if err != nil {
			return err
		}
		if err := cl.MoveMessage(ctx, m.ID, f.ID); err != nil {
			return folderError(err, f.Name)
		}
		fmt.Fprintf(c.stdout, "Moved %s to %s.\n", m.ID, safe(f.Name, false))
	}
	return nil
}

// jsonFolder is a folder in --json output.
type jsonFolder struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	System   bool   `json:"system"`
	Messages int    `json:"messages"`
	Unread   int    `json:"unread"`
}

func listFolders(c *cli, cl *client.Client, asJSON bool) error {
	fs, err := cl.Folders()
	if err != nil {
		return err
	}
	return printList(c, fs, asJSON, func(f client.Folder) jsonFolder {
		return jsonFolder{ID: f.ID, Name: f.Name, System: f.System, Messages: f.Messages, Unread: f.Unread}
	}, "", "FOLDER\tUNREAD\tMESSAGES", func(f client.Folder) string {
		return fmt.Sprintf("%s\t%d\t%d", safe(f.Name, false), f.Unread, f.Messages)
	})
}

// findFolder returns the folder named name (letter case aside) or with
// that ID.
func findFolder(cl *client.Client, name string) (client.Folder, error) {
	f, err := cl.FolderByName(name)
	if errors.Is(err, client.ErrNoFolder) {
		return f, &cliError{msg: fmt.Sprintf("no folder %q", name), hint: "list folders with: postern folder list", err: err}
	}
	return f, err
}

// folderError words the library's folder errors.
func folderError(err error, name string) error {
	switch {
	case errors.Is(err, client.ErrFolderName):
		return &cliError{msg: fmt.Sprintf("%q cannot be a folder name", name), hint: "use 1 to 64 bytes on one line, not Inbox, Sent, Drafts or Archive", err: err}
	case errors.Is(err, client.ErrFolderExists):
		return &cliError{msg: fmt.Sprintf("there is already a folder named %q", name), hint: "choose another name, or see them with: postern folder list", err: err}
	case errors.Is(err, client.ErrTooManyFolders):
		return &cliError{msg: "you have 256 folders of your own already", hint: "delete one you no longer use: postern folder delete NAME", err: err}
	case errors.Is(err, client.ErrSystemFolder):
		return &cliError{msg: "Inbox, Sent, Drafts and Archive cannot be renamed or deleted", err: err}
	case errors.Is(err, client.ErrFolderNotAllowed):
		return &cliError{msg: fmt.Sprintf("this message cannot go to %s", name), hint: "received messages go to Inbox, sent ones to Sent; both to Archive or a folder of your own", err: err}
	}
	return err
}
