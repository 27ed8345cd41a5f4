package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/postern/postern/client"
)

var teamCmd = &command{
	name: "team",
	usage: "team create NAME | team staff add|remove NAME CONTACT | team list [--json] | team queue NAME [--mine|--unclaimed] [--json] | " +
		"team show ID [--json] | team reply ID [--attach FILE]... TEXT... | team claim ID | team assign ID CONTACT | team resolve ID | " +
		"team block NAME CONTACT --new|--replies|--all | team unblock NAME CONTACT | team export ID [--message MSGID] --out FILE | " +
		"team invite NAME [--role ROLE] | team stats NAME [--json] | team log NAME [--json]",
	help: `Teams: outsiders write to a team ("Pharmacy") as to one contact; every
staff member's devices receive it in the team's queue, where one of them
claims it.

team create NAME: make this profile the team NAME. Run it on a profile of
its own, whose person is the team: its invitations are the team's, and this
device forwards what outsiders write to the staff.

team staff add NAME CONTACT, team staff remove NAME CONTACT: add or remove a
staff member (on the team's profile). Every device of a staff member must use
the team's relay. A removed member can no longer read the queue or change it;
the conversations it owned go back to the queue.

team list: the teams of this profile, their staff and how many queue
conversations this device holds.

team queue NAME [--mine|--unclaimed]: the team's conversations, urgent first,
then the longest waiting first. --unclaimed: only those nobody has claimed;
--mine: only yours.

team show ID: a queue conversation with its messages. ID is the
conversation's ID as 'team queue' shows it (its first 8 digits are enough).
Showing it marks the outsider's messages read: the other staff see who read
them, and the outsider sees them read by the team (no name).

team reply ID TEXT...: answer the outsider; the team's profile forwards it,
from the team. --attach FILE adds a file (up to 16).

team claim ID: take a conversation; the first claim wins.
team assign ID CONTACT: give a conversation you own to a colleague.
team resolve ID: close a conversation you own; the outsider's next message
reopens it.

team block NAME CONTACT --new|--replies|--all: restrict an outsider (CONTACT
as the queue names them) from writing new messages to the team, from
replying in its conversations, or from the whole service; each gives them
its own sentence. On a staff device the team's profile carries it out at its
next sync. In this version every level stops all of the outsider's messages
to the team.
team unblock NAME CONTACT: restore their access; they must accept the terms
again ('postern optin') before they can write.

team export ID --out FILE: export a queue conversation for the medical
record, as 'postern export' does (a new file, readable only by you, signed
by you, the files embedded); --message MSGID: only that message (its ID as
'team show' prints it). The team's profile is told, without the content:
the export is counted in the team's figures and written in its log. An
export it cannot be told of is not made.

team invite NAME: print an invitation for outsiders to the team (on the
team's profile). --role ROLE: an invitation for the team's role account
ROLE ("Pharmacy on call"; the team's profile must hold the organisation
directory): the outsider's conversations are claimed for whoever holds the
role, and follow it when it changes hands ('postern help role').

team stats NAME: the team's workflow figures, without content: messages
that arrived, open conversations, unclaimed ones and the oldest one's wait,
time to first response, reopened conversations, escalations by type, failed
deliveries, exports. On the team's own profile (where the agent runs) they
include every message and escalation; on a staff device, what it holds.
A failed delivery is a message of the team's that will never arrive: a
patient's message the relay refused to pass to the staff, or a staff reply
the relay refused (or stopped retrying) for the patient.

team log NAME: the team's log, on the team's own profile: every export,
block and unblock, staff change and escalation, with when, who (an identity
fingerprint) and about what (a conversation's token or a staff member's
fingerprint), never a name or content. The log is hash-chained: it is
checked as it is printed, and the last line names its head; keep the head
somewhere else to find the log cut or rewritten later.

--json prints list, queue, show, stats and log as JSON.`,
	run: runTeam,
}

func runTeam(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	mine := fs.Bool("mine", false, "")
	unclaimed := fs.Bool("unclaimed", false, "")
	blockNew := fs.Bool("new", false, "")
	blockReplies := fs.Bool("replies", false, "")
	blockAll := fs.Bool("all", false, "")
	out := fs.String("out", "", "")
	message := fs.String("message", "", "")
	role := fs.String("role", "", "")
	var files fileList
	fs.Var(&files, "attach", "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "missing what to do: create, staff, list, queue, show, reply, claim, assign, resolve, block, unblock, export, invite, stats or log")
	}
	what := pos[0]
	if *role != "" && what != "invite" {
		return usagef(cmd, "--role is for team invite")
	}
	if what == "staff" {
		if len(pos) < 2 || (pos[1] != "add" && pos[1] != "remove") {
			return usagef(cmd, "team staff add or team staff remove")
		}
		what, pos = "staff "+pos[1], pos[1:]
	}
	if what == "stats" {
		if *mine || *unclaimed || len(files) > 0 {
			return usagef(cmd, "team stats takes only --json")
		}
		return runTeamStats(c, cmd, pos[1:], *asJSON)
	}
	type arity struct {
		least, most int
		names       []string
	}
	ar, ok := map[string]arity{
		"create": {1, 1, []string{"NAME"}}, "staff add": {2, 2, []string{"NAME", "CONTACT"}}, "staff remove": {2, 2, []string{"NAME", "CONTACT"}},
		"list": {0, 0, nil}, "queue": {1, 1, []string{"NAME"}}, "show": {1, 1, []string{"ID"}}, "reply": {1, -1, []string{"ID", "TEXT"}},
		"claim": {1, 1, []string{"ID"}}, "assign": {2, 2, []string{"ID", "CONTACT"}}, "resolve": {1, 1, []string{"ID"}},
		"block": {2, 2, []string{"NAME", "CONTACT"}}, "unblock": {2, 2, []string{"NAME", "CONTACT"}}, "invite": {1, 1, []string{"NAME"}},
		"export": {1, 1, []string{"ID"}}, "log": {1, 1, []string{"NAME"}},
	}[what]
	levels := 0
	level := client.RestrictedNew
	for _, f := range []struct {
		set bool
		l   client.Restriction
	}{{*blockNew, client.RestrictedNew}, {*blockReplies, client.RestrictedReplies}, {*blockAll, client.RestrictedService}} {
		if f.set {
			levels++
			level = f.l
		}
	}
	n := len(pos) - 1
	switch {
	case !ok:
		return usagef(cmd, "unknown team command %q", what)
	case *asJSON && what != "list" && what != "queue" && what != "show" && what != "log":
		return usagef(cmd, "--json is for team list, team queue, team show and team log")
	case (*out != "" || *message != "") && what != "export":
		return usagef(cmd, "--out and --message are for team export")
	case (*mine || *unclaimed) && what != "queue":
		return usagef(cmd, "--mine and --unclaimed are for team queue")
	case *mine && *unclaimed:
		return usagef(cmd, "--mine or --unclaimed, not both")
	case len(files) > 0 && what != "reply":
		return usagef(cmd, "--attach is for team reply")
	case levels > 0 && what != "block":
		return usagef(cmd, "--new, --replies and --all are for team block")
	case what == "block" && levels != 1:
		return usagef(cmd, "team block takes one of --new, --replies and --all")
	case n < ar.least:
		return usagef(cmd, "missing %s", ar.names[n])
	case what == "reply" && n == 1 && len(files) == 0:
		return usagef(cmd, "missing TEXT")
	case ar.most >= 0 && n > ar.most:
		return usagef(cmd, "too many arguments")
	case what == "export" && *out == "":
		return usagef(cmd, "missing --out FILE")
	}
	if what == "export" {
		if err := checkNewFile(*out); err != nil {
			return err
		}
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	switch what {
	case "create":
		t, err := cl.CreateTeam(ctx, pos[1])
		if err != nil {
			return teamError(err, pos[1])
		}
		fmt.Fprintf(c.stdout, "This profile is now the team %s (%s). Add staff with: postern team staff add %s CONTACT\n",
			safe(t.Name, false), t.ID, quoteArg(t.Name))
	case "staff add":
		if _, err := cl.AddStaff(ctx, pos[1], pos[2]); err != nil {
			return teamError(err, pos[1])
		}
		fmt.Fprintf(c.stdout, "Added %s to the staff of %s.\n", safe(pos[2], false), safe(pos[1], false))
	case "staff remove":
		t, err := cl.RemoveStaff(ctx, pos[1], pos[2])
		if err != nil {
			return teamError(err, pos[1])
		}
		fmt.Fprintf(c.stdout, "Removed %s from the staff of %s; the team's keys changed (epoch %d).\n", safe(pos[2], false), safe(t.Name, false), t.Epoch)
	case "list":
		return listTeams(c, cl, *asJSON)
	case "queue":
		f := client.QueueAll
		if *mine {
			f = client.QueueMine
		} else if *unclaimed {
			f = client.QueueUnclaimed
		}
		items, err := cl.Queue(pos[1], f)
		if err != nil {
			return teamError(err, pos[1])
		}
		return printQueue(c, items, *asJSON)
	case "show":
		return showQueueItem(ctx, c, cl, pos[1], *asJSON)
	case "reply":
		m, err := cl.ReplyQueue(ctx, pos[1], strings.Join(pos[2:], " "), files)
		if err != nil {
			return teamError(err, "")
		}
		fmt.Fprintf(c.stdout, "Sent to the team for %s (%s).\n", safe(m.To, false), m.ID)
	case "claim", "assign", "resolve":
		var it client.QueueItem
		switch what {
		case "claim":
			it, err = cl.Claim(ctx, pos[1])
		case "assign":
			it, err = cl.Assign(ctx, pos[1], pos[2])
		default:
			it, err = cl.Resolve(ctx, pos[1])
		}
		if err != nil {
			return teamError(err, "")
		}
		fmt.Fprintf(c.stdout, "%s: %s%s.\n", safe(it.Outsider, false), it.State, ownerText(it))
	case "block", "unblock":
		var intake bool
		ts, err := cl.Teams()
		if err != nil {
			return err
		}
		for _, t := range ts {
			if t.Name == pos[1] || t.ID == pos[1] {
				intake = t.Intake
			}
		}
		if what == "block" {
			err = cl.BlockOutsider(ctx, pos[1], pos[2], level)
		} else {
			err = cl.UnblockOutsider(ctx, pos[1], pos[2])
		}
		if err != nil {
			return teamError(err, pos[1])
		}
		done := map[bool]string{true: "Restricted", false: "Restored the access of"}[what == "block"]
		if intake {
			fmt.Fprintf(c.stdout, "%s %s.\n", done, safe(pos[2], false))
		} else {
			fmt.Fprintf(c.stdout, "Asked %s to %s %s.\n", safe(pos[1], false), map[bool]string{true: "restrict", false: "restore the access of"}[what == "block"], safe(pos[2], false))
		}
	case "export":
		var buf bytes.Buffer
		info, err := cl.ExportQueue(ctx, &buf, pos[1], *message)
		if err != nil {
			return teamError(err, "")
		}
		if err := writeNewFile(*out, buf.Bytes()); err != nil {
			return err
		}
		printExported(c, *out, info)
	case "log":
		return printTeamLog(c, cl, pos[1], *asJSON)
	case "invite":
		var code string
		if *role != "" {
			code, err = cl.TeamInviteRole(ctx, pos[1], *role)
			if errors.Is(err, client.ErrUnknownRole) || errors.Is(err, client.ErrNoDirectory) {
				return roleError(err)
			}
		} else {
			code, err = cl.TeamInvite(ctx, pos[1])
		}
		if err != nil {
			return teamError(err, pos[1])
		}
		fmt.Fprintln(c.stdout, code)
	}
	return nil
}

// quoteArg quotes a name for a shell command line if it needs it.
func quoteArg(s string) string {
	if strings.ContainsAny(s, " '\"\\$`") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}

func ownerText(it client.QueueItem) string {
	switch {
	case it.Owner == client.Me:
		return ", yours"
	case it.Owner != "":
		return ", owned by " + safe(it.Owner, false)
	}
	return ""
}

// jsonTeam is a team in --json output.
type jsonTeam struct {
	ID            string            `json:"id"`
	Name          string            `json:"name"`
	Intake        bool              `json:"intake"`
	Epoch         uint32            `json:"epoch"`
	Conversations int               `json:"conversations"`
	Staff         []jsonGroupMember `json:"staff"`
}

func listTeams(c *cli, cl *client.Client, asJSON bool) error {
	ts, err := cl.Teams()
	if err != nil {
		return err
	}
	return printList(c, ts, asJSON, func(t client.Team) jsonTeam {
		j := jsonTeam{ID: t.ID, Name: t.Name, Intake: t.Intake, Epoch: t.Epoch, Conversations: t.Conversations, Staff: []jsonGroupMember{}}
		for _, m := range t.Staff {
			j.Staff = append(j.Staff, jsonGroupMember{Name: m.Name, Role: m.Role.String(), For: m.For, Devices: m.Devices, Joined: m.Joined})
		}
		return j
	}, "No teams.", "TEAM\tTHIS DEVICE\tCONVERSATIONS\tSTAFF", func(t client.Team) string {
		role := "staff"
		if t.Intake {
			role = "intake"
		}
		var ms []string
		for _, m := range t.Staff {
			if m.Role != client.GroupAdmin {
				ms = append(ms, safe(m.Name, false))
			}
		}
		return fmt.Sprintf("%s\t%s\t%d\t%s", safe(t.Name, false), role, t.Conversations, strings.Join(ms, ", "))
	})
}

// jsonQueueItem is a queue conversation in --json output.
type jsonQueueItem struct {
	ID         string     `json:"id"`
	Team       string     `json:"team"`
	Outsider   string     `json:"outsider"`
	State      string     `json:"state"`
	Owner      string     `json:"owner,omitempty"`
	AssignedBy string     `json:"assigned_by,omitempty"`
	Urgent     bool       `json:"urgent"`
	Opened     time.Time  `json:"opened"`
	Answered   *time.Time `json:"first_response,omitempty"`
	Reopens    int        `json:"reopens"`
	Messages   int        `json:"messages"`
}

func toJSONQueueItem(it client.QueueItem) jsonQueueItem {
	j := jsonQueueItem{ID: it.ID, Team: it.Team, Outsider: it.Outsider, State: it.State, Owner: it.Owner, AssignedBy: it.AssignedBy,
		Urgent: it.Urgent, Opened: it.Opened, Reopens: it.Reopens, Messages: it.Messages}
	if !it.FirstResponse.IsZero() {
		j.Answered = &it.FirstResponse
	}
	return j
}

func printQueue(c *cli, items []client.QueueItem, asJSON bool) error {
	now := time.Now()
	return printList(c, items, asJSON, toJSONQueueItem, "No conversations.", "ID\tFROM\tSTATE\tOWNER\tWAITING\tMESSAGES", func(it client.QueueItem) string {
		state := it.State
		if it.Urgent {
			state = "[urgent] " + state
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%d", it.ID, safe(it.Outsider, false), state, safe(it.Owner, false),
			now.Sub(it.Opened).Truncate(time.Minute), it.Messages)
	})
}

func showQueueItem(ctx context.Context, c *cli, cl *client.Client, id string, asJSON bool) error {
	// Shown is read: the patient's messages are marked read before they
	// are printed, and the staff (and, from the team, the patient) told.
	if err := cl.ReadQueue(ctx, id); err != nil {
		return teamError(err, "")
	}
	msgs, err := cl.QueueThread(id)
	if err != nil {
		return teamError(err, "")
	}
	var item client.QueueItem
	ts, err := cl.Teams()
	if err != nil {
		return err
	}
	for _, t := range ts {
		items, err := cl.Queue(t.ID, client.QueueAll)
		if err != nil {
			return err
		}
		for _, x := range items {
			if strings.HasPrefix(x.ID, strings.ToLower(id)) {
				item = x
			}
		}
	}
	if asJSON {
		out := struct {
			jsonQueueItem
			Thread []jsonMessage `json:"thread"`
		}{toJSONQueueItem(item), []jsonMessage{}}
		for _, m := range msgs {
			out.Thread = append(out.Thread, toJSONMessage(m))
		}
		return writeJSON(c.stdout, out)
	}
	urgent := ""
	if item.Urgent {
		urgent = " [urgent]"
	}
	fmt.Fprintf(c.stdout, "%s with %s: %s%s%s\n", item.ID, safe(item.Outsider, false), item.State, ownerText(item), urgent)
	for _, m := range msgs {
		from := safe(m.From, false)
		if m.Outgoing {
			from = "me"
		}
		fmt.Fprintf(c.stdout, "%s  %s  %s: %s%s%s\n", m.ID, m.Time.Local().Format(tableTime), from, safe(displayText(m), true), attachmentSummary(m), readBySummary(m))
	}
	return nil
}

// readBySummary names the staff who read a patient's message: " (read
// by Ann, me)", or "" for none.
func readBySummary(m client.Message) string {
	if len(m.ReadBy) == 0 {
		return ""
	}
	names := make([]string, len(m.ReadBy))
	for i, r := range m.ReadBy {
		names[i] = safe(r.By, false)
	}
	return " (read by " + strings.Join(names, ", ") + ")"
}

// teamError words the library's team errors.
func teamError(err error, name string) error {
	switch {
	case errors.Is(err, client.ErrUnknownTeam):
		return &cliError{msg: fmt.Sprintf("no team %q", name), hint: "list teams with: postern team list", err: err}
	case errors.Is(err, client.ErrNotTeamAdmin):
		return &cliError{msg: "only the team's own profile can do this", hint: "run it with the --home of the team's profile", err: err}
	case errors.Is(err, client.ErrTeamExists):
		return &cliError{msg: err.Error(), err: err}
	case errors.Is(err, client.ErrUnknownQueueItem):
		return &cliError{msg: err.Error(), hint: "list the conversations with: postern team queue TEAM", err: err}
	case errors.Is(err, client.ErrOwned):
		return &cliError{msg: "another staff member owns this conversation", err: err}
	case errors.Is(err, client.ErrNotOwner):
		return &cliError{msg: "only the conversation's owner can do this", hint: "claim it first, or ask its owner to assign it to you", err: err}
	case errors.Is(err, client.ErrQueueState), errors.Is(err, client.ErrNotStaff):
		return &cliError{msg: err.Error(), err: err}
	}
	return groupError(err, name)
}

// jsonTeamLog is the --json output of "postern team log".
type jsonTeamLog struct {
	Verified bool               `json:"verified"`
	Head     jsonTeamLogHead    `json:"head"`
	Entries  []jsonTeamLogEntry `json:"entries"`
}

type jsonTeamLogHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

type jsonTeamLogEntry struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Detail  string    `json:"detail,omitempty"`
	Actor   string    `json:"actor"`
	Subject string    `json:"subject"`
	Hash    string    `json:"hash"`
}

// printTeamLog prints a team's log once it verifies: a log that does not
// is an error, its entries not shown as if they could be trusted.
func printTeamLog(c *cli, cl *client.Client, team string, asJSON bool) error {
	lg, err := cl.TeamLog(team)
	if err != nil {
		if errors.Is(err, client.ErrUnknownTeam) || errors.Is(err, client.ErrNotTeamAdmin) {
			return teamError(err, team)
		}
		return &cliError{msg: fmt.Sprintf("the team log does not verify: %v", err), hint: "restore the team's profile from a backup, and compare with a head kept elsewhere", err: err}
	}
	if asJSON {
		out := jsonTeamLog{Verified: true, Head: jsonTeamLogHead{Seq: lg.HeadSeq, Hash: lg.HeadHash}, Entries: []jsonTeamLogEntry{}}
		for _, e := range lg.Entries {
			out.Entries = append(out.Entries, jsonTeamLogEntry{Seq: e.Seq, Time: e.Time, Kind: e.Kind, Detail: e.Detail,
				Actor: e.Actor.String(), Subject: e.Subject, Hash: e.Hash})
		}
		return writeJSON(c.stdout, out)
	}
	err = printList(c, lg.Entries, false, func(e client.TeamLogEntry) client.TeamLogEntry { return e }, "No entries.",
		"SEQ\tTIME\tKIND\tDETAIL\tACTOR\tSUBJECT", func(e client.TeamLogEntry) string {
			detail := e.Detail
			if detail == "" {
				detail = "-"
			}
			return fmt.Sprintf("%d\t%s\t%s\t%s\t%s\t%s", e.Seq, e.Time.Local().Format(tableTime), e.Kind, detail, e.Actor.Short(), e.Subject[:16])
		})
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "The log verifies: %d entries, head %d %s.\n", len(lg.Entries), lg.HeadSeq, lg.HeadHash)
	return nil
}
