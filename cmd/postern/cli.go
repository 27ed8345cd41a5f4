package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/postern/postern/client"
	"github.com/postern/postern/keys/identity"
)

// cli is one invocation: its streams, its environment and the global flags.
type cli struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	lookupEnv      func(string) (string, bool)

	homeFlag string // --home, "" when not given
	verbose  bool   // -v, --verbose
	home     string // resolved by homeDir, for messages
	relayURL string // init's --relay, for messages

	passphraseFromEnv bool // POSTERN_PASSPHRASE was used, for messages
	// passphraseFromFile: POSTERN_PASSPHRASE_FILE was used, for messages.
	passphraseFromFile bool
	// service: a long-running command (agent) that logs at Info level
	// without --verbose.
	service bool

	policyPath string // the organisation's policy file; "" is systemPolicyPath() (tests set it)

	// kdf is the Argon2id cost of a key file made by init; nil is the
	// default. No flag or variable sets it: only in-process tests do, where
	// the unlock is not what they test and the default cost under the race
	// detector takes seconds per command.
	kdf *identity.KDFParams
}

// command is one subcommand. usage is its synopsis line(s) without the
// leading "postern "; help is the paragraph printed under it.
type command struct {
	name  string
	usage string
	help  string
	run   func(ctx context.Context, c *cli, cmd *command, args []string) error
}

// commands in the order "postern help" lists them.
var commands []*command

func init() {
	commands = []*command{
		initCmd, whoamiCmd, deviceCmd, backupCmd,
		inviteCmd, acceptCmd, contactsCmd, blockCmd, unblockCmd, optinCmd, disappearCmd, patientCmd,
		sendCmd, replyCmd, recallCmd, groupCmd, teamCmd, agentCmd, directoryCmd, statusCmd, roleCmd, saveCmd, exportCmd, syncCmd, inboxCmd, readCmd, searchCmd, folderCmd, draftCmd, listenCmd, uiCmd,
		settingsCmd, helpCmd, versionCmd,
	}
}

func lookupCommand(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

func (c *cli) main(ctx context.Context, args []string) int {
	global := flag.NewFlagSet("postern", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	c.globalFlags(global)
	var help, version bool
	global.BoolVar(&help, "help", false, "")
	global.BoolVar(&help, "h", false, "")
	global.BoolVar(&version, "version", false, "")
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(c.stdout, usageText)
			return 0
		}
		return c.report(usagef(nil, "%v", err))
	}
	switch {
	case help:
		fmt.Fprint(c.stdout, usageText)
		return 0
	case version:
		return c.report(versionCmd.run(ctx, c, versionCmd, nil))
	case global.NArg() == 0:
		fmt.Fprint(c.stderr, usageText)
		return 2
	}
	name, rest := global.Arg(0), global.Args()[1:]
	cmd := lookupCommand(name)
	if cmd == nil {
		return c.report(usagef(nil, "unknown command %q", name))
	}
	err := cmd.run(ctx, c, cmd, rest)
	if errors.Is(err, flag.ErrHelp) {
		printCommandHelp(c.stdout, cmd)
		return 0
	}
	return c.report(err)
}

// globalFlags defines the flags every command accepts, wherever they stand
// on the line. Each command's FlagSet defines them again, bound to the same
// fields, so "postern inbox --home DIR" and "postern --home DIR inbox" agree.
func (c *cli) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.homeFlag, "home", c.homeFlag, "")
	fs.BoolVar(&c.verbose, "verbose", c.verbose, "")
	fs.BoolVar(&c.verbose, "v", c.verbose, "")
}

// homeDir resolves the home directory: --home, then POSTERN_HOME, then
// ~/.postern.
func (c *cli) homeDir() (string, error) {
	home := c.homeFlag
	if home == "" {
		home, _ = c.lookupEnv("POSTERN_HOME")
	}
	if home == "" {
		user, err := os.UserHomeDir()
		if err != nil {
			return "", &cliError{
				msg:  fmt.Sprintf("no home directory for postern: %v", err),
				hint: "give one with --home DIR or POSTERN_HOME",
			}
		}
		home = filepath.Join(user, ".postern")
	}
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	c.home = home
	return home, nil
}

// options are the client options of every command: the organisation's
// name from the policy file, and a logger that discards unless --verbose
// asks for debug logs on standard error.
func (c *cli) options() (*client.Options, error) {
	p, err := c.policy()
	if err != nil {
		return nil, err
	}
	kdf := c.kdf
	if kdf == nil {
		kdf = testKDF // nil outside tests: the default
	}
	opts := &client.Options{Organisation: p.organisation, Directory: p.directory, KDF: kdf}
	switch {
	case c.verbose:
		opts.Logger = slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	case c.service:
		// A service's log (the journal) keeps what went wrong; the
		// library's lines carry no content.
		opts.Logger = slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return opts, nil
}

// open reads the passphrase and opens the client in the home directory
// without the network: for commands that only read local state, so that
// they work while the relay is unreachable and never receive (or
// acknowledge) anything behind a running 'postern listen'.
func (c *cli) open() (*client.Client, error) {
	home, passphrase, err := c.homeAndPassphrase()
	if err != nil {
		return nil, err
	}
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	return client.Open(home, passphrase, opts)
}

// dial reads the passphrase, opens the client in the home directory and
// connects it to the relay: for commands that need the relay.
func (c *cli) dial(ctx context.Context) (*client.Client, error) {
	home, passphrase, err := c.homeAndPassphrase()
	if err != nil {
		return nil, err
	}
	opts, err := c.options()
	if err != nil {
		return nil, err
	}
	return client.Dial(ctx, home, passphrase, opts)
}

func (c *cli) homeAndPassphrase() (string, []byte, error) {
	home, err := c.homeDir()
	if err != nil {
		return "", nil, err
	}
	passphrase, err := c.passphrase(false)
	if err != nil {
		return "", nil, err
	}
	return home, passphrase, nil
}
