package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/postern/postern/client"
	"github.com/postern/postern/protocol"
)

var saveCmd = &command{
	name:  "save",
	usage: "save ID [--out DIR] [--force]",
	help: `Download the files attached to the message ID (an unambiguous prefix will
do) into DIR (default: the current directory), under the names the sender
gave them, made safe: no directories, no hidden files, no characters that
are special to a terminal or to Windows. Each file is verified against the
message as it arrives and appears under its name only when it is complete
and intact; an interrupted download resumes, and a file that fails to
verify is removed. Existing files are not overwritten unless --force is
given. Progress is shown on standard error.`,
	run: runSave,
}

func runSave(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	out := fs.String("out", ".", "")
	force := fs.Bool("force", false, "")
	pos, err := parseN(fs, cmd, args, "ID")
	if err != nil {
		return err
	}
	if fi, err := os.Stat(*out); errors.Is(err, os.ErrNotExist) {
		return &cliError{msg: fmt.Sprintf("%s does not exist", *out), hint: "create it first, or give another with --out DIR", err: err}
	} else if err != nil || !fi.IsDir() {
		return &cliError{msg: fmt.Sprintf("%s is not a directory", *out), hint: "give a directory with --out DIR", err: err}
	}
	// Saving needs the relay's blob URLs only, not the authenticated
	// connection: nothing is received behind a running 'postern listen'.
	cl, err := c.open()
	if err != nil {
		return err
	}
	defer cl.Close()
	m, err := findMessage(cl, pos[0])
	if err != nil {
		return err
	}
	if len(m.Attachments) == 0 {
		return &cliError{msg: fmt.Sprintf("message %s has no attached files", m.ID), hint: "see it with: postern read " + m.ID, err: client.ErrNoAttachments}
	}
	pr := c.newProgress()
	saved, err := cl.SaveAttachments(ctx, m.ID, *out, &client.SaveOptions{Force: *force, Progress: pr.update})
	pr.end()
	for i, p := range saved {
		fmt.Fprintf(c.stdout, "Saved %s (%s).\n", safe(p, false), formatSize(m.Attachments[i].Size))
	}
	if err == nil {
		return nil
	}
	var exists interface{ Path() string }
	switch {
	case errors.As(err, &exists):
		return &cliError{
			msg:  fmt.Sprintf("%s exists; nothing was saved over it", safe(exists.Path(), false)),
			hint: "overwrite it with --force, or save elsewhere with --out DIR",
			err:  err,
		}
	case diskFull(err):
		return &cliError{
			msg:  fmt.Sprintf("the disk is full: the file could not be saved in %s; nothing incomplete was left", *out),
			hint: "free some space, or save elsewhere with --out DIR",
			err:  err,
		}
	case errors.Is(err, client.ErrStore):
		return &cliError{msg: strip(err), hint: "check the disk and the permissions of " + *out, err: err}
	case errors.Is(err, client.ErrAttachmentCorrupt):
		return &cliError{msg: strip(err), hint: "the relay's copy is damaged or was replaced; ask the sender to send the file again", err: err}
	case protocol.IsCode(err, protocol.CodeUnknownBlob):
		return &cliError{msg: strip(err), hint: "the relay keeps files for 14 days; ask the sender to send it again", err: err}
	}
	return err
}

// errText is an OS error without the operation and path it repeats.
func errText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// attachmentSummary is what the inbox table adds to a message's text.
func attachmentSummary(m client.Message) string {
	if len(m.Attachments) == 0 {
		return ""
	}
	var b strings.Builder
	if m.Text != "" {
		b.WriteString(" ")
	}
	b.WriteString("[")
	for i, a := range m.Attachments {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", a.Name, formatSize(a.Size))
	}
	b.WriteString("]")
	return b.String()
}

// formatSize writes a byte count for people: 512 B, 12.5 KiB, 40.0 MiB.
func formatSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB", "TiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}

// Progress display: a bar redrawn in place on a terminal, plain lines
// ("photo.jpg: 12.5 MiB of 40.0 MiB") otherwise, both throttled.
const (
	barRedraw     = 100 * time.Millisecond
	plainInterval = 2 * time.Second
	barWidth      = 24
)

type progress struct {
	w   io.Writer
	tty bool
	now func() time.Time

	file     string
	start    time.Time
	last     time.Time // last output
	finished bool      // the current file's last line is out
	drawn    bool      // a bar is on the line (tty)
}

// newProgress writes to standard error: a bar redrawn in place when both
// standard output and standard error are terminals (a person watching),
// plain lines otherwise (output piped or redirected, as in scripts and
// logs).
func (c *cli) newProgress() *progress {
	return &progress{w: c.stderr, now: time.Now, tty: isTerminal(c.stdout) && isTerminal(c.stderr)}
}

func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (p *progress) update(pr client.Progress) {
	now := p.now()
	if pr.File != p.file {
		p.endLine()
		p.file, p.start, p.last, p.finished = pr.File, now, time.Time{}, false
	}
	done := pr.Done >= pr.Total
	if p.finished {
		return
	}
	interval := plainInterval
	if p.tty {
		interval = barRedraw
	}
	if !done && now.Sub(p.last) < interval {
		return
	}
	p.last, p.finished = now, done
	name := safe(pr.File, false)
	if !p.tty {
		fmt.Fprintf(p.w, "%s: %s of %s\n", name, formatSize(pr.Done), formatSize(pr.Total))
		return
	}
	frac := 1.0
	if pr.Total > 0 {
		frac = float64(pr.Done) / float64(pr.Total)
	}
	fill := int(frac * barWidth)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", barWidth-fill)
	line := fmt.Sprintf("%s [%s] %s of %s", name, bar, formatSize(pr.Done), formatSize(pr.Total))
	if el := now.Sub(p.start).Seconds(); el > 0.2 && pr.Done > 0 {
		rate := float64(pr.Done) / el
		line += fmt.Sprintf("  %s/s", formatSize(int64(rate)))
		if !done {
			left := time.Duration(float64(pr.Total-pr.Done) / rate * float64(time.Second)).Round(time.Second)
			line += fmt.Sprintf("  %s left", left)
		}
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K", line)
	p.drawn = true
}

func (p *progress) endLine() {
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

// end finishes the display (a newline after a bar).
func (p *progress) end() { p.endLine() }
