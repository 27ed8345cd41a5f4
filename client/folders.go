package client

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/postern/postern/client/internal/store"
)

// Folders (protocol/SPEC.md section 9 "Inbox"): every message is in one
// folder. The system folders are Inbox (where incoming messages arrive),
// Sent (outgoing ones), Drafts (which holds drafts, not messages) and
// Archive; they cannot be renamed or deleted. The user makes folders of
// their own, up to MaxFolders. Folders, moves and read state are kept in
// step across the person's devices (syncops.go).

// System folder IDs.
const (
	FolderInbox   = "inbox"
	FolderSent    = "sent"
	FolderDrafts  = "drafts"
	FolderArchive = "archive"
)

// Folder limits (protocol/SPEC.md section 6 "Limits").
const (
	// MaxFolderNameSize is the largest folder name, in bytes of UTF-8.
	MaxFolderNameSize = 64
	// MaxFolders is how many folders of their own a person may have.
	MaxFolders = 256
	// DefaultListLimit and MaxListLimit bound a page of Messages.
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

var (
	// ErrFolderName: a folder name must be 1 to MaxFolderNameSize bytes
	// of UTF-8, without control characters or spaces at either end, and
	// not the name of a system folder.
	ErrFolderName = errors.New("client: invalid folder name (1 to 64 bytes, no control characters, not Inbox, Sent, Drafts or Archive)")
	// ErrFolderExists: another folder has this name (letter case aside).
	ErrFolderExists = errors.New("client: a folder with this name exists")
	// ErrNoFolder: no folder has this ID or name.
	ErrNoFolder = errors.New("client: no such folder")
	// ErrSystemFolder: Inbox, Sent, Drafts and Archive cannot be renamed
	// or deleted.
	ErrSystemFolder = errors.New("client: the folders Inbox, Sent, Drafts and Archive cannot be renamed or deleted")
	// ErrTooManyFolders: the person has MaxFolders folders of their own.
	ErrTooManyFolders = errors.New("client: too many folders (at most 256)")
	// ErrFolderNotAllowed: a message cannot go to that folder (Drafts
	// holds drafts only; Inbox holds received messages and Sent sent
	// ones).
	ErrFolderNotAllowed = errors.New("client: a message cannot be moved to this folder")
)

// Folder is a folder with its counts.
type Folder struct {
	// ID is FolderInbox, FolderSent, FolderDrafts, FolderArchive, or
	// the ID (32 hex digits) of a folder of the user's own.
	ID     string
	Name   string
	System bool
	// Messages and Unread count the folder's messages and its unread
	// incoming ones; for Drafts, Messages counts the drafts.
	Messages int
	Unread   int
	Created  time.Time // zero for system folders
}

var systemFolders = []Folder{
	{ID: FolderInbox, Name: "Inbox", System: true},
	{ID: FolderSent, Name: "Sent", System: true},
	{ID: FolderDrafts, Name: "Drafts", System: true},
	{ID: FolderArchive, Name: "Archive", System: true},
}

func isSystemFolder(id string) bool {
	return slices.ContainsFunc(systemFolders, func(f Folder) bool { return f.ID == id })
}

// checkFolderName checks a folder name (ErrFolderName).
func checkFolderName(name string) error {
	switch {
	case name == "", len(name) > MaxFolderNameSize, !utf8.ValidString(name),
		strings.ContainsFunc(name, unicode.IsControl), strings.TrimSpace(name) != name:
		return ErrFolderName
	}
	for _, f := range systemFolders {
		if strings.EqualFold(f.Name, name) {
			return ErrFolderName
		}
	}
	return nil
}

// defaultFolder is the folder of a message with none set.
func defaultFolder(m *messageRecord) string {
	if m.Outgoing {
		return FolderSent
	}
	return FolderInbox
}

// folderOf is the folder m shows in: its own if it is live (in live, by
// hex ID) or Archive, else its default one.
func folderOf(m *messageRecord, live map[string]bool) string {
	switch {
	case m.Folder == FolderArchive:
		return FolderArchive
	case m.Folder != "" && live[m.Folder]:
		return m.Folder
	}
	return defaultFolder(m)
}

// shownFolder is the folder m shows in (folderOf) found with one lookup:
// its own if that is Archive or a live folder, else its default one. A
// record can name a folder that is gone: a move from another device into
// a folder deleted before the message arrived (the waiting placement
// names it), or into one whose creation has not reached this device.
func (t *tx) shownFolder(m *messageRecord) (string, error) {
	switch m.Folder {
	case "":
		return defaultFolder(m), nil
	case FolderArchive:
		return FolderArchive, nil
	}
	id, err := hex.DecodeString(m.Folder)
	if err != nil || len(id) != store.RecordIDSize {
		return defaultFolder(m), nil
	}
	f, err := t.Folder(id)
	if err != nil {
		return "", err
	}
	if f == nil || f.Deleted {
		return defaultFolder(m), nil
	}
	return m.Folder, nil
}

// publicMessage is m as the API gives it, in the folder it shows in.
func (c *Client) publicMessage(t *tx, m *messageRecord) (Message, error) {
	pm := c.messageFromRecord(m)
	var err error
	pm.Folder, err = t.shownFolder(m)
	return pm, err
}

// unread reports whether m counts as unread: an incoming message (not a
// notice) that this person has not read on any device.
func unread(m *messageRecord) bool { return !m.Outgoing && !m.Notice && !m.Read }

// liveFolders returns the folders of the user's own that are not
// deleted, by hex ID.
func (t *tx) liveFolders() (map[string]*store.Folder, error) {
	fs, err := t.Folders()
	if err != nil {
		return nil, err
	}
	out := make(map[string]*store.Folder, len(fs))
	for _, f := range fs {
		if !f.Deleted {
			out[hex.EncodeToString(f.ID)] = f
		}
	}
	return out, nil
}

func liveSet(m map[string]*store.Folder) map[string]bool {
	s := make(map[string]bool, len(m))
	for k := range m {
		s[k] = true
	}
	return s
}

// Folders returns the system folders (Inbox, Sent, Drafts, Archive), then
// the user's own by name, each with its message and unread counts. The
// counts are kept by the store as messages change: this reads no message.
func (c *Client) Folders() ([]Folder, error) {
	var out []Folder
	err := c.st.view(func(t *tx) error {
		live, err := t.liveFolders()
		if err != nil {
			return err
		}
		set := liveSet(live)
		// The store keeps the counts by the folder records name
		// (store/counts.go); each goes to the folder it shows in.
		counts, err := t.FolderCounts()
		if err != nil {
			return err
		}
		msgs, unr := map[string]int{}, map[string]int{}
		for _, n := range counts {
			f := folderOf(&messageRecord{Folder: n.Folder, Outgoing: n.Outgoing}, set)
			msgs[f] += n.Messages
			unr[f] += n.Unread
		}
		drafts, err := t.liveDrafts()
		if err != nil {
			return err
		}
		msgs[FolderDrafts] = len(drafts)
		out = append(out, systemFolders...)
		var own []Folder
		for id, f := range live {
			own = append(own, Folder{ID: id, Name: f.Name, Created: f.Created})
		}
		slices.SortFunc(own, func(a, b Folder) int {
			return cmp.Or(cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), cmp.Compare(a.ID, b.ID))
		})
		out = append(out, own...)
		for i := range out {
			out[i].Messages, out[i].Unread = msgs[out[i].ID], unr[out[i].ID]
		}
		return nil
	})
	return out, err
}

// FolderByName returns the folder named name (letter case aside; system
// folders by their English names), or ErrNoFolder. It also accepts a
// folder's ID.
func (c *Client) FolderByName(name string) (Folder, error) {
	fs, err := c.Folders()
	if err != nil {
		return Folder{}, err
	}
	for _, f := range fs {
		if f.ID == name {
			return f, nil
		}
	}
	for _, f := range fs {
		if strings.EqualFold(f.Name, name) {
			return f, nil
		}
	}
	return Folder{}, fmt.Errorf("%w: %q", ErrNoFolder, name)
}

// parseFolderID decodes the ID of a folder of the user's own.
func parseFolderID(id string) ([]byte, error) {
	b, err := hex.DecodeString(id)
	if err != nil || len(b) != store.RecordIDSize || hex.EncodeToString(b) != id {
		if isSystemFolder(id) {
			return nil, ErrSystemFolder
		}
		return nil, fmt.Errorf("%w: %q", ErrNoFolder, id)
	}
	return b, nil
}

// nameTaken reports whether a live folder other than except has name.
func nameTaken(live map[string]*store.Folder, name string, except []byte) bool {
	for _, f := range live {
		if strings.EqualFold(f.Name, name) && !bytes.Equal(f.ID, except) {
			return true
		}
	}
	return false
}

// CreateFolder makes a folder of the user's own named name, on this
// device and on the person's other devices.
func (c *Client) CreateFolder(ctx context.Context, name string) (Folder, error) {
	if err := checkFolderName(name); err != nil {
		return Folder{}, err
	}
	op := syncOp{Kind: syncFolderSet, Name: name}
	copy(op.ID[:], store.NewID())
	now := c.now()
	err := c.st.update(func(t *tx) error {
		live, err := t.liveFolders()
		if err != nil {
			return err
		}
		switch {
		case nameTaken(live, name, nil):
			return fmt.Errorf("%w: %q", ErrFolderExists, name)
		case len(live) >= MaxFolders:
			return ErrTooManyFolders
		}
		op.MS = stampMS(now, store.Stamp{})
		if err := t.applySyncOp(&op, c.devID, now, c.log.Warn); err != nil {
			return err
		}
		if f, err := t.Folder(op.ID[:]); err != nil || f == nil {
			return cmp.Or(err, ErrTooManyFolders) // at the record limit, tombstones included
		}
		return nil
	})
	if err != nil {
		return Folder{}, err
	}
	c.syncToSiblings(ctx, []syncOp{op})
	return Folder{ID: hex.EncodeToString(op.ID[:]), Name: name, Created: time.UnixMilli(int64(op.MS)).UTC()}, nil
}

// RenameFolder renames folder id (a folder of the user's own) to name,
// on this device and on the person's other devices.
func (c *Client) RenameFolder(ctx context.Context, id, name string) error {
	fid, err := parseFolderID(id)
	if err != nil {
		return err
	}
	if err := checkFolderName(name); err != nil {
		return err
	}
	op := syncOp{Kind: syncFolderSet, Name: name}
	copy(op.ID[:], fid)
	now := c.now()
	err = c.st.update(func(t *tx) error {
		live, err := t.liveFolders()
		if err != nil {
			return err
		}
		f := live[id]
		switch {
		case f == nil:
			return fmt.Errorf("%w: %q", ErrNoFolder, id)
		case nameTaken(live, name, fid):
			return fmt.Errorf("%w: %q", ErrFolderExists, name)
		}
		op.MS = stampMS(now, f.Stamp)
		return t.applySyncOp(&op, c.devID, now, c.log.Warn)
	})
	if err != nil {
		return err
	}
	c.syncToSiblings(ctx, []syncOp{op})
	return nil
}

// DeleteFolder deletes folder id (a folder of the user's own); its
// messages go back to their default folders (Inbox or Sent). On this
// device and on the person's other devices.
func (c *Client) DeleteFolder(ctx context.Context, id string) error {
	fid, err := parseFolderID(id)
	if err != nil {
		return err
	}
	op := syncOp{Kind: syncFolderDelete}
	copy(op.ID[:], fid)
	now := c.now()
	err = c.st.update(func(t *tx) error {
		live, err := t.liveFolders()
		if err != nil {
			return err
		}
		f := live[id]
		if f == nil {
			return fmt.Errorf("%w: %q", ErrNoFolder, id)
		}
		op.MS = stampMS(now, f.Stamp)
		return t.applySyncOp(&op, c.devID, now, c.log.Warn)
	})
	if err != nil {
		return err
	}
	c.syncToSiblings(ctx, []syncOp{op})
	return nil
}

// MoveMessage puts message id in folder (a folder ID: FolderInbox for a
// received message, FolderSent for a sent one, FolderArchive, or a
// folder of the user's own), on this device and on the person's other
// devices. ErrFolderNotAllowed for Drafts, Inbox for a sent message or
// Sent for a received one; ErrNoMessage, ErrNoFolder.
func (c *Client) MoveMessage(ctx context.Context, id, folder string) error {
	op := syncOp{Kind: syncMove}
	if !messageIDBytes(id, op.Msg[:]) {
		return fmt.Errorf("%w: %q", ErrNoMessage, id)
	}
	now := c.now()
	err := c.st.update(func(t *tx) error {
		m, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if m == nil {
			return fmt.Errorf("%w: %q", ErrNoMessage, id)
		}
		switch {
		case folder == FolderArchive:
			op.To = syncToArchive
		case folder == defaultFolder(m):
			op.To = syncToDefault
		case isSystemFolder(folder):
			return ErrFolderNotAllowed
		default:
			fid, err := parseFolderID(folder)
			if err != nil {
				return err
			}
			live, err := t.liveFolders()
			if err != nil {
				return err
			}
			if live[folder] == nil {
				return fmt.Errorf("%w: %q", ErrNoFolder, folder)
			}
			op.To = syncToFolder
			copy(op.Folder[:], fid)
		}
		op.MS = stampMS(now, m.FolderStamp)
		return t.applySyncOp(&op, c.devID, now, c.log.Warn)
	})
	if err != nil {
		return err
	}
	c.syncToSiblings(ctx, []syncOp{op})
	return nil
}

// messageIDBytes decodes a message ID (16 hex digits) into b.
func messageIDBytes(id string, b []byte) bool {
	d, err := hex.DecodeString(id)
	if err != nil || len(d) != len(b) || hex.EncodeToString(d) != id {
		return false
	}
	copy(b, d)
	return true
}

// MarkRead marks the received messages ids as read by this person, on
// this device and on the person's other devices. Sent messages, notices
// and messages read already are left as they are; an ID that names no
// message is ErrNoMessage, and then nothing is marked.
func (c *Client) MarkRead(ctx context.Context, ids ...string) error {
	now := c.now()
	var ops []syncOp
	var read []string // newly read: their senders get read receipts
	var qr queueReads
	// mark stores the reads and, with withReceipts, the queue receipts of
	// the outsiders' messages among them (queuereceipts.go) in one
	// transaction: a crash leaves neither or both.
	mark := func(withReceipts bool) error {
		c.ev.order.Lock() // the receipts advance a group sender key, as a group send does
		defer c.ev.order.Unlock()
		return c.st.update(func(t *tx) error {
			ops, read = nil, nil
			for _, id := range ids {
				m, err := t.MessageByID(id)
				if err != nil {
					return err
				}
				if m == nil {
					return fmt.Errorf("%w: %q", ErrNoMessage, id)
				}
				op := syncOp{Kind: syncRead, MS: stampMS(now, store.Stamp{})}
				if !unread(m) || !messageIDBytes(id, op.Msg[:]) {
					continue
				}
				if err := t.applySyncOp(&op, c.devID, now, c.log.Warn); err != nil {
					return err
				}
				ops = append(ops, op)
				read = append(read, id)
			}
			if h := c.markReadHook.Load(); h != nil {
				if err := (*h)(); err != nil {
					return err
				}
			}
			return c.recordQueueReads(t, read, now, withReceipts, &qr)
		})
	}
	err := mark(true)
	if errors.Is(err, errQueueReceipts) {
		// The outbox full (or a receipt that could not be sealed): the
		// reads are recorded all the same, without receipts.
		c.log.Warn("queue receipts not sent", "err", err)
		err = mark(false)
	}
	if err != nil {
		return err
	}
	c.syncToSiblings(ctx, ops)
	// The read is stored and synced: a receipt that cannot be sent is
	// logged, never a failure of the read (receipts.go).
	if err := c.sendReadReceipts(ctx, read); err != nil {
		c.log.Info("could not send read receipts", "err", err)
	}
	// An outsider's messages in a team's queue: the staff learn who read
	// them, and the outsider that the team did (queuereceipts.go).
	if err := c.sendQueueReceipts(ctx, &qr); err != nil {
		c.log.Info("could not send queue receipts", "err", err)
	}
	return nil
}

// ListOptions select a page of Messages. A nil *ListOptions means all
// defaults.
type ListOptions struct {
	// Folder is the ID of the folder to list. Default "": every folder.
	Folder string
	// Limit is the most messages returned. Default (0): DefaultListLimit;
	// at most MaxListLimit.
	Limit int
	// Before is a message ID: only messages stored before it are
	// returned (the last message of the previous page). Default "": from
	// the newest.
	Before string
	// Unread returns only unread received messages. Default false.
	Unread bool
}

// Messages returns a page of stored messages, newest first: at most
// opts.Limit of opts.Folder stored before opts.Before. The next page
// starts before the last message returned; a page shorter than the limit
// is the last. ErrNoFolder for a folder that does not exist.
func (c *Client) Messages(opts *ListOptions) ([]Message, error) {
	var o ListOptions
	if opts != nil {
		o = *opts
	}
	limit := o.Limit
	if limit <= 0 {
		limit = DefaultListLimit
	}
	limit = min(limit, MaxListLimit)
	var out []Message
	err := c.st.view(func(t *tx) error {
		live, err := t.liveFolders()
		if err != nil {
			return err
		}
		set := liveSet(live)
		if o.Folder != "" && !isSystemFolder(o.Folder) && !set[o.Folder] {
			return fmt.Errorf("%w: %q", ErrNoFolder, o.Folder)
		}
		return t.MessagesBefore(o.Before, func(m *messageRecord) error {
			f := folderOf(m, set)
			if (o.Folder != "" && f != o.Folder) || (o.Unread && !unread(m)) {
				return nil
			}
			pm := c.messageFromRecord(m)
			pm.Folder = f
			out = append(out, pm)
			if len(out) == limit {
				return errStop
			}
			return nil
		})
	})
	return out, err
}

// Thread returns the conversation thread of message id, oldest first:
// the messages of its conversation linked to it by replies (either way)
// or by the same subject (leading "Re:" and "Fwd:" aside, letter case
// aside). A message with neither is a thread of its own.
func (c *Client) Thread(id string) ([]Message, error) {
	var out []Message
	err := c.st.view(func(t *tx) error {
		m, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if m == nil {
			return fmt.Errorf("%w: %q", ErrNoMessage, id)
		}
		live, err := t.liveFolders()
		if err != nil {
			return err
		}
		set := liveSet(live)
		var conv []*messageRecord
		err = t.Messages(func(r *messageRecord) error {
			if r.ID == m.ID || (len(m.Conversation) > 0 && bytes.Equal(r.Conversation, m.Conversation) && !r.Notice) {
				conv = append(conv, r)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range threadOf(conv, m.ID) {
			pm := c.messageFromRecord(r)
			pm.Folder = folderOf(r, set)
			out = append(out, pm)
		}
		return nil
	})
	return out, err
}

// threadOf returns the messages of conv (one conversation, in stored
// order) in the thread of message id, ordered by time then stored order.
func threadOf(conv []*messageRecord, id string) []*messageRecord {
	parent := make([]int, len(conv))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) { parent[find(a)] = find(b) }
	byID := make(map[string]int, len(conv))
	bySubject := map[string]int{}
	for i, r := range conv {
		byID[r.ID] = i
	}
	for i, r := range conv {
		if j, ok := byID[r.ReplyTo]; ok && r.ReplyTo != "" {
			union(i, j)
		}
		if s := threadSubject(r.Subject); s != "" {
			if j, ok := bySubject[s]; ok {
				union(i, j)
			} else {
				bySubject[s] = i
			}
		}
	}
	root := find(byID[id])
	var out []*messageRecord
	for i, r := range conv {
		if find(i) == root {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b *messageRecord) int { return a.Time.Compare(b.Time) })
	return out
}

// threadSubject is a subject as threads compare it: without leading
// "Re:", "Fwd:" and "Fw:" (any number, any case) and surrounding space,
// in lower case.
func threadSubject(s string) string {
	s = strings.TrimSpace(s)
	for {
		l := strings.ToLower(s)
		cut := false
		for _, p := range []string{"re:", "fwd:", "fw:"} {
			if strings.HasPrefix(l, p) {
				s, cut = strings.TrimSpace(s[len(p):]), true
				break
			}
		}
		if !cut {
			return strings.ToLower(s)
		}
	}
}
