package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/postern/postern/client"
)

var inviteCmd = &command{
	name:  "invite",
	usage: "invite",
	help: `Print an invitation: one line to give to the person you want to talk to,
who accepts it with 'postern accept'. Only the line is printed, so it can be
redirected to a file or piped. Anyone who holds the line can become your
contact: give it over a channel you trust.`,
	run: runInvite,
}

func runInvite(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	if _, err := parseN(fs, cmd, args); err != nil {
		return err
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	code, err := cl.Invite(ctx)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(c.stdout, code)
	return err
}

var acceptCmd = &command{
	name:  "accept",
	usage: "accept CODE|- --as NAME [--replace]",
	help: `Accept an invitation printed by someone's 'postern invite' and save them as
the contact NAME. With - the invitation is read from standard input, which
keeps it out of the shell history and the process list.

Then compare safety numbers: 'postern whoami --contact NAME'.

If NAME is a contact with another identity (they lost every device and
started over with a new 'postern init', or someone pretends to be them),
accept is refused unless you give --replace. With --replace, NAME keeps its
conversation and gets the new identity; nothing is sent to NAME until you
compare the new safety number and confirm it: 'postern contacts verify NAME'.`,
	run: runAccept,
}

func runAccept(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	as := fs.String("as", "", "")
	replace := fs.Bool("replace", false, "")
	pos, err := parseN(fs, cmd, args, "CODE")
	if err != nil {
		return err
	}
	if *as == "" {
		return usagef(cmd, "missing --as NAME")
	}
	code := pos[0]
	if code == "-" {
		b, err := io.ReadAll(io.LimitReader(c.stdin, 64<<10))
		if err != nil {
			return fmt.Errorf("reading the invitation: %w", err)
		}
		code = string(b)
	}
	code = strings.TrimSpace(code)
	if code == "" {
		return usagef(cmd, "empty invitation")
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	ct, err := cl.AcceptWith(ctx, code, *as, &client.AcceptOptions{Replace: *replace})
	if errors.Is(err, client.ErrOtherIdentity) {
		name := safe(*as, false)
		return &cliError{
			msg:  fmt.Sprintf("a contact named %s with another identity exists; nothing was changed", name),
			hint: fmt.Sprintf("if %s started over, accept with --replace and compare safety numbers", name),
			err:  err,
		}
	}
	if err != nil {
		return err
	}
	name := safe(ct.Name, false)
	if ct.Verification == client.Changed {
		fmt.Fprintf(c.stdout, "Replaced %s's identity. Nothing is sent to %s until you compare the new safety number.\n", name, name)
		fmt.Fprintf(c.stdout, "Safety number: %s\n", ct.SafetyNumber)
		fmt.Fprintf(c.stdout, "Compare it with %s's, in person or on a call (postern whoami --contact %s), then: postern contacts verify %s\n", name, name, name)
		return nil
	}
	fmt.Fprintf(c.stdout, "Added %s.\n", name)
	fmt.Fprintf(c.stdout, "Safety number: %s\n", ct.SafetyNumber)
	fmt.Fprintf(c.stdout, "Compare it with %s's, in person or on a call: postern whoami --contact %s\n", name, name)
	return nil
}

var blockCmd = &command{
	name:  "block",
	usage: "block NAME",
	help: `Stop the contact NAME from sending to you: the relay refuses their messages
from now on, and they are told that you no longer accept messages from them.
You do not send to them either while they are blocked. 'postern contacts'
shows who is blocked; 'postern unblock NAME' undoes it.`,
	run: runBlock,
}

func runBlock(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	pos, err := parseN(fs, cmd, args, "NAME")
	if err != nil {
		return err
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	if err := cl.Block(ctx, pos[0]); err != nil {
		if errors.Is(err, client.ErrUnknownContact) {
			return unknownContact(pos[0], err)
		}
		return err
	}
	fmt.Fprintf(c.stdout, "Blocked %s.\n", safe(pos[0], false))
	return nil
}

var unblockCmd = &command{
	name:  "unblock",
	usage: "unblock NAME",
	help: `Accept messages from the blocked contact NAME again, and send to them again.
Messages they tried to send while blocked were refused by the relay (they
were told) and do not arrive now.`,
	run: runUnblock,
}

func runUnblock(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	pos, err := parseN(fs, cmd, args, "NAME")
	if err != nil {
		return err
	}
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	ct, err := findContact(cl, pos[0])
	if err != nil {
		return err
	}
	if !ct.Blocked {
		fmt.Fprintf(c.stdout, "%s is not blocked.\n", safe(ct.Name, false))
		return nil
	}
	if err := cl.Unblock(ctx, pos[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Unblocked %s.\n", safe(pos[0], false))
	return nil
}

var contactsCmd = &command{
	name:  "contacts",
	usage: "contacts [--json] | contacts verify NAME [--number DIGITS]",
	help: `List your contacts with their safety numbers, whether you verified them and
when they were added; a BLOCKED column appears when you have blocked someone
('postern block'). --json prints an array of objects with name, identity,
safety_number, verification ("unverified", "verified" or "changed"), added
and blocked, "restricted" ("service", "new" or "replies") for a team that
restricted you (see 'postern optin'), with "sends_refused" while that refuses
what you write now (a team's "new" stops only new conversations, "replies"
only replies in one it answered), and "team" for a care team (its name,
Postern's notice and its response windows). It does not contact the relay.

'contacts verify NAME' records that you compared NAME's safety number with
theirs, in person or on a call ('postern whoami --contact NAME' shows it on
both sides). With --number, the digits you were read out (or the text of
their QR code, postern-safety:1:...) must match, or nothing changes. If a contact's safety number changes, nothing is sent to
them until you compare the new one and verify them again.`,
	run: runContacts,
}

func runContacts(ctx context.Context, c *cli, cmd *command, args []string) error {
	if len(args) > 0 && args[0] == "verify" {
		return runContactsVerify(c, cmd, args[1:])
	}
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	if _, err := parseN(fs, cmd, args); err != nil {
		return err
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	cts, err := cl.Contacts()
	if err != nil {
		return err
	}
	anyBlocked, anyTimer, anyRestricted := false, false, false
	for _, ct := range cts {
		anyBlocked = anyBlocked || ct.Blocked
		anyTimer = anyTimer || ct.Disappearing != 0
		anyRestricted = anyRestricted || ct.Restricted != 0
	}
	header := "NAME\tSAFETY NUMBER\tVERIFIED\tADDED"
	if anyBlocked {
		header += "\tBLOCKED"
	}
	if anyTimer {
		header += "\tDISAPPEAR"
	}
	if anyRestricted {
		header += "\tRESTRICTED YOU"
	}
	return printList(c, cts, *asJSON, toJSONContact, "No contacts yet. Exchange invitations with 'postern invite' and 'postern accept'.",
		header, func(ct client.Contact) string {
			verified := map[client.Verification]string{client.Verified: "yes", client.Changed: "CHANGED"}[ct.Verification]
			if verified == "" {
				verified = "no"
			}
			row := fmt.Sprintf("%s\t%s\t%s\t%s", safe(ct.Name, false), ct.SafetyNumber, verified, ct.Added.Local().Format(tableTime))
			if anyBlocked {
				row += "\t" + map[bool]string{true: "yes", false: "no"}[ct.Blocked]
			}
			if anyTimer {
				row += "\t" + timerText(ct.Disappearing)
			}
			if anyRestricted {
				row += "\t" + map[bool]string{true: ct.Restricted.String() + " ('postern optin')", false: "no"}[ct.Restricted != 0]
			}
			return row
		})
}

// jsonContact is a contact in --json output.
type jsonContact struct {
	Name         string `json:"name"`
	Identity     string `json:"identity"`
	SafetyNumber string `json:"safety_number"`
	Verification string `json:"verification"`
	Added        string `json:"added"`
	Blocked      bool   `json:"blocked"`
	// DisappearSeconds: the conversation's disappearing-message timer
	// ('postern disappear'); absent when it is off.
	DisappearSeconds int64 `json:"disappear_seconds,omitempty"`
	// Restricted: the contact restricted your access ("service", "new"
	// or "replies"): you write to it again after 'postern optin'.
	// OptedIn, OptInTerms: when you last opted in, to which terms.
	Restricted string `json:"restricted,omitempty"`
	// SendsRefused: what you write to it is refused now.
	SendsRefused bool   `json:"sends_refused,omitempty"`
	OptedIn      string `json:"opted_in,omitempty"`
	OptInTerms   string `json:"opt_in_terms,omitempty"`
	// RestrictedByMe: you restricted the contact.
	RestrictedByMe string `json:"restricted_by_me,omitempty"`
	// Team: the contact said it is a team (absent when not).
	Team *jsonTeamNotice `json:"team,omitempty"`
}

// jsonTeamNotice is what a contact that is a team said of itself:
// its name, and its response windows as a sentence (absent when it stated
// none); Notice is Postern's fixed notice.
type jsonTeamNotice struct {
	Name    string `json:"name"`
	Notice  string `json:"notice"`
	Windows string `json:"windows,omitempty"`
}

func toJSONContact(ct client.Contact) jsonContact {
	j := jsonContact{
		Name:         ct.Name,
		Identity:     ct.Identity.String(),
		SafetyNumber: ct.SafetyNumber,
		Verification: ct.Verification.String(),
		Added:        rfc3339(ct.Added),
		Blocked:      ct.Blocked,

		DisappearSeconds: int64(ct.Disappearing / time.Second),

		Restricted:     ct.Restricted.String(),
		SendsRefused:   ct.SendsRefused,
		OptInTerms:     ct.OptInTerms,
		RestrictedByMe: ct.RestrictedByMe.String(),
	}
	if !ct.OptedIn.IsZero() {
		j.OptedIn = rfc3339(ct.OptedIn)
	}
	if ct.Team != nil {
		j.Team = &jsonTeamNotice{Name: ct.Team.Name, Notice: client.TeamNoticeText, Windows: ct.Team.Sentence(ct.Name)}
	}
	return j
}

// findContact returns the contact called name.
func findContact(cl *client.Client, name string) (client.Contact, error) {
	cts, err := cl.Contacts()
	if err != nil {
		return client.Contact{}, err
	}
	for _, ct := range cts {
		if ct.Name == name {
			return ct, nil
		}
	}
	return client.Contact{}, unknownContact(name, client.ErrUnknownContact)
}

func unknownContact(name string, err error) error {
	return &cliError{
		msg:  fmt.Sprintf("no contact named %q", name),
		hint: "list your contacts with: postern contacts",
		err:  err,
	}
}

func runContactsVerify(c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	number := fs.String("number", "", "")
	pos, err := parseN(fs, cmd, args, "NAME")
	if err != nil {
		return err
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	name := safe(pos[0], false)
	switch err := cl.VerifyContact(pos[0], *number); {
	case errors.Is(err, client.ErrUnknownContact):
		return unknownContact(pos[0], err)
	case errors.Is(err, client.ErrSafetyNumberMismatch):
		return &cliError{
			msg:  fmt.Sprintf("the number does not match %s's safety number; nothing was changed", name),
			hint: "compare again, in person or on a call: postern whoami --contact " + name,
			err:  err,
		}
	case err != nil:
		return err
	}
	fmt.Fprintf(c.stdout, "Verified %s. If their safety number changes, nothing is sent to them until you verify them again.\n", name)
	return nil
}
