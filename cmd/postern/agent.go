package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/postern/postern/client"
)

var agentCmd = &command{
	name: "agent",
	usage: "agent --team NAME --zone ZONE [--days DAYS] [--hours HH:MM-HH:MM] [--window 3d|DURATION] [--urgent DURATION] " +
		"[--reminder DURATION] [--holidays FILE] [--roster FILE] [--escalate-to GROUP] [--metrics ADDR]",
	help: `Run the agent of team NAME, unattended, on the team's own profile (the one
'postern team create NAME' made the team): it stays connected, forwards what
outsiders write to the staff and the staff's replies to them, and keeps the
team's response windows. Run it as a service beside the relay (the systemd
unit docs/postern-agent@.service).

When a conversation is unanswered at the end of its window, the agent sends
one wake-up that carries no content ("A message in Pharmacy has waited 3
business days") to the person on call by --roster, else to --escalate-to,
else to the staff. An urgent message that nobody has read brings the staff a
reminder every --reminder until someone does. The relay decides none of
this: it cannot read a conversation's state.

--zone      the team's time zone, an IANA name (Europe/Berlin). Required.
--days      business days, as mon,tue,wed,thu,fri (the default) or mon-fri.
--hours     opening hours on the team's clocks (default 08:00-17:00;
            24:00 closes at midnight).
--window    the response window: business days as 3d (the default), or
            business time as a duration (4h, 90m).
--urgent    the window of urgent messages, at all hours (default 2h).
--reminder  reminders about an unread urgent message (default 15m).
--holidays  a holiday calendar file: YYYY-MM-DD NAME lines, or iCalendar
            (docs/TEAMS.md).
--roster    an on-call roster file (docs/TEAMS.md).
--escalate-to  a group of this profile that receives the wake-ups.
--metrics   serve the team's figures (no content) on ADDR: GET /metrics
            (Prometheus), /stats.json, /healthz. Bind it to loopback or a
            monitoring network.

Stops on Ctrl-C or SIGTERM. One agent (or listen) runs per home.`,
	run: runAgent,
}

func runAgent(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	team := fs.String("team", "", "")
	zone := fs.String("zone", "", "")
	days := fs.String("days", "", "")
	openHours := fs.String("hours", "", "")
	window := fs.String("window", "", "")
	urgent := fs.Duration("urgent", 0, "")
	reminder := fs.Duration("reminder", 0, "")
	holidays := fs.String("holidays", "", "")
	roster := fs.String("roster", "", "")
	escalate := fs.String("escalate-to", "", "")
	metrics := fs.String("metrics", "", "")
	if _, err := parseN(fs, cmd, args); err != nil {
		return err
	}
	if *team == "" {
		return usagef(cmd, "missing --team NAME")
	}
	if *zone == "" {
		return usagef(cmd, "missing --zone: the team's time zone, an IANA name such as Europe/Berlin")
	}
	o := &client.AgentOptions{Zone: *zone, Urgent: *urgent, Reminder: *reminder, EscalateTo: *escalate}
	var err error
	if *days != "" {
		if o.Days, err = parseDays(*days); err != nil {
			return usagef(cmd, "--days %s", err)
		}
	}
	if *openHours != "" {
		open, close, ok := strings.Cut(*openHours, "-")
		if !ok {
			return usagef(cmd, "--hours is HH:MM-HH:MM, as 08:00-17:00")
		}
		o.Open, o.Close = open, close
	}
	if *window != "" {
		if n, ok := strings.CutSuffix(*window, "d"); ok {
			if o.WindowDays, err = strconv.Atoi(n); err != nil || o.WindowDays < 1 {
				return usagef(cmd, "--window %q: business days as 3d, or business time as 4h", *window)
			}
		} else if o.WindowBusiness, err = time.ParseDuration(*window); err != nil || o.WindowBusiness <= 0 {
			return usagef(cmd, "--window %q: business days as 3d, or business time as 4h", *window)
		}
	}
	for _, f := range []struct {
		path string
		set  func(*os.File)
	}{
		{*holidays, func(f *os.File) { o.Holidays = f }},
		{*roster, func(f *os.File) { o.Roster = f }},
	} {
		if f.path == "" {
			continue
		}
		file, err := os.Open(f.path)
		if err != nil {
			return &cliError{msg: fmt.Sprintf("cannot read %s: %v", f.path, errors.Unwrap(err)), err: err}
		}
		defer file.Close()
		f.set(file)
	}

	home, err := c.homeDir()
	if err != nil {
		return err
	}
	// As listen: one receiver per home, and the lock before connecting.
	if _, err := os.Stat(filepath.Join(home, client.KeyFileName)); err == nil {
		lk, err := lockListen(home)
		if err != nil {
			return err
		}
		defer lk.release()
	}
	c.service = true
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	if *metrics != "" {
		ln, err := net.Listen("tcp", *metrics)
		if err != nil {
			return &cliError{msg: fmt.Sprintf("cannot serve the figures on %s: %v", *metrics, err), err: err}
		}
		srv := &http.Server{Handler: cl.TeamFiguresHandler(*team), ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		fmt.Fprintf(c.stdout, "figures of %s on http://%s/metrics\n", *team, ln.Addr())
	}
	fmt.Fprintf(c.stdout, "agent of %s running\n", *team)
	err = cl.RunAgent(ctx, *team, o)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // Ctrl-C or SIGTERM: a clean stop
	}
	switch {
	case errors.Is(err, client.ErrNotIntake):
		return &cliError{msg: strip(err), hint: "run the agent with --home of the team's profile", err: err}
	case errors.Is(err, client.ErrUnknownTeam):
		return teamError(err, *team)
	case errors.Is(err, client.ErrAgentSettings):
		return &cliError{msg: strip(err), hint: "the files' format is in docs/TEAMS.md", err: err}
	}
	return err
}

// parseDays reads "mon,tue,wed" or "mon-fri" (any case).
func parseDays(s string) ([]time.Weekday, error) {
	names := map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
	day := func(n string) (time.Weekday, error) {
		d, ok := names[strings.ToLower(strings.TrimSpace(n))]
		if !ok {
			return 0, fmt.Errorf("%q: days are sun mon tue wed thu fri sat", n)
		}
		return d, nil
	}
	if a, b, ok := strings.Cut(s, "-"); ok {
		from, err := day(a)
		if err != nil {
			return nil, err
		}
		to, err := day(b)
		if err != nil {
			return nil, err
		}
		var out []time.Weekday
		for d := from; ; d = (d + 1) % 7 {
			out = append(out, d)
			if d == to {
				return out, nil
			}
		}
	}
	var out []time.Weekday
	for _, n := range strings.Split(s, ",") {
		d, err := day(n)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// runTeamStats is 'postern team stats NAME [--json]'.
func runTeamStats(c *cli, cmd *command, args []string, asJSON bool) error {
	switch {
	case len(args) == 0:
		return usagef(cmd, "missing NAME")
	case len(args) > 1:
		return usagef(cmd, "too many arguments")
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	f, err := cl.TeamFigures(args[0])
	if err != nil {
		return teamError(err, args[0])
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	if asJSON {
		_, err = fmt.Fprintf(c.stdout, "%s\n", b)
		return err
	}
	var doc struct {
		Queues []struct {
			Queue            string  `json:"queue"`
			NewMessages      uint64  `json:"new_messages"`
			Backlog          uint64  `json:"backlog"`
			Unclaimed        uint64  `json:"unclaimed"`
			Oldest           float64 `json:"oldest_unclaimed_seconds"`
			Reopened         uint64  `json:"reopened"`
			DeliveryFailures uint64  `json:"delivery_failures"`
			Exports          uint64  `json:"exports"`
			FirstResponse    struct {
				Count uint64  `json:"count"`
				Sum   float64 `json:"sum_seconds"`
			} `json:"first_response"`
			Escalations struct {
				Unclaimed  uint64 `json:"unclaimed"`
				Unanswered uint64 `json:"unanswered"`
				Reminders  uint64 `json:"urgent_reminder"`
			} `json:"escalations"`
		} `json:"queues"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return err
	}
	for _, q := range doc.Queues {
		mean := "none yet"
		if q.FirstResponse.Count > 0 {
			mean = (time.Duration(q.FirstResponse.Sum/float64(q.FirstResponse.Count)) * time.Second).Round(time.Second).String()
		}
		fmt.Fprintf(c.stdout, "%s\n", safe(q.Queue, false))
		fmt.Fprintf(c.stdout, "  messages arrived        %d\n", q.NewMessages)
		fmt.Fprintf(c.stdout, "  open conversations      %d\n", q.Backlog)
		fmt.Fprintf(c.stdout, "  unclaimed               %d (oldest waiting %s)\n", q.Unclaimed, (time.Duration(q.Oldest) * time.Second).Round(time.Second))
		fmt.Fprintf(c.stdout, "  first responses         %d (mean time %s)\n", q.FirstResponse.Count, mean)
		fmt.Fprintf(c.stdout, "  reopened                %d\n", q.Reopened)
		fmt.Fprintf(c.stdout, "  escalations             %d unclaimed, %d unanswered, %d urgent reminders\n",
			q.Escalations.Unclaimed, q.Escalations.Unanswered, q.Escalations.Reminders)
		fmt.Fprintf(c.stdout, "  failed deliveries       %d\n", q.DeliveryFailures)
		fmt.Fprintf(c.stdout, "  exports                 %d\n", q.Exports)
	}
	return nil
}
