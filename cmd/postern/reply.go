package main

import (
	"context"
	"flag"
	"strings"

	"github.com/postern/postern/client"
)

var replyCmd = &command{
	name:  "reply",
	usage: "reply ID [--subject S] [--urgent] [--attach FILE]... TEXT...|-",
	help: `Answer message ID (an unambiguous prefix will do): to its sender, or, for a
message you sent, to its recipient. The answer is marked as the reply to it
and shows in its thread on both sides. Its subject is "Re: " and the
subject of the message when it had one, unless --subject S gives another.
TEXT, -, --urgent and --attach work as for 'postern send'.`,
	run: runReply,
}

func runReply(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	var files fileList
	fs.Var(&files, "attach", "")
	subject := fs.String("subject", "", "")
	urgent := fs.Bool("urgent", false, "")
	subjectSet := false
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "subject" {
			subjectSet = true
		}
	})
	switch {
	case len(pos) == 0:
		return usagef(cmd, "missing ID")
	case len(pos) == 1 && len(files) == 0:
		return usagef(cmd, "missing TEXT")
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	orig, err := findMessage(cl, pos[0])
	cl.Close()
	if err != nil {
		return err
	}
	to := orig.From
	if orig.Outgoing {
		to = orig.To
	}
	if orig.Notice {
		return &cliError{msg: "message " + orig.ID + " is a notice of this device, not a message from a contact"}
	}
	if !subjectSet {
		*subject = replySubject(orig.Subject)
	}
	// The answer goes as 'postern send' sends it: the same checks, words
	// and exit statuses.
	send := []string{to, "--reply-to", orig.ID}
	if *subject != "" {
		send = append(send, "--subject", *subject)
	}
	if *urgent {
		send = append(send, "--urgent")
	}
	for _, f := range files {
		send = append(send, "--attach", f)
	}
	send = append(send, "--")
	send = append(send, pos[1:]...)
	return runSend(ctx, c, sendCmd, send)
}

// replySubject is the subject of an answer to a message with subject s:
// "Re: " and s, or s as it is when it starts with "Re:" already or has no
// room for it; "" for none.
func replySubject(s string) string {
	if s == "" || strings.HasPrefix(strings.ToLower(s), "re:") || len(s)+4 > client.MaxSubjectSize {
		return s
	}
	return "Re: " + s
}
