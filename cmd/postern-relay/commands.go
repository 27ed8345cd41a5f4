package main

// The command table: every command and subcommand with its usage line and
// what it does. dispatch finds the command in it, and --help (or
// `postern-relay help COMMAND…`) prints the entry with the command's
// flags, so that no command is left without help.

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/postern/postern/internal/buildinfo"
	"github.com/postern/postern/protocol"
)

// command is one runnable command.
type command struct {
	path     string // the words after postern-relay: "admin devices"
	synopsis string // the rest of the usage line: "[--long] [--json] …"
	about    string // what it does, shown by --help
	run      func(args []string, stdout, stderr io.Writer) error
}

// groups are the words that only lead to subcommands, with a sentence for
// their --help.
var groups = map[string]string{
	"config":       "Check the relay's configuration.",
	"invite":       "Make enrolment invite codes.",
	"admin":        "Administer a running relay through DATA/admin.sock." + "\n\n" + adminNotes,
	"admin invite": "Make and revoke enrolment invite codes on a running relay.",
	"audit":        "Check and export the relay's audit log.",
	"kt":           "Check the relay's key-transparency log.",
}

// renamed are commands that no longer exist, with what to use instead.
var renamed = map[string]*usageError{
	"admin restore": {
		msg:  `"admin restore" is now "admin reinstate"`,
		hint: "postern-relay admin reinstate ID... (or --account LABEL) lifts a suspension; postern-relay restore FILE puts a backup in place",
	},
}

var commands []*command

func init() {
	commands = []*command{
		{"serve", "[flags]", serveAbout, func(a []string, _, e io.Writer) error { return serve(a, e, nil) }},
		{"config check", "[--config FILE] [serve flags]", "Check a configuration (flags, POSTERN_RELAY_* variables and the config file) as serve would, without opening or listening on anything, and print the effective settings with where each comes from.", configCheck},
		{"invite create", "[--data DIR] [--count N] [--ttl 72h] [--account LABEL]", "Make enrolment invite codes, one per line: through the running relay, or straight in the database when none runs. With --account, the devices they enrol belong to that account.", inviteCreate},
		{"admin invite create", "[--data DIR] [--count N] [--ttl 72h] [--account LABEL]", "The same as invite create.", inviteCreate},
		{"admin invite revoke", "CODE [--data DIR]", "Make an invite code unusable.", adminInviteRevoke},
		{"admin devices", "[--long] [--json] [--account LABEL] [--data DIR]", "List devices: ID, account, enrolment day, last-seen day, state.", adminDevices},
		{"admin accounts", "[--json] [--data DIR]", "List accounts: devices by state, last-seen day, pending invites.", adminAccounts},
		{"admin revoke", "ID... | --account LABEL [--data DIR]", "Offboard devices for good: disconnect them now, refuse them from now on, delete their mailboxes and queued envelopes, prekeys and bundles. With --account, every device of the account and its unused invite codes.", deviceOp("revoke")},
		{"admin suspend", "ID... | --account LABEL [--data DIR]", "Disconnect and refuse devices until reinstated; their data is kept and senders can still queue for them.", deviceOp("suspend")},
		{"admin reinstate", "ID... | --account LABEL [--data DIR]", "Lift a suspension: the devices may authenticate again. A revoked device cannot be reinstated.", deviceOp("reinstate")},
		{"admin assign", "LABEL ID... [--data DIR]", "Make enrolled devices belong to an account.", assignOp("assign")},
		{"admin unassign", "ID... [--data DIR]", "Remove devices from their account.", assignOp("unassign")},
		{"backup", "(FILE | --out FILE | --out -) [--data DIR] [--db-only]", "Write one archive of the relay (a consistent database snapshot, the relay key, the audit log and the blobs, with a manifest and SHA-256 checksums), through the running relay or from the closed files when none runs; --out - writes it to standard output. --db-only writes only a copy of the database, as earlier releases did.", backupCmd},
		{"restore", "FILE --data DIR", "Bring a relay back from a backup archive into an empty or missing directory, with the relay stopped. Everything is checked (checksums, database, key, audit log) before anything is written. A database-only copy is still accepted.", restoreCmd},
		{"compact", "[--data DIR]", "Give a drained database's space back, with the relay stopped: compact into a new file, check it against the old, keep the old as relay.db.before-compact.", compactCmd},
		{"audit verify", "[--data DIR | --file BUNDLE] [--key-fingerprint HEX]", "Check the audit log (or an export bundle) for edited, removed or reordered entries, and print the relay key's fingerprint.", auditVerify},
		{"audit export", "[--data DIR] [--out FILE]", "Write the audit log and its signed head, as one bundle for a reviewer.", auditExport},
		{"kt verify", "[--data DIR] [--key-fingerprint HEX]", "Check the key-transparency log offline, with the relay stopped or on a copy: recompute every leaf from its entry, rebuild the tree, check every stored node, every signed head (signature and root) and that every stored device list verifies and is the one its leaf records.", ktVerify},
		{"version", "", "Print the version, the commit it was built from, the commit's date, the Go toolchain and the protocol version.", versionCmd},
	}
}

func deviceOp(verb string) func([]string, io.Writer, io.Writer) error {
	return func(a []string, o, e io.Writer) error { return adminDeviceOp(verb, a, o, e) }
}

func assignOp(verb string) func([]string, io.Writer, io.Writer) error {
	return func(a []string, o, e io.Writer) error { return adminAssign(verb, a, o, e) }
}

const serveAbout = `Run the relay. Every flag can also be set in the environment as
POSTERN_RELAY_<FLAG> (upper case, - as _: --tls-cert is POSTERN_RELAY_TLS_CERT)
and as a key in the --config file (tls-cert = FILE); a flag on the command line
wins over the environment, which wins over the file. SIGHUP reloads the
configuration.`

// versionCmd prints the build: postern-relay --version does the same.
func versionCmd(_ []string, stdout, _ io.Writer) error {
	_, err := fmt.Fprintf(stdout, "postern-relay %s protocol %d (%s)\n", buildinfo.Read(), protocol.Version, protocol.Subprotocol)
	return err
}

func isHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// wantsHelp reports whether args ask for help before any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if isHelp(a) {
			return true
		}
	}
	return false
}

// lookup finds the command named by the longest run of leading words of
// args; n is how many words it took. Without one, group is the longest
// group the words name ("" for none).
func lookup(args []string) (c *command, n int, group string) {
	for i := min(len(args), 3); i >= 1; i-- {
		p := strings.Join(args[:i], " ")
		for _, cmd := range commands {
			if cmd.path == p {
				return cmd, i, ""
			}
		}
		if _, ok := groups[p]; ok && group == "" {
			group = p
		}
	}
	return nil, 0, group
}

// dispatchCommand runs the command args name, or its help.
func dispatchCommand(args []string, stdout, stderr io.Writer) error {
	c, n, group := lookup(args)
	if c != nil {
		if wantsHelp(args[n:]) {
			return printHelp(c, stdout)
		}
		return c.run(args[n:], stdout, stderr)
	}
	if group == "" {
		return &usageError{msg: fmt.Sprintf("unknown command %q", args[0]), hint: "postern-relay help lists the commands"}
	}
	rest := args[len(strings.Fields(group)):]
	switch {
	case len(rest) == 0:
		return &usageError{msg: "no " + group + " command", hint: fmt.Sprintf("postern-relay %s --help lists them", group)}
	case isHelp(rest[0]) || rest[0] == "help":
		return printGroup(group, stdout)
	}
	if e, ok := renamed[group+" "+rest[0]]; ok {
		return e
	}
	return &usageError{msg: fmt.Sprintf("unknown %s command %q", group, rest[0]), hint: fmt.Sprintf("postern-relay %s --help lists them", group)}
}

// helpCmd runs `postern-relay help [COMMAND…]`.
func helpCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		_, err := fmt.Fprint(stdout, commandsUsage)
		return err
	}
	c, n, group := lookup(args)
	switch {
	case c != nil && n == len(args):
		return printHelp(c, stdout)
	case c == nil && group != "" && len(strings.Fields(group)) == len(args):
		return printGroup(group, stdout)
	}
	return &usageError{msg: fmt.Sprintf("no command %q", strings.Join(args, " ")), hint: "postern-relay help lists the commands"}
}

// printHelp prints c's usage line, what it does and its flags.
func printHelp(c *command, w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: postern-relay %s", c.path)
	if c.synopsis != "" {
		b.WriteString(" " + c.synopsis)
	}
	b.WriteString("\n\n" + c.about + "\n")
	if f := flagsOf(c); f != "" {
		b.WriteString("\nflags:\n" + f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// flagsOf returns the flag list c's FlagSet prints for -h. Every command
// parses its flags before it does anything, so running it with -h only
// defines and prints them.
func flagsOf(c *command) string {
	var buf bytes.Buffer
	c.run([]string{"-h"}, io.Discard, &buf)
	out := buf.String()
	if first, rest, ok := strings.Cut(out, "\n"); ok && strings.HasPrefix(first, "Usage of ") {
		out = rest
	}
	return out
}

// printGroup lists the subcommands of group.
func printGroup(group string, w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: postern-relay %s COMMAND [flags]\n\n%s\n\nCommands (postern-relay %s COMMAND --help tells more):\n", group, groups[group], group)
	var lines []string
	for _, c := range commands {
		if strings.HasPrefix(c.path, group+" ") {
			lines = append(lines, fmt.Sprintf("  %s %s", strings.TrimPrefix(c.path, group+" "), c.synopsis))
		}
	}
	b.WriteString(strings.Join(lines, "\n") + "\n")
	_, err := io.WriteString(w, b.String())
	return err
}
