package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/postern/postern/client"
)

var draftCmd = &command{
	name:  "draft",
	usage: "draft list [--json] | draft save [--id ID] [--to NAME] [--subject S] [--reply-to ID] [TEXT...|-] | draft send ID | draft delete ID",
	help: `Messages being written, kept on this device and your other devices until
they are sent or deleted. A draft has no files.

draft list: your drafts, the most recently changed first: ID, recipient,
time of the last change and the start of the text. --json prints an array
of objects with id, to, subject, text, reply_to, created and updated.

draft save: save a new draft, or with --id ID replace draft ID (an
unambiguous prefix will do); it prints the draft's ID. --to NAME chooses the
contact, --subject S the subject, --reply-to ID the message it answers;
TEXT (- reads standard input) is the text. Options not given keep their
value in a draft saved again; a TEXT given replaces the text.

draft send ID: send the draft as 'postern send' would, then delete it. It
needs a recipient and a text.

draft delete ID: delete the draft.`,
	run: runDraft,
}

func runDraft(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	id := fs.String("id", "", "")
	to := fs.String("to", "", "")
	subject := fs.String("subject", "", "")
	replyTo := fs.String("reply-to", "", "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "missing what to do: list, save, send or delete")
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case pos[0] != "list" && pos[0] != "save" && pos[0] != "send" && pos[0] != "delete":
		return usagef(cmd, "unknown draft command %q", pos[0])
	case *asJSON && pos[0] != "list":
		return usagef(cmd, "--json is for draft list")
	case pos[0] != "save" && (set["id"] || set["to"] || set["subject"] || set["reply-to"]):
		return usagef(cmd, "--id, --to, --subject and --reply-to are for draft save")
	case pos[0] == "list" && len(pos) > 1, (pos[0] == "send" || pos[0] == "delete") && len(pos) > 2:
		return usagef(cmd, "too many arguments")
	case (pos[0] == "send" || pos[0] == "delete") && len(pos) < 2:
		return usagef(cmd, "missing ID")
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	switch pos[0] {
	case "list":
		ds, err := cl.Drafts()
		if err != nil {
			return err
		}
		return printList(c, ds, *asJSON, toJSONDraft, "No drafts.", "ID\tTO\tUPDATED\tTEXT", func(d client.Draft) string {
			text := d.Text
			if d.Subject != "" {
				text = d.Subject + ": " + text
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s", d.ID[:16], safe(d.To, false), d.Updated.Local().Format(tableTime), preview(text, previewRunes))
		})
	case "save":
		var d client.Draft
		if set["id"] {
			if d, err = findDraft(cl, *id); err != nil {
				return err
			}
		}
		if set["to"] {
			d.To = *to
		}
		if set["subject"] {
			d.Subject = *subject
		}
		if set["reply-to"] {
			d.ReplyTo = ""
			if *replyTo != "" {
				orig, err := findMessage(cl, *replyTo)
				if err != nil {
					return err
				}
				d.ReplyTo = orig.ID
			}
		}
		if len(pos) > 1 {
			d.Text = strings.Join(pos[1:], " ")
			if len(pos) == 2 && pos[1] == "-" {
				b, err := io.ReadAll(io.LimitReader(c.stdin, maxStdinText+1))
				if err != nil {
					return fmt.Errorf("reading the draft from standard input: %w", err)
				}
				if len(b) > maxStdinText {
					return &cliError{msg: "the draft on standard input is too long"}
				}
				d.Text = strings.TrimRight(string(b), "\r\n")
			}
		}
		saved, err := cl.SaveDraft(ctx, d)
		switch {
		case errors.Is(err, client.ErrUnknownContact):
			return unknownContact(d.To, err)
		case errors.Is(err, client.ErrInvalidSubject):
			return &cliError{msg: "the subject is too long or has control characters; the draft was not saved", hint: "use a subject of at most 256 bytes on one line", err: err}
		case errors.Is(err, client.ErrTooManyDrafts):
			return &cliError{msg: "you have 1000 drafts already; the draft was not saved", hint: "send or delete some: postern draft list", err: err}
		case err != nil:
			return err
		}
		fmt.Fprintf(c.stdout, "Saved draft %s.\n", saved.ID)
	case "send":
		d, err := findDraft(cl, pos[1])
		if err != nil {
			return err
		}
		if d.To == "" || d.Text == "" {
			return &cliError{msg: "the draft has no recipient or no text; nothing was sent", hint: "complete it: postern draft save --id " + d.ID[:16] + " --to NAME TEXT...", err: client.ErrDraftIncomplete}
		}
		cl.Close()
		// Sent as 'postern send' sends (the same checks, words and exit
		// statuses), then deleted.
		send := []string{d.To}
		if d.Subject != "" {
			send = append(send, "--subject", d.Subject)
		}
		if d.ReplyTo != "" {
			send = append(send, "--reply-to", d.ReplyTo)
		}
		send = append(send, "--", d.Text)
		if err := runSend(ctx, c, sendCmd, send); err != nil {
			return err
		}
		cl, err := c.open()
		if err != nil {
			return err
		}
		defer cl.Close()
		if err := cl.DeleteDraft(ctx, d.ID); err != nil && !errors.Is(err, client.ErrNoDraft) {
			return err
		}
	case "delete":
		d, err := findDraft(cl, pos[1])
		if err != nil {
			return err
		}
		if err := cl.DeleteDraft(ctx, d.ID); err != nil {
			return err
		}
		fmt.Fprintf(c.stdout, "Deleted draft %s.\n", d.ID[:16])
	}
	return nil
}

// jsonDraft is a draft in --json output.
type jsonDraft struct {
	ID      string `json:"id"`
	To      string `json:"to"`
	Subject string `json:"subject,omitempty"`
	Text    string `json:"text"`
	ReplyTo string `json:"reply_to,omitempty"`
	Created string `json:"created"`
	Updated string `json:"updated"`
}

func toJSONDraft(d client.Draft) jsonDraft {
	return jsonDraft{ID: d.ID, To: d.To, Subject: d.Subject, Text: d.Text, ReplyTo: d.ReplyTo, Created: rfc3339(d.Created), Updated: rfc3339(d.Updated)}
}

// findDraft returns the draft with this ID or the only one whose ID
// starts with it.
func findDraft(cl *client.Client, id string) (client.Draft, error) {
	ds, err := cl.Drafts()
	if err != nil {
		return client.Draft{}, err
	}
	var found []client.Draft
	for _, d := range ds {
		if d.ID == id {
			return d, nil
		}
		if id != "" && strings.HasPrefix(d.ID, id) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return client.Draft{}, &cliError{msg: fmt.Sprintf("no draft %q", id), hint: "list drafts and their IDs with: postern draft list", err: client.ErrNoDraft}
	case 1:
		return found[0], nil
	}
	return client.Draft{}, &cliError{msg: fmt.Sprintf("%d drafts have IDs starting with %q", len(found), id), hint: "give more of the ID"}
}
