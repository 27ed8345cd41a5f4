package main

import (
	"context"
	"errors"
	"strings"

	"github.com/postern/postern/client"
)

var searchCmd = &command{
	name:  "search",
	usage: "search QUERY... [--folder F] [--since DATE] [--until DATE] [--json]",
	help: `Search the messages kept on this device, received and sent, best match
first: their subjects, texts, the names of their files and the people they
are from and to. Every word must match; "quoted words" must match in that
order; from:NAME (or from:"First Last") matches the sender or recipient.
Letter case and accents do not count. --folder F searches only folder F
(Inbox, Sent, Archive or one of your own); --since and --until take a date
(YYYY-MM-DD, both days included) or a time (RFC 3339). --json prints the
messages as 'postern inbox --json' does. Like 'postern inbox', it reads
this device's store and does not contact the relay. The first search makes
the encrypted index (search.db in the home) from the messages kept, about
10,000 a second; it is then kept up to date.`,
	run: runSearch,
}

func runSearch(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	folder := fs.String("folder", "", "")
	since := fs.String("since", "", "")
	until := fs.String("until", "", "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "missing QUERY")
	}
	opts := &client.SearchOptions{}
	if *since != "" {
		if opts.Since, err = client.ParseSearchTime(*since, false); err != nil {
			return usagef(cmd, "--since: %v", err)
		}
	}
	if *until != "" {
		if opts.Until, err = client.ParseSearchTime(*until, true); err != nil {
			return usagef(cmd, "--until: %v", err)
		}
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	names, err := folderNames(cl)
	if err != nil {
		return err
	}
	if *folder != "" {
		f, err := findFolder(cl, *folder)
		if err != nil {
			return err
		}
		opts.Folder = f.ID
	}
	msgs, err := cl.Search(ctx, strings.Join(pos, " "), opts)
	switch {
	case errors.Is(err, client.ErrSearchQuery):
		reason := err.Error()
		if i := strings.LastIndex(reason, ": "); i >= 0 {
			reason = reason[i+2:]
		}
		return &cliError{msg: "cannot search for that: " + reason, hint: `search for words, "words in a row" or from:NAME, at most 16 of them`, err: err}
	case errors.Is(err, client.ErrSearchIndex):
		return &cliError{msg: "the search index cannot be used just now", hint: "try again; another postern on this home may hold it", err: err}
	case err != nil:
		return err
	}
	return printMessages(c, msgs, names, *asJSON, "No messages found.")
}
