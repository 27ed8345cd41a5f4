package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/client"
)

var disappearCmd = &command{
	name:  "disappear",
	usage: "disappear NAME [DURATION|off] [--json]",
	help: `Show or set the disappearing-message timer of your conversation with NAME.

disappear NAME: print the timer ("off" when there is none).

disappear NAME DURATION: from now on, every message either of you sends in
the conversation, from any of your devices, is deleted with its files DURATION
after it was sent, on every device of both of you; the files you uploaded are
deleted from the relay too. DURATION is a number and a unit: s, m, h, d
(days) or w (weeks), e.g. 30m, 8h, 7d; from 5s to 4w. Both of you can change
it; the latest change holds. Messages already sent keep the timer they were
sent with.

disappear NAME off: messages sent from now on stay.

Messages are deleted when their time is up while postern runs ('postern ui',
'postern listen'), and otherwise the next time any postern command opens this
home. Someone can still copy a message while they have it: a timer is a
tidiness rule between people who trust each other, not a protection against
the person you write to. Both of you need a version of postern that knows
disappearing messages: an older one does not get messages sent with a timer.`,
	run: runDisappear,
}

// jsonDisappear is the --json output of "postern disappear NAME".
type jsonDisappear struct {
	Contact string `json:"contact"`
	Seconds int64  `json:"seconds"` // 0: off
}

func runDisappear(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef(cmd, "missing NAME")
	case len(pos) > 2:
		return usagef(cmd, "too many arguments")
	case len(pos) == 2 && *asJSON:
		return usagef(cmd, "--json is for showing the timer")
	}
	name := pos[0]
	var d time.Duration
	if len(pos) == 2 {
		if d, err = parseTimer(pos[1]); err != nil {
			return usagef(cmd, "%v", err)
		}
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	if len(pos) == 1 {
		d, err := cl.Disappearing(name)
		if errors.Is(err, client.ErrUnknownContact) {
			return unknownContact(name, err)
		}
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(c.stdout, jsonDisappear{Contact: name, Seconds: int64(d / time.Second)})
		}
		fmt.Fprintf(c.stdout, "disappearing messages with %s: %s\n", safe(name, false), timerText(d))
		return nil
	}
	err = cl.SetDisappearing(ctx, name, d)
	switch {
	case errors.Is(err, client.ErrUnknownContact):
		return unknownContact(name, err)
	case err != nil && !errors.Is(err, client.ErrQueued):
		return err
	}
	if d == 0 {
		fmt.Fprintf(c.stdout, "Disappearing messages with %s are off: messages sent from now on stay.\n", safe(name, false))
	} else {
		fmt.Fprintf(c.stdout, "Messages with %s now disappear %s after they are sent, on both sides' devices.\n", safe(name, false), timerText(d))
	}
	if err != nil {
		// Set here; it reaches them when their relay is back.
		fmt.Fprintln(c.stdout, safe(err.Error(), false))
	}
	return nil
}

// parseTimer reads a timer: "off", or a whole number of a unit (s, m, h,
// d, w), or a Go duration ("1h30m"); it must lie within the client's
// limits and be whole seconds.
func parseTimer(s string) (time.Duration, error) {
	if s == "off" || s == "0" {
		return 0, nil
	}
	var d time.Duration
	units := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if u, ok := units[s[len(s)-1]]; ok && len(s) > 1 {
		n, err := strconv.ParseUint(s[:len(s)-1], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("%q is not a duration (e.g. 30m, 8h, 7d, or off)", s)
		}
		d = time.Duration(n) * u
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil || strings.HasPrefix(s, "-") {
			return 0, fmt.Errorf("%q is not a duration (e.g. 30m, 8h, 7d, or off)", s)
		}
	}
	if d < client.MinDisappearing || d > client.MaxDisappearing || d%time.Second != 0 {
		return 0, fmt.Errorf("a timer runs from %s to %s in whole seconds, not %s", timerText(client.MinDisappearing), timerText(client.MaxDisappearing), s)
	}
	return d, nil
}

// timerText shows a timer in its largest whole unit: "off", "30s", "5m",
// "8h", "7d", "4w".
func timerText(d time.Duration) string {
	if d == 0 {
		return "off"
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{7 * 24 * time.Hour, "w"}, {24 * time.Hour, "d"}, {time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return d.String()
}
