package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/postern/postern/client"
)

var backupCmd = &command{
	name:  "backup",
	usage: "backup FILE",
	help: `Write an encrypted backup of your identity, contacts and messages to FILE
(a new file; an existing one is not overwritten), and print its recovery
key: 16 groups of 6 digits, shown this once. Keep the key apart from the
file; without it the backup cannot be opened, and whoever has both can act
as you. Attachments' contents are not in the backup: they stay on the
relays, and the backup holds the keys to fetch them.

Restore it on a new computer with 'postern init --restore FILE --name
DEVICE-NAME': it becomes a new device of yours. It does not use the relay.`,
	run: runBackup,
}

func runBackup(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	pos, err := parseN(fs, cmd, args, "FILE")
	if err != nil {
		return err
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	key, err := cl.Backup(ctx, pos[0])
	if err != nil {
		return backupError(err, pos[0], false)
	}
	fmt.Fprintf(c.stdout, "Wrote the backup to %s. Its recovery key, shown this once:\n\n", safe(pos[0], false))
	for _, line := range strings.Split(key, "\n") {
		fmt.Fprintf(c.stdout, "    %s\n", line)
	}
	fmt.Fprintf(c.stdout, "\nKeep the recovery key apart from the file: without it the backup cannot be opened.\n")
	return nil
}

// recoveryKey returns the recovery key of a restore: POSTERN_RECOVERY_KEY
// if set (scripts), otherwise read from the terminal without echo. It
// never prints the key.
func (c *cli) recoveryKey() (string, error) {
	if v, ok := c.lookupEnv("POSTERN_RECOVERY_KEY"); ok {
		return v, nil
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", &cliError{
			msg:  "no recovery key: POSTERN_RECOVERY_KEY is not set and standard input is not a terminal",
			hint: "set POSTERN_RECOVERY_KEY, or run postern in a terminal to be asked",
		}
	}
	fmt.Fprint(c.stderr, "Recovery key (the 16 groups of 6 digits, on one line): ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", fmt.Errorf("reading the recovery key: %w", err)
	}
	return string(b), nil
}

// runRestore is 'postern init --restore FILE --name DEVICE-NAME'.
func runRestore(ctx context.Context, c *cli, file, deviceName, invite string) error {
	home, err := c.homeDir()
	if err != nil {
		return err
	}
	min, err := c.minPassphrase()
	if err != nil {
		return err
	}
	key, err := c.recoveryKey()
	if err != nil {
		return err
	}
	if err := client.CheckRecoveryKey(key); err != nil {
		return backupError(err, file, true) // before the passphrase is asked
	}
	passphrase, err := c.newPassphrase(min)
	if err != nil {
		return err
	}
	opts, err := c.options()
	if err != nil {
		return err
	}
	opts.Invite = invite
	cl, err := client.Restore(ctx, home, passphrase, file, key, deviceName, opts)
	if err != nil {
		return backupError(err, file, true)
	}
	defer cl.Close()
	w := cl.Whoami()
	contacts, messages := cl.Restored()
	fmt.Fprintf(c.stdout, "Restored %s in %s as a new device, %s: %s, %s.\n",
		safe(w.Name, false), home, safe(deviceName, false), plural(contacts, "contact", "contacts"), plural(messages, "message", "messages"))
	printWhoami(c, w)
	return nil
}

// backupError words the errors of backup and restore (restoring) for the
// user.
func backupError(err error, file string, restoring bool) error {
	msg := strings.TrimPrefix(err.Error(), "client: ")
	switch {
	case errors.Is(err, client.ErrWrongRecoveryKey):
		return &cliError{msg: "the recovery key does not open " + file, hint: "check that it is the key shown when this backup was written", err: err}
	case errors.Is(err, client.ErrRecoveryKey):
		return &cliError{msg: msg, hint: "type the 16 groups of 6 digits as they were shown; nothing was restored", err: err}
	case errors.Is(err, client.ErrBackupDamaged):
		return &cliError{msg: msg, hint: "nothing was restored; use another copy of the backup", err: err}
	case errors.Is(err, client.ErrNotBackup):
		return &cliError{msg: file + " is not a Postern backup file that this release can read", hint: "nothing was restored", err: err}
	case errors.Is(err, client.ErrBackupExists):
		return &cliError{msg: file + " exists; it was not overwritten", hint: "remove it or choose another file name", err: err}
	case errors.Is(err, client.ErrTooManyDevices):
		return &cliError{msg: msg, hint: "nothing was restored", err: err}
	case restoring:
	case diskFull(err):
		return &cliError{msg: "the disk is full: the backup was not written, and nothing was left at " + file, hint: "free some space, or write the backup to another disk", err: err}
	case errors.Is(err, client.ErrStore):
		return &cliError{msg: "could not write " + file + ": " + msg, hint: "nothing was left at " + file + "; check the disk and the directory's permissions", err: err}
	}
	return err
}
