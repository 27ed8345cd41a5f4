package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/postern/postern/client"
)

// Times in tables and headers: local time to the minute (tables) or second.
const (
	tableTime = "2006-01-02 15:04"
	fullTime  = "2006-01-02 15:04:05 MST"
)

// previewRunes is the length of the text column of "postern inbox".
const previewRunes = 48

// jsonMessage is a message in --json output. The field names are a stable
// interface for scripts; times are RFC 3339.
type jsonMessage struct {
	ID       string `json:"id"`
	From     string `json:"from"`
	To       string `json:"to"`
	Text     string `json:"text"`
	Time     string `json:"time"`
	Received string `json:"received,omitempty"`
	Outgoing bool   `json:"outgoing"`
	// Folder is the folder's ID (inbox, sent, archive or a folder of
	// one's own); Unread marks a received message not read yet.
	Folder  string `json:"folder"`
	Unread  bool   `json:"unread,omitempty"`
	Notice  bool   `json:"notice,omitempty"` // a notice of this client (session reset), not a message
	Subject string `json:"subject,omitempty"`
	ReplyTo string `json:"reply_to,omitempty"`
	Urgent  bool   `json:"urgent,omitempty"`
	// Queued: sent, waiting in the outbox for the recipient's relay;
	// SendError: why it left the outbox unsent.
	Queued    bool   `json:"queued,omitempty"`
	SendError string `json:"send_error,omitempty"`
	// Delivered, ReadReceipt: when the recipient reported a sent
	// message delivered and read (receipts).
	Delivered   string `json:"delivered,omitempty"`
	ReadReceipt string `json:"read_receipt,omitempty"`
	// Attachments lists the message's files, if any.
	Attachments []jsonAttachment `json:"attachments,omitempty"`
	// Expires: when a disappearing message is deleted on every device.
	Expires string `json:"expires,omitempty"`
	// Recalled, RecalledBy: when and by whom ("me" or the contact) the
	// message was deleted for everyone; its text and files are gone.
	Recalled   string `json:"recalled,omitempty"`
	RecalledBy string `json:"recalled_by,omitempty"`
	// Forwarding by availability status: forwarded_to (and why), or
	// not_forwarded naming the colleague who could not be written to,
	// for a sent message; forwarded_for, a copy forwarded for that person.
	ForwardedTo   string `json:"forwarded_to,omitempty"`
	ForwardReason string `json:"forward_reason,omitempty"`
	NotForwarded  string `json:"not_forwarded,omitempty"`
	ForwardedFor  string `json:"forwarded_for,omitempty"`
	// ReadBy: an outsider's message in a team's queue conversation, the
	// staff members who read it ("me" for you), first first.
	ReadBy []jsonRead `json:"read_by,omitempty"`
}

// jsonRead is one staff member's read of a queue message.
type jsonRead struct {
	By string `json:"by"`
	At string `json:"at"`
}

// jsonAttachment is one file of a message in --json output.
type jsonAttachment struct {
	Name      string `json:"name"`
	Size      int64  `json:"size"`
	MediaType string `json:"media_type"`
}

func toJSONMessage(m client.Message) jsonMessage {
	j := jsonMessage{
		ID:        m.ID,
		From:      m.From,
		To:        m.To,
		Text:      m.Text,
		Time:      rfc3339(m.Time),
		Received:  rfc3339(m.Received),
		Outgoing:  m.Outgoing,
		Folder:    m.Folder,
		Unread:    !m.Read,
		Notice:    m.Notice,
		Subject:   m.Subject,
		ReplyTo:   m.ReplyTo,
		Urgent:    m.Urgent,
		Queued:    m.Queued,
		SendError: m.SendError,
		Attachments: func() []jsonAttachment {
			var out []jsonAttachment
			for _, a := range m.Attachments {
				out = append(out, jsonAttachment{Name: a.Name, Size: a.Size, MediaType: a.MediaType})
			}
			return out
		}(),
	}
	j.Delivered, j.ReadReceipt = rfc3339(m.Delivered), rfc3339(m.ReadReceipt)
	j.Expires = rfc3339(m.Expires)
	j.Recalled, j.RecalledBy = rfc3339(m.Recalled), m.RecalledBy
	for _, r := range m.ReadBy {
		j.ReadBy = append(j.ReadBy, jsonRead{By: r.By, At: rfc3339(r.At)})
	}
	j.ForwardedTo, j.ForwardReason, j.NotForwarded, j.ForwardedFor = m.ForwardedTo, m.ForwardReason, m.NotForwarded, m.ForwardedFor
	return j
}

// recalledText is what stands for a message deleted for everyone: who
// deleted it and when.
func recalledText(m client.Message) string {
	who := m.RecalledBy
	if who == client.Me {
		who = "You"
	}
	return fmt.Sprintf("[deleted] %s deleted this message on %s", who, m.Recalled.Local().Format(fullTime))
}

// noticeMark prefixes the text of a notice (client.Message.Notice) in
// tables and listen output, so that it cannot pass for a message.
const noticeMark = "[notice] "

// displayText is a message's text as tables show it.
func displayText(m client.Message) string {
	if !m.Recalled.IsZero() {
		return recalledText(m)
	}
	text := m.Text
	if m.Subject != "" {
		text = m.Subject + ": " + text
	}
	switch {
	case m.Notice:
		return noticeMark + text
	case m.SendError != "":
		return "[not sent] " + text
	case m.Queued:
		return "[queued] " + text
	}
	return text
}

// receiptState is the READ column of "postern inbox" for a message:
// "read HH:MM" (with the date when it is not today), "delivered", or ""
// for an incoming message or one with no receipt yet.
func receiptState(m client.Message, now time.Time) string {
	switch {
	case !m.Outgoing:
		return ""
	case !m.ReadReceipt.IsZero():
		at := m.ReadReceipt.Local()
		if y, mo, d := at.Date(); y == now.Year() && mo == now.Month() && d == now.Day() {
			return "read " + at.Format("15:04")
		}
		return "read " + at.Format(tableTime)
	case !m.Delivered.IsZero():
		return "delivered"
	}
	return ""
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Format(time.RFC3339)
}

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// safe makes text from a contact safe to print on a terminal: control
// characters (escape sequences could rewrite the screen or the title) and
// bidirectional overrides (which could disguise text) are shown escaped.
// With multiline, newlines and tabs are kept.
func safe(s string, multiline bool) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case multiline && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == unicode.ReplacementChar:
			b.WriteRune(r)
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			if r < 0x100 {
				fmt.Fprintf(&b, `\x%02x`, r)
			} else {
				fmt.Fprintf(&b, `\u%04x`, r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// preview is the first line of text, made safe and cut to n runes.
func preview(text string, n int) string {
	line, _, more := strings.Cut(strings.TrimSpace(text), "\n")
	line = strings.TrimSpace(line)
	r := []rune(line)
	if len(r) > n {
		return safe(string(r[:n-1]), false) + "…"
	}
	if more {
		return safe(line, false) + " …"
	}
	return safe(line, false)
}

// plural returns "1 new message", "2 new messages".
func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}

// printList writes a listing command's items: a JSON array with --json;
// otherwise the sentence empty when there are none, else a table with
// header and one row (tab-separated cells) per item.
func printList[T, J any](c *cli, items []T, asJSON bool, toJSON func(T) J, empty, header string, row func(T) string) error {
	if asJSON {
		out := make([]J, 0, len(items))
		for _, it := range items {
			out = append(out, toJSON(it))
		}
		return writeJSON(c.stdout, out)
	}
	if len(items) == 0 {
		fmt.Fprintln(c.stdout, empty)
		return nil
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}
