package main

import (
	"flag"
	"io"
)

// newFlagSet returns a FlagSet for cmd that already holds the global flags
// and reports errors to nobody: parse turns them into usage errors.
func (c *cli) newFlagSet(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.globalFlags(fs)
	return fs
}

// parse parses args with flags and positional arguments interleaved:
// Go's flag package stops at the first non-flag, so parse resumes after
// each one. "--" ends the flags; everything after it is positional, which
// is how a message that starts with a dash is sent. A lone "-" is
// positional (it means standard input).
//
// It returns the positional arguments, flag.ErrHelp for -h or --help,
// or a usage error.
func parse(fs *flag.FlagSet, cmd *command, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return nil, err
			}
			return nil, usagef(cmd, "%v", err)
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// parseN is parse for a command that takes exactly n positional arguments,
// named in names for the error message.
func parseN(fs *flag.FlagSet, cmd *command, args []string, names ...string) ([]string, error) {
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return nil, err
	}
	switch {
	case len(pos) < len(names):
		return nil, usagef(cmd, "missing %s", names[len(pos)])
	case len(pos) > len(names) && len(names) == 0:
		// The extra arguments are not echoed: one may be a mistyped secret.
		return nil, usagef(cmd, "%s takes no arguments", cmd.name)
	case len(pos) > len(names):
		return nil, usagef(cmd, "too many arguments")
	}
	return pos, nil
}
