package main

import (
	"context"
	"fmt"
)

var settingsCmd = &command{
	name:  "settings",
	usage: "settings [--json] | settings receipts on|off",
	help: `Show or change this device's settings.

settings: list them ("read receipts: on").

settings receipts on|off: whether this device tells the senders of messages
that you read them (read receipts, on by default). Off, 'postern inbox' on
their side never shows your messages as read; it still shows them delivered:
delivered receipts are always sent. Receipts travel end-to-end encrypted, as
ordinary messages the relay cannot tell apart. The setting is kept on this
device only, and reads no message: it works without the relay.`,
	run: runSettings,
}

// jsonSettings is the --json output of "postern settings".
type jsonSettings struct {
	ReadReceipts bool `json:"read_receipts"`
}

func runSettings(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	var on bool
	switch {
	case len(pos) == 0:
	case pos[0] != "receipts":
		return usagef(cmd, "unknown setting %q; the settings are: receipts", pos[0])
	case len(pos) == 1:
		return usagef(cmd, "missing on or off")
	case len(pos) > 2:
		return usagef(cmd, "too many arguments")
	case pos[1] == "on":
		on = true
	case pos[1] == "off":
	default:
		return usagef(cmd, "receipts takes on or off, not %q", pos[1])
	}
	if len(pos) > 0 && *asJSON {
		return usagef(cmd, "--json is for listing the settings")
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	if len(pos) > 0 {
		if err := cl.SetReadReceipts(on); err != nil {
			return err
		}
		if on {
			fmt.Fprintln(c.stdout, "Read receipts are on: senders see when you read their messages.")
		} else {
			fmt.Fprintln(c.stdout, "Read receipts are off: senders no longer see when you read their messages (they still see them delivered).")
		}
		return nil
	}
	s := jsonSettings{ReadReceipts: cl.ReadReceipts()}
	if *asJSON {
		return writeJSON(c.stdout, s)
	}
	fmt.Fprintf(c.stdout, "read receipts: %s\n", onOff(s.ReadReceipts))
	return nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
