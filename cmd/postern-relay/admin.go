package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postern/postern/relay"
)

const adminUsage = `usage: postern-relay admin COMMAND [--data DIR]

Commands, run against a running relay through DATA/admin.sock:
  invite create [--count N] [--ttl 72h]   make invite codes, one per line
  invite revoke CODE                      make an invite code unusable
  devices [--long] [--json]               list devices: ID, enrolment day, last-seen day, state
  revoke ID...                            offboard devices for good: disconnect them now, refuse
                                          them from now on, delete their mailboxes and queued
                                          envelopes, prekeys and bundles
  suspend ID...                           disconnect and refuse devices until restored; keep their data
  restore ID...                           lift a suspension

An ID is a device ID as "devices" lists it: the full 64 hex digits, or a
unique prefix of at least 8. The relay knows devices, not persons: to
offboard a person, revoke all of their devices in one command.
`

// admin runs `postern-relay admin …`.
func admin(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{msg: "no admin command", hint: "postern-relay admin invite create|invite revoke|devices|revoke|suspend|restore"}
	}
	switch args[0] {
	case "invite":
		if len(args) >= 2 && args[1] == "create" {
			return inviteCreate(args[2:], stdout, stderr)
		}
		if len(args) >= 2 && args[1] == "revoke" {
			return adminInviteRevoke(args[2:], stdout, stderr)
		}
		return &usageError{msg: "unknown admin invite command", hint: "postern-relay admin invite create|revoke"}
	case "devices":
		return adminDevices(args[1:], stdout, stderr)
	case "revoke", "suspend", "restore":
		return adminDeviceOp(args[0], args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, adminUsage)
		return nil
	}
	return &usageError{msg: fmt.Sprintf("unknown admin command %q", args[0]), hint: "postern-relay admin help"}
}

// adminFlags is a flag set with --data that also takes positional
// arguments, before or after the flags.
func adminFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, adminUsage) }
	data := fs.String("data", "./postern-data", "data directory of the running relay (holds admin.sock)")
	return fs, data
}

// parseWithArgs parses flags anywhere among args, returns the positional
// arguments, and fills unset flags from the environment like parse.
func parseWithArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	return pos, parse(fs, nil)
}

// adminCall sends one request to the relay's admin socket.
func adminCall(dir string, req relay.AdminRequest) (relay.AdminResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := relay.Admin(ctx, dir, req)
	if errors.Is(err, relay.ErrNoAdminSocket) {
		return resp, &usageError{
			msg:  fmt.Sprintf("no relay is running with data directory %s", dir),
			hint: "start it with postern-relay serve --data DIR, or pass --data DIR (or set POSTERN_RELAY_DATA) to the running relay's data directory",
		}
	}
	if err != nil {
		return resp, errors.New(strings.TrimPrefix(err.Error(), "relay: admin: "))
	}
	return resp, nil
}

func adminInviteRevoke(args []string, stdout, stderr io.Writer) error {
	fs, data := adminFlags("admin invite revoke", stderr)
	codes, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(codes) != 1 {
		return &usageError{msg: "want one invite code", hint: "postern-relay admin invite revoke CODE"}
	}
	resp, err := adminCall(*data, relay.AdminRequest{Op: "invite.revoke", Code: codes[0]})
	if err != nil {
		return err
	}
	if resp.Used {
		fmt.Fprintln(stdout, "invite revoked; it had already enrolled a device (see postern-relay admin devices)")
	} else {
		fmt.Fprintln(stdout, "invite revoked")
	}
	return nil
}

func adminDevices(args []string, stdout, stderr io.Writer) error {
	fs, data := adminFlags("admin devices", stderr)
	long := fs.Bool("long", false, "show full device IDs")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	resp, err := adminCall(*data, relay.AdminRequest{Op: "device.list"})
	if err != nil {
		return err
	}
	if *asJSON {
		devs := resp.Devices
		if devs == nil {
			devs = []relay.AdminDevice{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(devs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENROLLED\tLAST SEEN\tSTATE")
	for _, d := range resp.Devices {
		id := d.Short
		if *long {
			id = d.ID
		}
		seen := d.LastSeen
		if seen == "" {
			seen = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, d.Enrolled, seen, d.State)
	}
	return tw.Flush()
}

func adminDeviceOp(verb string, args []string, stdout, stderr io.Writer) error {
	fs, data := adminFlags("admin "+verb, stderr)
	ids, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return &usageError{msg: "no device IDs", hint: fmt.Sprintf("postern-relay admin %s ID... (IDs from postern-relay admin devices)", verb)}
	}
	past := map[string]string{"revoke": "revoked", "suspend": "suspended", "restore": "restored"}[verb]
	resp, err := adminCall(*data, relay.AdminRequest{Op: "device." + verb, IDs: ids})
	for _, id := range resp.Done {
		fmt.Fprintf(stdout, "%s %s\n", past, id)
	}
	return err
}
