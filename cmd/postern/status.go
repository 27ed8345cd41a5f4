package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/client"
)

var statusCmd = &command{
	name:  "status",
	usage: "status set available|busy|off [--dnd-until TIME | --dnd FOR] [--forward-to NAME] | status [NAME] [--json]",
	help: `Availability and do-not-disturb, for the staff of an organisation directory.

status set available|busy|off: say whether you are available, busy or off
duty, signed with your identity and sent to every colleague of the
directory who is one of your contacts. --dnd-until TIME (2026-12-07 18:00,
or 18:00 for the next such time, your computer's zone; or RFC 3339) or
--dnd FOR (e.g. 30m, 2h, 1d) turns do-not-disturb on until then.
--forward-to NAME names the colleague (a contact's name, or a name in the
directory) who receives your messages while do-not-disturb runs or you are
off duty: whoever writes to you then reaches both of you, and is told.

status: the statuses this device holds, yours ("me") included. status
NAME: one person's. --json prints objects with name, identity,
availability, set, dnd_until, do_not_disturb, forward_to and forwarding.`,
	run: runStatus,
}

func runStatus(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	dndUntil := fs.String("dnd-until", "", "")
	dndFor := fs.String("dnd", "", "")
	forward := fs.String("forward-to", "", "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 && pos[0] == "set" {
		switch {
		case *asJSON:
			return usagef(cmd, "--json is for status and status NAME")
		case len(pos) < 2:
			return usagef(cmd, "missing available, busy or off")
		case len(pos) > 2:
			return usagef(cmd, "too many arguments")
		case *dndUntil != "" && *dndFor != "":
			return usagef(cmd, "--dnd-until and --dnd both say when do-not-disturb ends: give one")
		}
		a, err := client.ParseAvailability(pos[1])
		if err != nil {
			return usagef(cmd, "%q: want available, busy or off", pos[1])
		}
		o := client.StatusOptions{Availability: a, ForwardTo: *forward}
		now := time.Now()
		switch {
		case *dndFor != "":
			d, err := parseTimer(*dndFor)
			if err != nil || d <= 0 {
				return usagef(cmd, "--dnd: %q is not a duration (e.g. 30m, 2h, 1d)", *dndFor)
			}
			o.DNDUntil = now.Add(d)
		case *dndUntil != "":
			if o.DNDUntil, err = parseUntil(*dndUntil, now); err != nil {
				return usagef(cmd, "--dnd-until: %v", err)
			}
		}
		return setStatus(ctx, c, o)
	}
	if *dndUntil != "" || *dndFor != "" || *forward != "" {
		return usagef(cmd, "--dnd-until, --dnd and --forward-to are for status set")
	}
	if len(pos) > 1 {
		return usagef(cmd, "too many arguments (a name with spaces goes in quotes)")
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	var ss []client.Status
	if len(pos) == 1 {
		s, err := cl.Status(pos[0])
		if err != nil {
			return statusError(pos[0], err)
		}
		ss = []client.Status{s}
	} else if ss, err = cl.Statuses(); err != nil {
		return statusError("", err)
	}
	return printList(c, ss, *asJSON, jsonStatusOf, "No statuses.", "NAME\tAVAILABILITY\tDO NOT DISTURB\tFORWARDS TO\tSET", func(s client.Status) string {
		dnd := "-"
		if s.DoNotDisturb {
			dnd = "until " + s.DNDUntil.Local().Format(statusTime)
		}
		fw := "-"
		switch {
		case s.Forwarding:
			fw = safe(s.ForwardTo, false) + " (now)"
		case s.ForwardTo != "":
			fw = safe(s.ForwardTo, false)
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", safe(s.Name, false), s.Availability, dnd, fw, s.Set.Local().Format(statusTime))
	})
}

// statusTime is how statuses show times.
const statusTime = "2006-01-02 15:04 MST"

// parseUntil reads --dnd-until: RFC 3339, "YYYY-MM-DD HH:MM" or "HH:MM"
// (the next such time) in the local zone.
func parseUntil(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("2006-01-02 15:04", s, time.Local); err == nil {
		return t, nil
	}
	if t, err := time.ParseInLocation("15:04", s, time.Local); err == nil {
		y, m, d := now.In(time.Local).Date()
		at := time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, time.Local)
		if !at.After(now) {
			at = at.AddDate(0, 0, 1)
		}
		return at, nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (e.g. 18:00, \"2026-12-07 18:00\" or RFC 3339)", s)
}

func setStatus(ctx context.Context, c *cli, o client.StatusOptions) error {
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	set, err := cl.SetStatus(ctx, o)
	if err != nil {
		return statusError(o.ForwardTo, err)
	}
	s := set.Status
	var b strings.Builder
	fmt.Fprintf(&b, "Status set: %s", s.Availability)
	if !s.DNDUntil.IsZero() {
		fmt.Fprintf(&b, ", do not disturb until %s", s.DNDUntil.Local().Format(statusTime))
	}
	if s.ForwardTo != "" {
		fmt.Fprintf(&b, ", forwarded to %s while do-not-disturb runs or you are off duty", safe(s.ForwardTo, false))
	}
	fmt.Fprintf(&b, "; sent to %d colleagues", set.Sent)
	if set.Unreached > 0 {
		fmt.Fprintf(&b, " (%d colleagues in the directory are not your contacts and did not get it)", set.Unreached)
	}
	fmt.Fprintln(c.stdout, b.String()+".")
	return nil
}

// printForwarding tells on standard error that a sent message was
// forwarded by its recipient's status, or could not be.
func printForwarding(c *cli, m client.Message) {
	switch {
	case m.ForwardedTo != "":
		fmt.Fprintf(c.stderr, "forwarded to %s (%s)\n", safe(m.ForwardedTo, false), safe(m.ForwardReason, false))
	case m.NotForwarded != "":
		fmt.Fprintf(c.stderr, "not forwarded: %s; %s, whom their status names, is not a contact you can write to\n", safe(m.ForwardReason, false), safe(m.NotForwarded, false))
	}
}

// jsonStatus is a status in --json output.
type jsonStatus struct {
	Name         string     `json:"name"`
	Identity     string     `json:"identity"`
	Availability string     `json:"availability"`
	Set          time.Time  `json:"set"`
	DNDUntil     *time.Time `json:"dnd_until,omitempty"`
	DoNotDisturb bool       `json:"do_not_disturb"`
	ForwardTo    string     `json:"forward_to,omitempty"`
	Forwarding   bool       `json:"forwarding"`
}

func jsonStatusOf(s client.Status) jsonStatus {
	j := jsonStatus{Name: s.Name, Identity: s.Identity.String(), Availability: s.Availability.String(), Set: s.Set, DoNotDisturb: s.DoNotDisturb, ForwardTo: s.ForwardTo, Forwarding: s.Forwarding}
	if !s.DNDUntil.IsZero() {
		u := s.DNDUntil
		j.DNDUntil = &u
	}
	return j
}

// statusError words the library's status errors.
func statusError(name string, err error) error {
	switch {
	case errors.Is(err, client.ErrNoDirectory):
		return directoryError(err)
	case errors.Is(err, client.ErrNoStatus):
		return &cliError{msg: fmt.Sprintf("no status of %s is held on this device", safe(name, false)), err: err}
	case errors.Is(err, client.ErrUnknownContact):
		return &cliError{msg: fmt.Sprintf("%s is neither a contact nor in the organisation directory", safe(name, false)), hint: "see: postern directory search " + safe(name, false), err: err}
	case errors.Is(err, client.ErrInvalidStatus):
		return &cliError{msg: strip(err), err: err}
	}
	return err
}
