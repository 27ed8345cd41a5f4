package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/postern/postern/client"
	"github.com/postern/postern/ui"
)

var optinCmd = &command{
	name:  "optin",
	usage: "optin NAME [--yes]",
	help: `Opt in again to writing to NAME after NAME (a care team or its organisation)
restricted your access to Secure Messaging.

When a send is refused because you were restricted, postern opts you out:
it refuses to send to NAME itself, with the same sentence, until you opt in
again. Once the organisation's coordinator tells you your access is
restored, run this: it shows the terms of use and records that you accept
them, with their version and the time. If your access was not restored, the
next send is refused again and you are opted out again.

--yes accepts without asking (it is needed when standard input is not a
terminal).`,
	run: runOptin,
}

func runOptin(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	yes := fs.Bool("yes", false, "")
	pos, err := parseN(fs, cmd, args, "NAME")
	if err != nil {
		return err
	}
	if !*yes && !isTerminal(c.stdin) {
		return usagef(cmd, "optin asks you to accept the terms of use: run it on a terminal, or add --yes")
	}
	name := pos[0]
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	cs, err := cl.Contacts()
	if err != nil {
		return err
	}
	var ct *client.Contact
	for i := range cs {
		if cs[i].Name == name {
			ct = &cs[i]
		}
	}
	if ct == nil {
		return unknownContact(name, client.ErrUnknownContact)
	}
	if ct.Restricted == 0 {
		fmt.Fprintf(c.stdout, "%s has not restricted your access: there is nothing to opt in to.\n", safe(name, false))
		return nil
	}
	fmt.Fprintf(c.stdout, "Terms of use (version %s):\n\n%s\n", ui.TermsVersion, strings.TrimSpace(ui.TermsText()))
	if !*yes {
		fmt.Fprintf(c.stdout, "\nDo you accept these terms, to write to %s again? [y/N] ", safe(name, false))
		line, _ := bufio.NewReader(c.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			fmt.Fprintln(c.stdout, "Not opted in.")
			return errors.New("the terms of use were not accepted")
		}
	}
	if err := cl.OptIn(name, ui.TermsVersion); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Opted in to writing to %s again (terms of use %s accepted). If your access was not restored, your next message is refused again.\n", safe(name, false), ui.TermsVersion)
	return nil
}
