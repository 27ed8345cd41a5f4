package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/postern/postern/client"
)

var listenCmd = &command{
	name:  "listen",
	usage: "listen [--json | --notify]",
	help: `Stay connected to the relay and print each new message as it arrives, one
line each: time, sender and text (newlines shown as \n). --json prints one
JSON object a line, as in 'postern inbox --json'. --notify prints only
"TIME New secure message" for each message received, with nothing of its
sender, subject or text: for a notifier that others may see (a status
bar, a shared screen). Stops on Ctrl-C or
SIGTERM. Other commands, such as 'postern inbox', work while it runs, and
it receives from contacts added meanwhile. One listen runs per home: a
second is refused. If a message cannot be stored (a full disk), it stops
with an error; the relay keeps the message.`,
	run: runListen,
}

func runListen(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	notify := fs.Bool("notify", false, "")
	if _, err := parseN(fs, cmd, args); err != nil {
		return err
	}
	if *asJSON && *notify {
		return usagef(cmd, "--json and --notify go apart: --notify prints nothing of a message")
	}
	home, err := c.homeDir()
	if err != nil {
		return err
	}
	// The lock comes before the connection: a refused listener must not
	// receive (and so hide from the running one) a single message. A home
	// without a key file gets no lock file; dial says what is wrong.
	if _, err := os.Stat(filepath.Join(home, client.KeyFileName)); err == nil {
		lk, err := lockListen(home)
		if err != nil {
			return err
		}
		defer lk.release()
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	enc := json.NewEncoder(c.stdout)
	for {
		m, err := cl.Receive(ctx)
		if ctx.Err() != nil {
			return nil // interrupted: the normal way to stop
		}
		if err != nil {
			return err
		}
		switch {
		case *notify && m.Outgoing:
			continue // sent from another of this person's devices: nothing new to read
		case *notify:
			_, err = fmt.Fprintln(c.stdout, notifyLine(m))
		case *asJSON:
			err = enc.Encode(toJSONMessage(m))
		default:
			_, err = fmt.Fprintf(c.stdout, "%s %s: %s\n", m.Time.Local().Format(time.DateTime), safe(m.From, false), safe(displayText(m), false))
		}
		if err != nil {
			return err // standard output is gone
		}
		// Receive has stored and acknowledged m already: it stays in the
		// inbox even if this process dies now.
	}
}

// notifyLine is what listen --notify prints for m: when it arrived on
// this device and a fixed sentence. Never its sender, subject or text.
func notifyLine(m client.Message) string {
	at := m.Received
	if at.IsZero() {
		at = time.Now()
	}
	return at.Local().Format(time.DateTime) + " New secure message"
}
