package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"strings"
	"syscall"

	"github.com/postern/postern/client"
	"github.com/postern/postern/protocol"
)

// cliError is a failure worded for the user, with an optional hint: the
// command line that fixes it, or where to look.
type cliError struct {
	msg  string
	hint string
	err  error // the cause, for errors.Is; may be nil
}

func (e *cliError) Error() string { return e.msg }
func (e *cliError) Unwrap() error { return e.err }

// usageError is a command line that does not parse. It exits with 2.
type usageError struct {
	cmd *command // nil for errors before the command is known
	msg string
}

func (e *usageError) Error() string { return e.msg }

func usagef(cmd *command, format string, args ...any) error {
	return &usageError{cmd: cmd, msg: fmt.Sprintf(format, args...)}
}

// report prints err as "postern: error: …" and "hint: …" on standard error
// and returns the exit code.
func (c *cli) report(err error) int {
	if err == nil {
		return 0
	}
	if ue, ok := errors.AsType[*usageError](err); ok {
		fmt.Fprintf(c.stderr, "postern: error: %s\n", ue.msg)
		if ue.cmd != nil {
			fmt.Fprintf(c.stderr, "hint: usage: postern %s\n", ue.cmd.usage)
		} else {
			fmt.Fprintf(c.stderr, "hint: run 'postern help' for the commands\n")
		}
		return 2
	}
	msg, hint := c.explain(err)
	fmt.Fprintf(c.stderr, "postern: error: %s\n", msg)
	if hint != "" {
		fmt.Fprintf(c.stderr, "hint: %s\n", hint)
	}
	if errors.Is(err, client.ErrDeviceRevoked) {
		return exitRevoked
	}
	return 1
}

// exitRevoked is the exit status when the relay revoked this device
// (client.ErrDeviceRevoked): scripts can tell it from a passing failure.
const exitRevoked = 3

// explain words err for the user. Errors it does not know are printed as
// they are: the library's errors never hold secrets.
func (c *cli) explain(err error) (msg, hint string) {
	if ce, ok := errors.AsType[*cliError](err); ok {
		return ce.msg, ce.hint
	}
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted", ""
	case errors.Is(err, client.ErrDeviceRevoked):
		return strip(err), "if this was not you, ask your other device or the relay's operator; 'postern init' starts again as a new device"
	case errors.Is(err, client.ErrTransparency):
		return strings.TrimPrefix(strip(err), "people: "), "the relay may be showing you a log it does not show others: tell its operator, and do not trust its device lists"
	case errors.Is(err, client.ErrWrongPassphrase) && c.passphraseFromFile:
		return "wrong passphrase for " + c.home, "check the file POSTERN_PASSPHRASE_FILE names"
	case errors.Is(err, client.ErrWrongPassphrase) && c.passphraseFromEnv:
		return "wrong passphrase for " + c.home,
			"check POSTERN_PASSPHRASE, or unset it to be asked on the terminal"
	case errors.Is(err, client.ErrWrongPassphrase):
		return "wrong passphrase for " + c.home, "run the command again"
	case errors.Is(err, client.ErrEmptyPassphrase):
		return "the passphrase must not be empty",
			"set POSTERN_PASSPHRASE, or unset it to be asked on the terminal"
	case errors.Is(err, client.ErrNotInitialised) && err != client.ErrNotInitialised:
		return strip(err), "" // a half-done init, with its own advice
	case errors.Is(err, client.ErrNotInitialised):
		return "no Postern identity in " + c.home,
			"create one with: postern init --relay URL --name NAME"
	case errors.Is(err, client.ErrExists):
		return c.home + " already holds a Postern identity",
			"keep another identity elsewhere with --home DIR"
	case errors.Is(err, client.ErrInsecureRelay) && strings.HasPrefix(strings.ToLower(c.relayURL), "ws://"):
		return "insecure relay URL: ws:// is allowed only to a loopback address",
			"use wss:// for a relay on another host"
	case errors.Is(err, client.ErrInsecureRelay):
		return "the relay URL must start with wss://", "use wss://HOST[:PORT][/PATH]"
	case errors.Is(err, client.ErrInvalidRelayURL):
		return strip(err), "give the relay as wss://HOST[:PORT][/PATH]"
	case errors.Is(err, client.ErrInvalidName):
		return strip(err), "use a shorter name without control characters"
	case errors.Is(err, client.ErrContactExists):
		return strip(err), "see your contacts with: postern contacts"
	case errors.Is(err, client.ErrUnknownContact):
		return "unknown contact", "list your contacts with: postern contacts"
	case errors.Is(err, client.ErrBlocked):
		return strip(err), ""
	case errors.Is(err, client.ErrInvitationSpent):
		return strip(err), "ask your contact for a new invitation ('postern invite' makes one)"
	case errors.Is(err, client.ErrStalePrekey):
		return strip(err), "ask your contact to open Postern (any command that connects, e.g. 'postern sync') so their device renews its keys"
	case errors.Is(err, client.ErrContactBlocked):
		return strip(err), "list who is blocked with: postern contacts"
	case diskFull(err):
		return "the disk of this device is full (" + c.home + "); nothing more could be stored",
			"free some space and run the command again: what was not stored stays on the relay"
	case errors.Is(err, client.ErrStore):
		return strip(err), "check the disk and the permissions of " + c.home + "; what was not stored stays on the relay"
	case errors.Is(err, client.ErrTooLong):
		return strip(err), "split it into several messages"
	case errors.Is(err, client.ErrInvalidText):
		return strip(err), ""
	case errors.Is(err, client.ErrNoMessage):
		return "no such message", "list messages with: postern inbox"
	case errors.Is(err, client.ErrInvalidInvitation):
		return strip(err), "ask for a new one: it is the single line that 'postern invite' prints"
	case errors.Is(err, client.ErrTooManyFiles):
		return strip(err), "send the other files in another message"
	case errors.Is(err, client.ErrInvalidAttachment):
		return strip(err), ""
	case errors.Is(err, client.ErrIdentityMismatch):
		return strip(err), "nothing was added; get a new invitation from your contact over a channel you trust"
	}
	if pe, ok := errors.AsType[*protocol.Error](err); ok {
		return explainRelay(pe)
	}
	if unreachable(err) {
		if c.relayURL != "" {
			return "cannot reach the relay: " + strip(err),
				"check the relay URL and that the relay is running"
		}
		return "cannot reach the relay: " + strip(err),
			"check the relay URL (postern whoami shows it) and that the relay is running"
	}
	return strip(err), ""
}

// strip drops the library's "client: " prefix, which means nothing to a
// user of the CLI.
func strip(err error) string {
	return strings.TrimPrefix(err.Error(), "client: ")
}

// explainRelay words a refusal from the relay.
func explainRelay(e *protocol.Error) (msg, hint string) {
	msg = e.Error()
	switch e.Code {
	case protocol.CodeEnrollmentRefused:
		return "the relay refused to enrol this device",
			"ask the relay's operator for an invite code and pass it with --invite CODE"
	case protocol.CodeDeviceRevoked:
		return "the relay operator revoked this device", ""
	case protocol.CodeCapabilityRevoked:
		return "the contact has blocked you; the message was not delivered", ""
	case protocol.CodeRateLimited:
		return msg, "wait a moment and try again"
	case protocol.CodeTooManyConnections, protocol.CodeShuttingDown:
		return msg, "try again later"
	case protocol.CodeStorageFull:
		return "the relay's disk is full; the message was not sent", "try again later; tell the relay's operator if it lasts"
	case protocol.CodeQueueFull:
		return msg, "the recipient must sync before they can receive more"
	case protocol.CodeBlobTooLarge:
		return "the file is larger than the relay accepts", "send a smaller file, or split it"
	case protocol.CodeBlobQuota:
		return "your space on the relay is used up", "files expire 14 days after they were sent; or ask the relay's operator"
	case protocol.CodeVersion:
		return msg, "the relay and this postern speak different protocol versions; upgrade the older one"
	}
	return msg, ""
}

// unreachable reports whether err is a failure to reach the relay at all,
// rather than a refusal from it.
func unreachable(err error) bool {
	if _, ok := errors.AsType[*net.OpError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*net.DNSError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*url.Error](err); ok {
		return true // the WebSocket handshake failed below HTTP: TLS, timeout
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// diskFull reports whether err is the operating system's "no space left
// on device" (ERROR_DISK_FULL or ERROR_HANDLE_DISK_FULL on Windows).
func diskFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	var errno syscall.Errno
	return runtime.GOOS == "windows" && errors.As(err, &errno) && (errno == 112 || errno == 39)
}
