package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/postern/postern/client"
)

// maxStdinText caps "postern send NAME -": the protocol's message limit is
// far below it; the cap only stops an unbounded read.
const maxStdinText = 1 << 20

var sendCmd = &command{
	name:  "send",
	usage: "send NAME [--subject S] [--reply-to ID] [--urgent] [--attach FILE]... [--keep-metadata] TEXT...|-",
	help: `Send a message to the contact NAME. Several TEXT arguments are joined with
spaces; - reads the text from standard input. Put -- before a text that
starts with a dash.

--attach FILE attaches a file (repeat it for up to 16 files); the text is
then optional and becomes the caption. Files are encrypted on this device
and uploaded to the relay, which sees only their padded size. Metadata of
JPEG and PNG images (camera, GPS position, comments) is removed first
unless --keep-metadata is given. Progress is shown on standard error. The
contact saves the files with 'postern save ID'.

--subject S gives the message a subject (at most 256 bytes); --reply-to ID
marks it as the answer to message ID (an unambiguous prefix will do) of
the conversation with NAME. The contact sees both.

--urgent marks the message urgent: the contact sees it marked so, and a
team's queue puts it first and answers it within its urgent response window
(a team's compose shows when that is). Postern is not for emergencies.

When the contact's relay cannot be reached, the message is kept on this
device and send prints "queued: HOST is unreachable; it will be sent when
it is back" (exit status 0: nothing is lost). The next sync, listen or
send sends it.`,
	run: runSend,
}

// fileList is a repeatable flag.
type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func runSend(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	var files fileList
	fs.Var(&files, "attach", "")
	keepMeta := fs.Bool("keep-metadata", false, "")
	subject := fs.String("subject", "", "")
	replyTo := fs.String("reply-to", "", "")
	urgent := fs.Bool("urgent", false, "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef(cmd, "missing NAME")
	case len(pos) == 1 && len(files) == 0:
		return usagef(cmd, "missing TEXT")
	case len(files) > client.MaxAttachments:
		return usagef(cmd, "%d files; a message carries at most %d", len(files), client.MaxAttachments)
	}
	name := pos[0]
	text := strings.Join(pos[1:], " ")
	if len(pos) == 2 && pos[1] == "-" {
		b, err := io.ReadAll(io.LimitReader(c.stdin, maxStdinText+1))
		if err != nil {
			return fmt.Errorf("reading the message from standard input: %w", err)
		}
		if len(b) > maxStdinText {
			return &cliError{msg: "the message on standard input is too long"}
		}
		text = strings.TrimRight(string(b), "\r\n")
	}
	if strings.TrimSpace(text) == "" && len(files) == 0 {
		return usagef(cmd, "empty message")
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return &cliError{msg: fmt.Sprintf("cannot attach %s: %v", f, errText(err)), hint: "check the file name", err: err}
		}
		if !fi.Mode().IsRegular() {
			return &cliError{msg: fmt.Sprintf("cannot attach %s: not a regular file", f)}
		}
	}
	// A text goes over the unauthenticated connection alone: sending does
	// not receive, so nothing that arrives meanwhile is stored (and
	// acknowledged) here instead of by a running 'postern listen'. Files
	// need the authenticated connection to create their blobs, and make
	// it when they do.
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	opts := &client.SendOptions{KeepMetadata: *keepMeta, Subject: *subject, Urgent: *urgent}
	if *replyTo != "" {
		orig, err := findMessage(cl, *replyTo)
		if err != nil {
			return err
		}
		opts.ReplyTo = orig.ID
	}
	var m client.Message
	if len(files) > 0 {
		pr := c.newProgress()
		opts.Progress = pr.update
		m, err = cl.SendFiles(ctx, name, text, files, opts)
		pr.end()
	} else {
		m, err = cl.SendWith(ctx, name, text, opts)
	}
	printForwarding(c, m)
	switch {
	case errors.Is(err, client.ErrQueued):
		// Not a failure: the message is stored and waits in the outbox.
		fmt.Fprintln(c.stdout, safe(err.Error(), false))
		return nil
	case errors.Is(err, client.ErrUnknownContact):
		return unknownContact(name, err)
	case errors.Is(err, client.ErrIdentityChanged):
		return &cliError{
			msg:  fmt.Sprintf("%s's safety number changed; nothing was sent", safe(name, false)),
			hint: "compare the new safety number with them (postern whoami --contact " + safe(name, false) + "), then: postern contacts verify " + safe(name, false),
			err:  err,
		}
	case errors.Is(err, client.ErrReplyTo):
		return &cliError{msg: fmt.Sprintf("message %s is not in your conversation with %s; nothing was sent", safe(*replyTo, false), safe(name, false)), err: err}
	case errors.Is(err, client.ErrInvalidSubject):
		return &cliError{msg: "the subject is too long or has control characters; nothing was sent", hint: "use a subject of at most 256 bytes on one line", err: err}
	case errors.Is(err, client.ErrBlocked):
		return &cliError{msg: fmt.Sprintf("%s has blocked you; the message was not delivered", safe(name, false)), err: err}
	case errors.Is(err, client.ErrContactBlocked):
		return &cliError{
			msg:  fmt.Sprintf("you blocked %s; nothing was sent", safe(name, false)),
			hint: "unblock them first with: postern unblock " + safe(name, false),
			err:  err,
		}
	case errors.Is(err, client.ErrFileChanged):
		return &cliError{
			msg:  "a file changed while it was being sent; nothing was sent",
			hint: "send it again once nothing is writing to it",
			err:  err,
		}
	case errors.Is(err, client.ErrStore) && m.ID != "":
		// Delivered, but this device's copy is missing.
		why := "its storage failed"
		if diskFull(err) {
			why = "the disk is full"
		}
		return &cliError{
			msg:  fmt.Sprintf("sent to %s (%s), but this device could not keep a copy: %s", safe(name, false), m.ID, why),
			hint: "free some space on this device; the message was delivered and will not be sent again",
			err:  err,
		}
	case err != nil:
		return err
	}
	fmt.Fprintf(c.stdout, "Sent to %s (%s).\n", safe(name, false), m.ID)
	return nil
}

var syncCmd = &command{
	name:  "sync",
	usage: "sync",
	help: `Fetch new messages from the relay and print how many arrived. Read them with
'postern inbox'. If a message cannot be stored on this device (a full disk),
sync fails (exit status 1) and the relay keeps the message for the next sync.`,
	run: runSync,
}

func runSync(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	if _, err := parseN(fs, cmd, args); err != nil {
		return err
	}
	// Open, then connect in Sync: the contacts are read before anything
	// is received, so that every contact an introduction adds is told.
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	before, err := cl.Contacts()
	if err != nil {
		return err
	}
	msgs, err := cl.Sync(ctx)
	if err != nil {
		// Messages stored before a failure are kept: say how many, then
		// fail (a full disk must never read as "0 new messages").
		if len(msgs) > 0 {
			fmt.Fprintln(c.stdout, plural(len(msgs), "new message", "new messages")+" stored before the failure")
		}
		return err
	}
	fmt.Fprintln(c.stdout, plural(len(msgs), "new message", "new messages"))
	// Someone who accepted an invitation becomes a contact at this sync:
	// say so, with the way to check who it is.
	after, err := cl.Contacts()
	if err != nil {
		return err
	}
	known := make(map[string]bool, len(before))
	for _, ct := range before {
		known[ct.Name] = true
	}
	for _, ct := range after {
		if !known[ct.Name] {
			fmt.Fprintf(c.stdout, "New contact: %s. Compare safety numbers: postern whoami --contact %s\n", safe(ct.Name, false), safe(ct.Name, false))
		}
	}
	return nil
}

var inboxCmd = &command{
	name:  "inbox",
	usage: "inbox [--folder F] [--unread] [--json]",
	help: `List the messages kept on this device, received and sent: ID, sender, time,
folder and the subject and start of the text. --folder F lists only folder F
(Inbox, Sent, Archive or one of your own, see 'postern folder'); --unread
only messages you have not read. It does not contact the relay: run
'postern sync' first, or keep 'postern listen' running. --json prints an
array of objects with id, from, to, text, time (RFC 3339), received,
outgoing and folder (inbox, sent, archive or the ID of a folder of your
own), "unread": true on a received message not read yet, "notice": true on
notices, "subject" and "reply_to" when set, "urgent": true on an urgent message, "queued": true on a sent
message still waiting for its recipient's relay, "send_error" on one that
could not be sent, "delivered" and "read_receipt" (RFC 3339) on a sent
message the recipient reported delivered or read, and "attachments" (name,
size in bytes, media_type) on messages with files; save those with
'postern save ID'. The READ column shows, for a sent message, "read" with
the time the recipient read it, or "delivered" (recipients may turn read
receipts off: 'postern settings receipts off').
Notices (a reset secure session) are written by this device, not by the
contact; the table marks them [notice], urgent messages [urgent], unread messages [unread], messages
waiting to be sent [queued] and messages that could not be sent [not sent].
'postern read ID' shows a message and marks it read.`,
	run: runInbox,
}

func runInbox(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	folder := fs.String("folder", "", "")
	unreadOnly := fs.Bool("unread", false, "")
	if _, err := parseN(fs, cmd, args); err != nil {
		return err
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
	opts := &client.ListOptions{Unread: *unreadOnly, Limit: client.MaxListLimit}
	if *folder != "" {
		f, err := findFolder(cl, *folder)
		if err != nil {
			return err
		}
		opts.Folder = f.ID
	}
	// Page through, newest first, and show oldest first.
	var msgs []client.Message
	for {
		page, err := cl.Messages(opts)
		if err != nil {
			return err
		}
		msgs = append(msgs, page...)
		if len(page) < opts.Limit {
			break
		}
		opts.Before = page[len(page)-1].ID
	}
	slices.Reverse(msgs)
	return printMessages(c, msgs, names, *asJSON, "No messages.")
}

// printMessages lists msgs as inbox does, as a table or as JSON, with
// the folders' names from names (folderNames).
func printMessages(c *cli, msgs []client.Message, names map[string]string, asJSON bool, none string) error {
	now := time.Now().Local()
	return printList(c, msgs, asJSON, toJSONMessage, none, "ID\tFROM\tTIME\tFOLDER\tREAD\tTEXT", func(m client.Message) string {
		from := safe(m.From, false)
		if m.Outgoing {
			from = "me → " + safe(m.To, false)
		}
		text := preview(displayText(m)+attachmentSummary(m), previewRunes)
		if !m.Read {
			text = "[unread] " + text
		}
		if m.Urgent {
			text = "[urgent] " + text
		}
		if m.ForwardedFor != "" {
			text = "[for " + safe(m.ForwardedFor, false) + "] " + text
		}
		return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", m.ID, from, m.Time.Local().Format(tableTime), safe(names[m.Folder], false), receiptState(m, now), text)
	})
}

// folderNames maps the ID of each of cl's folders to its name.
func folderNames(cl *client.Client) (map[string]string, error) {
	folders, err := cl.Folders()
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, f := range folders {
		names[f.ID] = f.Name
	}
	return names, nil
}

var readCmd = &command{
	name:  "read",
	usage: "read ID [--json]",
	help: `Show the message ID in full (an unambiguous prefix of the ID will do) and
mark it read, here and on your other devices. --json prints one object, as
in 'postern inbox --json'. Attached files are listed with their size;
'postern save ID' downloads them. Like 'postern inbox', it reads this
device's store and does not fetch messages from the relay.`,
	run: runRead,
}

func runRead(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	asJSON := fs.Bool("json", false, "")
	pos, err := parseN(fs, cmd, args, "ID")
	if err != nil {
		return err
	}
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	m, err := findMessage(cl, pos[0])
	if err != nil {
		return err
	}
	if !m.Read {
		// Shown is read: marked before it is printed, so that an output
		// cut short does not leave it unread (the text is shown anyway).
		if err := cl.MarkRead(ctx, m.ID); err != nil {
			return err
		}
	}
	if *asJSON {
		return writeJSON(c.stdout, toJSONMessage(m))
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", m.ID)
	fmt.Fprintf(tw, "From:\t%s\n", safe(m.From, false))
	fmt.Fprintf(tw, "To:\t%s\n", safe(m.To, false))
	fmt.Fprintf(tw, "Date:\t%s\n", m.Time.Local().Format(fullTime))
	if m.Subject != "" {
		fmt.Fprintf(tw, "Subject:\t%s\n", safe(m.Subject, false))
	}
	if m.ReplyTo != "" {
		fmt.Fprintf(tw, "In reply to:\t%s\n", m.ReplyTo)
	}
	if m.Urgent {
		fmt.Fprintf(tw, "Priority:\turgent\n")
	}
	switch {
	case m.ForwardedFor != "":
		fmt.Fprintf(tw, "Forwarded for:\t%s\n", safe(m.ForwardedFor, false))
	case m.ForwardedTo != "":
		fmt.Fprintf(tw, "Forwarded to:\t%s (%s)\n", safe(m.ForwardedTo, false), safe(m.ForwardReason, false))
	case m.NotForwarded != "":
		fmt.Fprintf(tw, "Not forwarded:\t%s (%s)\n", safe(m.NotForwarded, false), safe(m.ForwardReason, false))
	}
	switch {
	case m.SendError != "":
		fmt.Fprintf(tw, "Status:\tnot sent: %s\n", safe(m.SendError, false))
	case m.Queued:
		fmt.Fprintf(tw, "Status:\tqueued: it will be sent when the recipient's relay is back\n")
	case !m.ReadReceipt.IsZero():
		fmt.Fprintf(tw, "Status:\tread %s\n", m.ReadReceipt.Local().Format(fullTime))
	case !m.Delivered.IsZero():
		fmt.Fprintf(tw, "Status:\tdelivered %s\n", m.Delivered.Local().Format(fullTime))
	}
	if !m.Expires.IsZero() {
		fmt.Fprintf(tw, "Disappears:\t%s\n", m.Expires.Local().Format(fullTime))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !m.Recalled.IsZero() {
		_, err := fmt.Fprintf(c.stdout, "\n%s\n", safe(recalledText(m), true))
		return err
	}
	if m.Text != "" || len(m.Attachments) == 0 {
		body := m.Text
		if m.Notice {
			body = noticeMark + body
		}
		if _, err := fmt.Fprintf(c.stdout, "\n%s\n", safe(body, true)); err != nil {
			return err
		}
	}
	if len(m.Attachments) > 0 {
		fmt.Fprintln(c.stdout)
		for _, a := range m.Attachments {
			fmt.Fprintf(c.stdout, "Attachment: %s (%s, %s)\n", safe(a.Name, false), formatSize(a.Size), safe(a.MediaType, false))
		}
		_, err = fmt.Fprintf(c.stdout, "Save with: postern save %s\n", m.ID)
	}
	return err
}

// findMessage returns the message with this ID or, failing that, the only
// message whose ID starts with it.
func findMessage(cl *client.Client, id string) (client.Message, error) {
	m, err := cl.Message(id)
	if err == nil || !errors.Is(err, client.ErrNoMessage) {
		return m, err
	}
	noMessage := &cliError{
		msg:  fmt.Sprintf("no message %q", id),
		hint: "list messages and their IDs with: postern inbox",
		err:  err,
	}
	if id == "" {
		return client.Message{}, noMessage
	}
	msgs, err := cl.Inbox()
	if err != nil {
		return client.Message{}, err
	}
	var found []client.Message
	for _, m := range msgs {
		if strings.HasPrefix(m.ID, id) {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return client.Message{}, noMessage
	case 1:
		return found[0], nil
	}
	return client.Message{}, &cliError{
		msg:  fmt.Sprintf("%d messages have IDs starting with %q", len(found), id),
		hint: "give more of the ID",
	}
}
