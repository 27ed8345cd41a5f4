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

// adminNotes explains device IDs and account labels in admin --help.
const adminNotes = `An ID is a device ID as "devices" lists it: the full 64 hex digits, or a
unique prefix of at least 8. An account LABEL is a name you choose for a
person, e.g. dr.smith or an HR number: 1 to 64 bytes of printable UTF-8,
compared exactly. Give each person invite codes made with --account, and
offboard them with revoke --account. Clients never see the label.`

// labelHint explains account labels after a refused one.
const labelHint = "an account label is 1 to 64 bytes of printable UTF-8 with no control characters, e.g. dr.smith or an HR number"

// accountArg trims and checks an --account or LABEL argument; empty is
// allowed (no account) unless required.
func accountArg(s string, required bool) (string, error) {
	if strings.TrimSpace(s) == "" && !required {
		return "", nil
	}
	label, err := relay.ParseAccountLabel(s)
	if err != nil {
		return "", &usageError{msg: err.Error(), hint: labelHint}
	}
	return label, nil
}

// adminFlags is a flag set with --data that also takes positional
// arguments, before or after the flags.
func adminFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = fs.PrintDefaults // --help prints the rest (commands.go)
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
	accountFlag := fs.String("account", "", "list only the devices of this account")
	if err := parse(fs, args); err != nil {
		return err
	}
	account, err := accountArg(*accountFlag, false)
	if err != nil {
		return err
	}
	resp, err := adminCall(*data, relay.AdminRequest{Op: "device.list", Account: account})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, resp.Devices)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tACCOUNT\tENROLLED\tLAST SEEN\tSTATE")
	for _, d := range resp.Devices {
		id := d.Short
		if *long {
			id = d.ID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, dash(d.Account), d.Enrolled, dash(d.LastSeen), d.State)
	}
	return tw.Flush()
}

// printJSON prints a list as indented JSON: no entries is [], not null.
func printJSON[T any](w io.Writer, list []T) error {
	if list == nil {
		list = []T{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(list)
}

// dash stands in for an empty table cell.
func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func adminAccounts(args []string, stdout, stderr io.Writer) error {
	fs, data := adminFlags("admin accounts", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parse(fs, args); err != nil {
		return err
	}
	resp, err := adminCall(*data, relay.AdminRequest{Op: "account.list"})
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, resp.Accounts)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tACTIVE\tSUSPENDED\tREVOKED\tLAST SEEN\tINVITES")
	for _, a := range resp.Accounts {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%d\n", a.Account, a.Active, a.Suspended, a.Revoked, dash(a.LastSeen), a.Invites)
	}
	return tw.Flush()
}

// adminAssign runs "assign LABEL ID..." and "unassign ID...".
func adminAssign(verb string, args []string, stdout, stderr io.Writer) error {
	fs, data := adminFlags("admin "+verb, stderr)
	pos, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	account := ""
	if verb == "assign" {
		if len(pos) == 0 {
			return &usageError{msg: "no account label", hint: "postern-relay admin assign LABEL ID... (IDs from postern-relay admin devices)"}
		}
		if account, err = accountArg(pos[0], true); err != nil {
			return err
		}
		pos = pos[1:]
	}
	if len(pos) == 0 {
		return &usageError{msg: "no device IDs", hint: fmt.Sprintf("postern-relay admin %s (IDs from postern-relay admin devices)", map[string]string{"assign": "assign LABEL ID...", "unassign": "unassign ID..."}[verb])}
	}
	resp, err := adminCall(*data, relay.AdminRequest{Op: "device.assign", IDs: pos, Account: account})
	if err != nil {
		return err
	}
	for _, id := range resp.Done {
		if account == "" {
			fmt.Fprintf(stdout, "unassigned %s\n", id)
		} else {
			fmt.Fprintf(stdout, "assigned %s to %s\n", id, account)
		}
	}
	return nil
}

func adminDeviceOp(verb string, args []string, stdout, stderr io.Writer) error {
	fs, data := adminFlags("admin "+verb, stderr)
	accountFlag := fs.String("account", "", "act on every device of this account")
	ids, err := parseWithArgs(fs, args)
	if err != nil {
		return err
	}
	past := map[string]string{"revoke": "revoked", "suspend": "suspended", "reinstate": "reinstated"}[verb]
	// Only from the command line: POSTERN_RELAY_ACCOUNT left in the
	// environment must not turn "revoke" without IDs into an offboarding.
	fromArgs := false
	fs.Visit(func(f *flag.Flag) { fromArgs = fromArgs || f.Name == "account" })
	if fromArgs {
		if len(ids) > 0 {
			return &usageError{msg: "both device IDs and --account given", hint: fmt.Sprintf("postern-relay admin %s ID... or postern-relay admin %s --account LABEL", verb, verb)}
		}
		account, err := accountArg(*accountFlag, true)
		if err != nil {
			return err
		}
		return adminAccountOp(*data, verb, past, account, stdout)
	}
	if len(ids) == 0 {
		return &usageError{msg: "no device IDs", hint: fmt.Sprintf("postern-relay admin %s ID... (IDs from postern-relay admin devices), or --account LABEL", verb)}
	}
	resp, err := adminCall(*data, relay.AdminRequest{Op: "device." + verb, IDs: ids})
	for _, id := range resp.Done {
		fmt.Fprintf(stdout, "%s %s\n", past, id)
	}
	return err
}

// adminAccountOp runs "revoke|suspend|reinstate --account LABEL": one line
// per device changed, then what was done to the account.
func adminAccountOp(data, verb, past, account string, stdout io.Writer) error {
	resp, err := adminCall(data, relay.AdminRequest{Op: "account." + verb, Account: account})
	if err != nil {
		return err
	}
	for _, id := range resp.Done {
		fmt.Fprintf(stdout, "%s %s\n", past, id)
	}
	summary := fmt.Sprintf("account %s: %s %s", account, plural(len(resp.Done), "device"), past)
	if n := len(resp.Unchanged); n > 0 {
		summary += fmt.Sprintf(", %s unchanged", plural(n, "device"))
	}
	if verb == "revoke" {
		summary += fmt.Sprintf(", %s revoked", plural(resp.InvitesRevoked, "unused invite code"))
	}
	fmt.Fprintln(stdout, summary)
	return nil
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
