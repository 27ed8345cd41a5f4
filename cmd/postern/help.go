package main

import (
	"context"
	"fmt"
	"io"
	"runtime"

	"github.com/postern/postern/internal/buildinfo"
)

const usageText = `postern is the command-line client of Postern, an end-to-end encrypted
messenger.

Usage:
  postern [--home DIR] COMMAND [ARGS]

Setting up:
  init --relay URL --name NAME [--invite CODE]
                          create your identity and enrol this device on a relay
  init --link CODE|- --name DEVICE-NAME
                          make this device a new device of yours (the code
                          comes from 'device link' on another one)
  init --restore FILE --name DEVICE-NAME
                          restore a backup on this computer, as a new device
  backup FILE             write an encrypted backup of your identity, contacts
                          and messages, and show its recovery key
  whoami [--json] [--contact NAME]
                          show your name, relay, identity and device, or a
                          contact's safety number
  device list | device link [--history] [--yes] [--ascii] [--code-file PATH] | device revoke NAME|ID
                          list your devices (checked against the relay's
                          transparency log); show a one-time code that links
                          a new device; revoke a lost or stolen one

Contacts:
  invite                  print an invitation line to give to someone
  accept CODE|- --as NAME [--replace]
                          accept an invitation and save its sender as NAME
  contacts [--json] | contacts verify NAME [--number DIGITS]
                          list contacts with their safety numbers; record
                          that you compared NAME's safety number
  block NAME              refuse further messages from a contact
  unblock NAME            accept messages from a blocked contact again
  optin NAME [--yes]      accept the terms of use again to write to a
                          team that restricted you, once access is restored
  disappear NAME [DURATION|off] [--json]
                          show or set how long messages with NAME last
                          on both sides' devices (e.g. 1h, 7d; 5s to 4w)
  patient NAME [--patient SYSTEM|VALUE [--encounter SYSTEM|VALUE] | --clear] [--json]
                          show or set the patient a conversation is about

Messages:
  send NAME [--subject S] [--reply-to ID] [--urgent] [--attach FILE]... [--keep-metadata] TEXT...|-
                          send a message (- reads it from standard input),
                          with files (up to 16; TEXT is then optional)
  reply ID [--subject S] [--urgent] [--attach FILE]... TEXT...|-
                          answer a message, in its thread
  recall ID               delete a message you sent for everyone: on
                          your devices and the recipient's
  group list [--json] | group create NAME [CONTACT...] | group add NAME CONTACT [--role ROLE] [--for MEMBER] | group remove NAME CONTACT | group send NAME [--urgent] TEXT... | group contact NAME MEMBER CONTACT
                          groups: one message reaches every member; admins
                          add and remove members ('postern help group')
  team create NAME | team staff add|remove NAME CONTACT | team list [--json] | team queue NAME [--mine|--unclaimed] [--json] | team show ID [--json] | team reply ID [--attach FILE]... TEXT... | team claim ID | team assign ID CONTACT | team resolve ID | team block NAME CONTACT --new|--replies|--all | team unblock NAME CONTACT | team export ID [--message MSGID] --out FILE | team invite NAME [--role ROLE] | team stats NAME [--json] | team log NAME [--json]
                          team queues: outsiders write to the team, staff
                          claim and answer ('postern help team')
  agent --team NAME --zone ZONE [--days DAYS] [--hours HH:MM-HH:MM] [--window 3d|DURATION] [--urgent DURATION] [--reminder DURATION] [--holidays FILE] [--roster FILE] [--escalate-to GROUP] [--metrics ADDR]
                          run a team's agent as a service: forwarding,
                          response windows, figures ('postern help agent')
  directory publish FILE | directory show [--json] | directory search QUERY... [--json] | directory contact NAME
                          the organisation's directory of staff, teams and
                          role accounts; find colleagues for compose
  status set available|busy|off [--dnd-until TIME | --dnd FOR] [--forward-to NAME] | status [NAME] [--json]
                          say whether you are available, busy or off duty;
                          do not disturb, forwarded to a named colleague
  role list [--json] | role take ROLE | role leave ROLE | role set ROLE STAFF|--vacant
                          role accounts ("Pharmacy on call"): take one over
                          with its conversations, or leave it
  save ID [--out DIR] [--force]
                          download and verify the files of a message
  export (ID | --with NAME) --out FILE | export --verify FILE [--json]
                          export a message or a conversation for the
                          medical record (FHIR R4, signed by you); check one
  sync                    fetch new messages and print how many arrived
  inbox [--folder F] [--unread] [--json]
                          list messages, with their folders
  read ID [--json]        show one message and mark it read
  search QUERY... [--folder F] [--since DATE] [--until DATE] [--json]
                          search messages: words, "a phrase", from:NAME
  folder list [--json] | folder create NAME | folder rename OLD NEW | folder delete NAME | folder move ID FOLDER
                          list, make, rename and delete folders; put a
                          message in one
  draft list [--json] | draft save [--id ID] [--to NAME] [--subject S] [--reply-to ID] [TEXT...|-] | draft send ID | draft delete ID
                          keep messages being written; send them later
  listen [--json | --notify]
                          stay connected and print messages as they
                          arrive; --notify: only "New secure message"
  ui [--listen ADDR] [--no-browser] [--idle-timeout DURATION] [--relay URL] [--allow-remote --tls-cert FILE --tls-key FILE]
                          open Postern as a web page in your browser, on
                          this computer only ('postern help ui')

Settings:
  settings [--json] | settings receipts on|off
                          show this device's settings; tell senders when
                          you read their messages, or stop (on by default)

  help [COMMAND]          show this help, or a command's
  version                 print the version

Flags, accepted before or after the arguments:
  --home DIR              where keys and messages are kept
                          (default: $POSTERN_HOME, else ~/.postern)
  -v, --verbose           log what happens to standard error

Environment:
  POSTERN_HOME            the default for --home
  POSTERN_PASSPHRASE      the passphrase of the key files; when it is unset,
                          postern asks on the terminal
  POSTERN_RECOVERY_KEY    the recovery key of 'init --restore'; when it is
                          unset, postern asks on the terminal
  POSTERN_MIN_PASSPHRASE_LENGTH
                          raise the minimum length of a new passphrase
                          (default 12, or min-passphrase-length in
                          /etc/postern/policy.conf; see 'postern help init')

Exit status: 0 on success, 1 on failure, 2 for a wrong command line, 3 when
the relay says this device was revoked (its keys and messages were then
deleted from this computer).
`

var helpCmd = &command{
	name:  "help",
	usage: "help [COMMAND]",
	help:  `Show the list of commands, or the details of one.`,
	run:   runHelp,
}

func runHelp(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	switch len(pos) {
	case 0:
		fmt.Fprint(c.stdout, usageText)
		return nil
	case 1:
		target := lookupCommand(pos[0])
		if target == nil {
			return usagef(nil, "unknown command %q", pos[0])
		}
		printCommandHelp(c.stdout, target)
		return nil
	}
	return usagef(cmd, "too many arguments")
}

func printCommandHelp(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "usage: postern %s\n\n%s\n", cmd.usage, cmd.help)
}

var versionCmd = &command{
	name:  "version",
	usage: "version",
	help:  `Print the version of postern, the commit it was built from and that commit's date, and the Go toolchain and platform.`,
	run:   runVersion,
}

func runVersion(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	if _, err := parseN(fs, cmd, args); err != nil {
		return err
	}
	_, err := fmt.Fprintf(c.stdout, "postern %s %s/%s\n", buildinfo.Read(), runtime.GOOS, runtime.GOARCH)
	return err
}
