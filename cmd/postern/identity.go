package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/postern/postern/client"
)

var initCmd = &command{
	name:  "init",
	usage: "init --relay URL --name NAME [--invite CODE]",
	help: `Create a new identity in the home directory and enrol this device on the
relay at URL (wss://…; ws:// only to a loopback address). NAME is how you
introduce yourself in invitations. --invite passes the relay's enrolment
invite code, when its operator requires one.

With --link, make this device a new device of a person who already uses
Postern instead: CODE is the link code that 'postern device link' shows on
one of their devices ("-" reads it from standard input), and DEVICE-NAME
names this device (OFFICE-PC). The relay is the code's. This device receives
the person's identity, its certificate and the contacts, and introduces
itself to every device of theirs; messages sent before it was linked stay on
the other devices.

The passphrase is asked twice on the terminal, or taken from
POSTERN_PASSPHRASE. It protects the key files; there is no way to recover
it. A new passphrase must have at least 12 characters and must not be one
of the commonly used ones (several unrelated words work well). An
organisation sets another minimum in /etc/postern/policy.conf
(%ProgramData%\Postern\policy.conf on Windows) with a line
"min-passphrase-length = 16"; POSTERN_MIN_PASSPHRASE_LENGTH raises it
further. The policy applies to new passphrases only: a home made with a
shorter one still opens.

With --restore FILE, the home becomes a new device of the person whose
backup FILE is ('postern backup'), on the backup's relay; NAME is then this
device's name (e.g. LAPTOP). The recovery key is asked on the terminal, or
taken from POSTERN_RECOVERY_KEY. A wrong key or a damaged file restores
nothing and leaves no home behind.`,
	run: runInit,
}

func runInit(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	relayURL := fs.String("relay", "", "")
	name := fs.String("name", "", "")
	invite := fs.String("invite", "", "")
	linkCode := fs.String("link", "", "")
	restore := fs.String("restore", "", "")
	if _, err := parseN(fs, cmd, args); err != nil {
		return err
	}
	if *linkCode != "" && *restore != "" {
		return usagef(cmd, "--link and --restore do not go together")
	}
	if *linkCode != "" {
		if *relayURL != "" {
			return usagef(cmd, "--link takes the relay from the code: leave out --relay")
		}
		if *name == "" {
			return usagef(cmd, "missing --name DEVICE-NAME (the name of this device, e.g. OFFICE-PC)")
		}
		return initLink(ctx, c, *linkCode, *name, *invite)
	}
	if *restore != "" {
		switch {
		case *relayURL != "":
			return usagef(cmd, "--restore takes the relay from the backup; leave out --relay")
		case *name == "":
			return usagef(cmd, "missing --name DEVICE-NAME")
		}
		return runRestore(ctx, c, *restore, *name, *invite)
	}
	switch {
	case *relayURL == "":
		return usagef(cmd, "missing --relay URL")
	case *name == "":
		return usagef(cmd, "missing --name NAME")
	}
	home, err := c.homeDir()
	if err != nil {
		return err
	}
	min, err := c.minPassphrase()
	if err != nil {
		return err
	}
	passphrase, err := c.newPassphrase(min)
	if err != nil {
		return err
	}
	c.relayURL = *relayURL
	opts, err := c.options()
	if err != nil {
		return err
	}
	opts.Invite = *invite
	cl, err := client.Init(ctx, home, passphrase, *relayURL, *name, opts)
	if err != nil {
		return err
	}
	defer cl.Close()
	w := cl.Whoami()
	fmt.Fprintf(c.stdout, "Created the identity of %s in %s.\n", safe(w.Name, false), home)
	printWhoami(c, w)
	fmt.Fprintf(c.stdout, "Next: 'postern invite' prints an invitation to give to a contact.\n")
	return nil
}

var whoamiCmd = &command{
	name:  "whoami",
	usage: "whoami [--json] [--contact NAME]",
	help: `Show your name, your relay, your identity fingerprint and this device's ID.
With --contact, show that contact's identity fingerprint and safety number
instead: compare the safety number with your contact's, in person or on a
call, to make sure no one stands between you. It does not contact the relay.`,
	run: runWhoami,
}

func runWhoami(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	contact := fs.String("contact", "", "")
	if _, err := parseN(fs, cmd, args); err != nil {
		return err
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	if *contact != "" {
		ct, err := findContact(cl, *contact)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, toJSONContact(ct))
		}
		tw := tabwriter.NewWriter(c.stdout, 0, 0, 1, ' ', 0)
		fmt.Fprintf(tw, "contact:\t%s\n", safe(ct.Name, false))
		fmt.Fprintf(tw, "identity:\t%s\n", ct.Identity)
		fmt.Fprintf(tw, "safety number:\t%s\n", ct.SafetyNumber)
		fmt.Fprintf(tw, "added:\t%s\n", ct.Added.Local().Format(fullTime))
		return tw.Flush()
	}
	w := cl.Whoami()
	if *asJSON {
		return writeJSON(c.stdout, struct {
			Name     string `json:"name"`
			Relay    string `json:"relay"`
			Identity string `json:"identity"`
			Device   string `json:"device"`
		}{w.Name, w.Relay, w.Identity.String(), w.Device.String()})
	}
	printWhoami(c, w)
	return nil
}

func printWhoami(c *cli, w client.Whoami) {
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "name:\t%s\n", safe(w.Name, false))
	fmt.Fprintf(tw, "relay:\t%s\n", safe(w.Relay, false))
	fmt.Fprintf(tw, "identity:\t%s\n", w.Identity)
	fmt.Fprintf(tw, "device:\t%s\n", w.Device)
	tw.Flush()
}

// initLink is init --link: this device becomes a new device of the person
// whose other device shows the code.
func initLink(ctx context.Context, c *cli, code, deviceName, invite string) error {
	if code == "-" {
		b, err := io.ReadAll(io.LimitReader(c.stdin, 4<<10))
		if err != nil {
			return fmt.Errorf("reading the link code: %w", err)
		}
		code = string(b)
	}
	code = strings.TrimSpace(code)
	home, err := c.homeDir()
	if err != nil {
		return err
	}
	min, err := c.minPassphrase()
	if err != nil {
		return err
	}
	passphrase, err := c.newPassphrase(min)
	if err != nil {
		return err
	}
	opts, err := c.options()
	if err != nil {
		return err
	}
	opts.Invite = invite
	fmt.Fprintln(c.stderr, "Waiting for the other device to answer…")
	cl, err := client.LinkWith(ctx, home, passphrase, code, deviceName, opts)
	if cl == nil {
		return err
	}
	defer cl.Close()
	if err != nil {
		// Linked, but the history did not come: say so, and go on.
		fmt.Fprintf(c.stderr, "postern: warning: %v\n", err)
	}
	w := cl.Whoami()
	n, err := cl.Contacts()
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Linked this device as %s of %s, with %d contacts, in %s.\n", safe(deviceName, false), safe(w.Name, false), len(n), home)
	printWhoami(c, w)
	return nil
}
