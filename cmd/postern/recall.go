package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/postern/postern/client"
)

var recallCmd = &command{
	name:  "recall",
	usage: "recall ID",
	help: `Delete a message you sent, for everyone.

The message is deleted at once on this device, and then on every device of
the person you sent it to and on your other devices: its text, subject and
files are gone, and in its place each shows who deleted it and when. The files
you uploaded are deleted from the relay. ID is the message's ID as
'postern inbox' shows it (or the start of it, if only one message has it).

Only the person who sent a message can delete it for everyone. A recall
cannot reach what already left Postern: a file someone saved, a record
export, a screenshot, or a device whose postern is older than this version.
A device that is offline gets the recall when it is back.`,
	run: runRecall,
}

func runRecall(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef(cmd, "missing ID")
	case len(pos) > 1:
		return usagef(cmd, "too many arguments")
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	m, err := findMessage(cl, pos[0])
	if err != nil {
		return err
	}
	id := m.ID
	if _, err := cl.Recall(ctx, id); err != nil {
		if errors.Is(err, client.ErrNotSender) {
			return fmt.Errorf("message %s is not yours: only the person who sent a message can delete it for everyone", id)
		}
		// Either nothing changed, or it is deleted here and the error
		// says which devices could not be told (the outbox retries what
		// it queued): no success line either way.
		return err
	}
	_, err = fmt.Fprintf(c.stdout, "Deleted message %s for everyone.\n", id)
	return err
}
