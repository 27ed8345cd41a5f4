package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Own-devices sync (protocol/SPEC.md section 9 "Inbox"): a change to
// the inbox made on one device — a folder made, renamed or deleted, a
// message moved or read, a draft saved or deleted — is applied locally and
// sent as an operation in a sync content (0x17) to each of the person's
// other devices, which apply it the same way. Every operation carries a
// stamp, (time, device ID of the sender): a record takes an operation only
// if its stamp is later than the record's, so operations apply once
// whatever their order and number of arrivals, and two devices that
// received the same operations hold the same inbox. Read state only ever
// goes from unread to read.

const contentSync byte = 0x17

// Sync operation kinds.
const (
	syncFolderSet    byte = 1 // make or rename a folder of the user's own
	syncFolderDelete byte = 2
	syncMove         byte = 3 // put a message in a folder
	syncRead         byte = 4 // mark a message read
	syncDraftSave    byte = 5
	syncDraftDelete  byte = 6
	syncPatient      byte = 7 // set or clear a conversation's patient context (patient.go)
)

// Folder references of a move.
const (
	syncToDefault byte = 0 // the message's default folder (Inbox or Sent)
	syncToArchive byte = 1
	syncToFolder  byte = 2 // a folder of the user's own, by ID
)

const (
	// maxSyncOps bounds the operations of one sync content.
	maxSyncOps = 64
	// maxSyncSize bounds the encoded operations of one sync content, so
	// that it travels in one session message; a device sends more
	// contents when its operations need more.
	maxSyncSize = 60 << 10
	// maxFolderRecords and maxDraftRecords bound the folder and draft
	// records a device keeps, tombstones included: operations that would
	// make more are dropped (and logged).
	maxFolderRecords = 4 * MaxFolders
	maxDraftRecords  = 4 * MaxDrafts
	// tombstoneAge is how long a deleted folder or draft is remembered
	// at least: an operation older than that cannot arrive any more (an
	// outbox entry is given up after 7 days, the relay keeps an envelope
	// 14 days), so a tombstone older than that is dropped when the
	// records reach their limit.
	tombstoneAge = 30 * 24 * time.Hour
)

// syncOp is one operation of a sync content. Its stamp is (MS, the
// content's sender).
type syncOp struct {
	Kind byte
	MS   uint64 // the changing device's clock, Unix milliseconds

	ID  [store.RecordIDSize]byte // folder set/delete, draft save/delete
	Msg [replyIDSize]byte        // move, read: the message's ID

	Name string // folder set

	To       byte                     // move: syncToDefault, syncToArchive or syncToFolder
	Folder   [store.RecordIDSize]byte // move to syncToFolder
	HasTo    bool                     // draft save: a recipient
	Person   keys.Fingerprint         // draft save: the recipient's identity
	Subject  string                   // draft save
	HasReply bool                     // draft save
	ReplyTo  [replyIDSize]byte        // draft save
	Text     string                   // draft save

	HasPatient bool   // patient context: set (true) or cleared; Person names the conversation's person
	Patient    string // patient context: the Patient identifier, "system|value"
	Encounter  string // patient context: the Encounter identifier, or ""
}

// appendSyncOp encodes op: u8 kind || u64 ms || body (SPEC's table).
func appendSyncOp(b []byte, op *syncOp) ([]byte, error) {
	b = append(b, op.Kind)
	b = binary.BigEndian.AppendUint64(b, op.MS)
	switch op.Kind {
	case syncFolderSet:
		if checkFolderName(op.Name) != nil {
			return nil, ErrFolderName
		}
		b = append(b, op.ID[:]...)
		b = append(b, byte(len(op.Name)))
		b = append(b, op.Name...)
	case syncFolderDelete, syncDraftDelete:
		b = append(b, op.ID[:]...)
	case syncMove:
		b = append(b, op.Msg[:]...)
		b = append(b, op.To)
		switch op.To {
		case syncToDefault, syncToArchive:
		case syncToFolder:
			b = append(b, op.Folder[:]...)
		default:
			return nil, ErrDecrypt
		}
	case syncRead:
		b = append(b, op.Msg[:]...)
	case syncDraftSave:
		if !validSubject(op.Subject) || len(op.Text) > MaxTextSize || !utf8.ValidString(op.Text) {
			return nil, ErrDecrypt
		}
		b = append(b, op.ID[:]...)
		b = appendFlag(b, op.HasTo)
		if op.HasTo {
			b = append(b, op.Person[:]...)
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(op.Subject)))
		b = append(b, op.Subject...)
		b = appendFlag(b, op.HasReply)
		if op.HasReply {
			b = append(b, op.ReplyTo[:]...)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(op.Text)))
		b = append(b, op.Text...)
	case syncPatient:
		if op.HasPatient && checkPatientContext(op.Patient, op.Encounter) != nil {
			return nil, ErrPatientContext
		}
		b = append(b, op.Person[:]...)
		b = appendFlag(b, op.HasPatient)
		if op.HasPatient {
			b = binary.BigEndian.AppendUint16(b, uint16(len(op.Patient)))
			b = append(b, op.Patient...)
			b = binary.BigEndian.AppendUint16(b, uint16(len(op.Encounter)))
			b = append(b, op.Encounter...)
		}
	default:
		return nil, ErrDecrypt
	}
	return b, nil
}

func appendFlag(b []byte, f bool) []byte {
	if f {
		return append(b, 1)
	}
	return append(b, 0)
}

// readFlag reads a u8 that must be 0 or 1.
func readFlag(r *protocol.Reader, what string) (bool, bool) {
	switch r.U8(what) {
	case 0:
		return false, true
	case 1:
		return true, true
	}
	return false, false
}

// appendSyncBody encodes a sync content's body: u8(n) || n × operation,
// 1 ≤ n ≤ maxSyncOps, at most maxSyncSize bytes in all.
func appendSyncBody(b []byte, c *content) ([]byte, error) {
	if len(c.Ops) == 0 || len(c.Ops) > maxSyncOps {
		return nil, ErrDecrypt
	}
	b = append(b, byte(len(c.Ops)))
	at := len(b)
	for i := range c.Ops {
		var err error
		if b, err = appendSyncOp(b, &c.Ops[i]); err != nil {
			return nil, err
		}
	}
	if len(b)-at > maxSyncSize {
		return nil, ErrTooLong
	}
	return b, nil
}

// parseSyncBody reads what appendSyncBody writes, checking every field as
// the sender must have.
func parseSyncBody(r *protocol.Reader, c *content) bool {
	n := int(r.U8("operation count"))
	if n == 0 || n > maxSyncOps {
		return false
	}
	start := r.Len()
	c.Ops = make([]syncOp, 0, n)
	for range n {
		var op syncOp
		op.Kind = r.U8("operation")
		op.MS = r.U64("operation time")
		switch op.Kind {
		case syncFolderSet:
			r.Array(op.ID[:], "folder id")
			op.Name = string(r.Take(int(r.U8("folder name length")), "folder name"))
			if r.Err() != nil || checkFolderName(op.Name) != nil {
				return false
			}
		case syncFolderDelete, syncDraftDelete:
			r.Array(op.ID[:], "record id")
		case syncMove:
			r.Array(op.Msg[:], "message id")
			switch op.To = r.U8("folder kind"); op.To {
			case syncToDefault, syncToArchive:
			case syncToFolder:
				r.Array(op.Folder[:], "folder id")
			default:
				return false
			}
		case syncRead:
			r.Array(op.Msg[:], "message id")
		case syncDraftSave:
			r.Array(op.ID[:], "draft id")
			var ok bool
			if op.HasTo, ok = readFlag(r, "recipient flag"); !ok {
				return false
			}
			if op.HasTo {
				r.Array(op.Person[:], "recipient")
			}
			sn := int(r.U16("subject length"))
			if sn > MaxSubjectSize {
				return false
			}
			op.Subject = string(r.Take(sn, "subject"))
			if op.HasReply, ok = readFlag(r, "reply-to flag"); !ok {
				return false
			}
			if op.HasReply {
				r.Array(op.ReplyTo[:], "reply-to")
			}
			tn := r.U32("text length")
			if tn > MaxTextSize {
				return false
			}
			op.Text = string(r.Take(int(tn), "text"))
			if r.Err() != nil || !validSubject(op.Subject) || !utf8.ValidString(op.Text) {
				return false
			}
		case syncPatient:
			r.Array(op.Person[:], "person")
			var ok bool
			if op.HasPatient, ok = readFlag(r, "patient flag"); !ok {
				return false
			}
			if op.HasPatient {
				op.Patient = string(r.Take(int(r.U16("patient length")), "patient"))
				op.Encounter = string(r.Take(int(r.U16("encounter length")), "encounter"))
				if r.Err() != nil || checkPatientContext(op.Patient, op.Encounter) != nil {
					return false
				}
			}
		default:
			return false
		}
		if r.Err() != nil {
			return false
		}
		c.Ops = append(c.Ops, op)
	}
	return r.Err() == nil && start-r.Len() <= maxSyncSize
}

// syncToSiblings sends ops to each of this person's other devices, in as
// few sync contents as their sizes allow. Failures are logged, not
// returned: the change is made on this device, and a sibling that cannot
// be reached now gets what waits in the outbox later.
func (c *Client) syncToSiblings(ctx context.Context, ops []syncOp) {
	if len(ops) == 0 {
		return
	}
	var sibs []*contactRecord
	err := c.st.view(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		sibs, err = c.targets(t, self)
		return err
	})
	if err != nil {
		c.log.Warn("could not send an inbox change to this person's other devices", "err", err)
		return
	}
	for _, chunk := range chunkSyncOps(ops) {
		for _, s := range sibs {
			if err := c.sendSyncOps(ctx, s, chunk); err != nil {
				c.log.Warn("could not send an inbox change to another device of this person", "err", err)
			}
		}
	}
}

// sendSyncOps sends ops to this person's device s, in as few sync
// contents as their sizes allow; queued in the outbox (the relay out of
// reach) counts as sent.
func (c *Client) sendSyncOps(ctx context.Context, s *contactRecord, ops []syncOp) error {
	for _, chunk := range chunkSyncOps(ops) {
		ct := &content{Type: contentSync, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Ops: chunk}
		copy(ct.MsgID[:], randomID(msgIDSize))
		if err := c.sendSession(ctx, s, ct); err != nil && !errors.Is(err, ErrQueued) {
			return err
		}
	}
	return nil
}

// chunkSyncOps splits ops into runs of at most maxSyncOps operations and
// maxSyncSize bytes.
func chunkSyncOps(ops []syncOp) [][]syncOp {
	var out [][]syncOp
	var cur []syncOp
	size := 0
	for i := range ops {
		b, err := appendSyncOp(nil, &ops[i])
		if err != nil {
			continue // not sendable; checked before it was applied
		}
		if len(cur) == maxSyncOps || (len(cur) > 0 && size+len(b) > maxSyncSize) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, ops[i])
		size += len(b)
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// receiveSync applies the operations of a sync content from a sibling
// (from). A sync content from anyone but this person's devices is
// dropped.
func (c *Client) receiveSync(t *tx, from *contactRecord, ct *content, now time.Time) (error, error) {
	if !from.Person.Self {
		return ErrUnknownSender, nil
	}
	for i := range ct.Ops {
		if err := t.applySyncOp(&ct.Ops[i], ct.Sender, now, c.log.Warn); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

// stampMS is the time of a change this device makes to a record whose
// stamp is prev: now, or just after prev if this device's clock is behind
// it (a change must win over the one it replaces).
func stampMS(now time.Time, prev store.Stamp) uint64 {
	return max(uint64(max(now.UnixMilli(), 1)), prev.MS+1)
}

// applySyncOp applies op, stamped (op.MS, dev), in t: the one way every
// inbox change is made, on the device that makes it and on the others.
// An operation older than the record's stamp changes nothing; one that
// would exceed a record limit is dropped with a warning.
func (t *tx) applySyncOp(op *syncOp, dev keys.Fingerprint, now time.Time, warn func(string, ...any)) error {
	stamp := store.Stamp{MS: op.MS, Device: bytes.Clone(dev[:])}
	at := time.UnixMilli(int64(min(op.MS, 1<<62))).UTC()
	switch op.Kind {
	case syncFolderSet, syncFolderDelete:
		f, err := t.Folder(op.ID[:])
		if err != nil {
			return err
		}
		if f == nil {
			n, err := t.roomFor(store.BucketFolders, maxFolderRecords, now)
			if err != nil {
				return err
			}
			if n >= maxFolderRecords {
				warn("dropped a folder change from another device of this person: too many folders")
				return nil
			}
			f = &store.Folder{ID: bytes.Clone(op.ID[:]), Created: at}
		} else if !stamp.After(f.Stamp) {
			return t.earlierFolder(f, at)
		}
		f.Created = minTime(f.Created, at)
		f.Stamp = stamp
		if op.Kind == syncFolderSet {
			f.Name, f.Deleted = op.Name, false
			return t.PutFolder(f)
		}
		f.Name, f.Deleted = "", true
		if err := t.PutFolder(f); err != nil {
			return err
		}
		return t.emptyFolder(hex.EncodeToString(op.ID[:]))
	case syncMove:
		folder, err := t.moveTarget(op)
		if err != nil {
			return err
		}
		id := hex.EncodeToString(op.Msg[:])
		m, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if m == nil {
			return t.place(id, now, warn, func(p *store.Placement) {
				if stamp.After(p.FolderStamp) {
					p.Folder, p.FolderStamp = folder, stamp
				}
			})
		}
		if !stamp.After(m.FolderStamp) {
			return nil
		}
		_, err = t.UpdateMessage(id, func(r *messageRecord) { r.Folder, r.FolderStamp = folder, stamp })
		return err
	case syncRead:
		id := hex.EncodeToString(op.Msg[:])
		m, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if m == nil {
			return t.place(id, now, warn, func(p *store.Placement) {
				if !p.Read || at.Before(p.ReadAt) {
					p.Read, p.ReadAt = true, at
				}
			})
		}
		if m.Outgoing || m.Notice || (m.Read && !at.Before(m.ReadAt)) {
			return nil
		}
		_, err = t.UpdateMessage(id, func(r *messageRecord) { r.Read, r.ReadAt = true, at })
		return err
	case syncDraftSave, syncDraftDelete:
		d, err := t.Draft(op.ID[:])
		if err != nil {
			return err
		}
		if d == nil {
			n, err := t.roomFor(store.BucketDrafts, maxDraftRecords, now)
			if err != nil {
				return err
			}
			if n >= maxDraftRecords {
				warn("dropped a draft from another device of this person: too many drafts")
				return nil
			}
			d = &store.Draft{ID: bytes.Clone(op.ID[:]), Created: at}
		} else if !stamp.After(d.Stamp) {
			if at.Before(d.Created) {
				d.Created = at
				return t.PutDraft(d)
			}
			return nil
		}
		// A tombstone keeps nothing of what the draft said.
		*d = store.Draft{ID: d.ID, Created: minTime(d.Created, at), Updated: at, Stamp: stamp, Deleted: op.Kind == syncDraftDelete}
		if op.Kind == syncDraftSave {
			d.Subject, d.Text = op.Subject, op.Text
			if op.HasTo {
				d.To = bytes.Clone(op.Person[:])
			}
			if op.HasReply {
				d.ReplyTo = hex.EncodeToString(op.ReplyTo[:])
			}
		}
		return t.PutDraft(d)
	case syncPatient:
		return t.applyPatient(op, stamp, now, warn)
	}
	return nil // unreachable: the parser knows every kind
}

// A record's creation time is the earliest time of the operations on it
// (a stale one too), so that devices agree on it whatever their order.

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// earlierFolder moves f's creation time back to at, if at is earlier.
func (t *tx) earlierFolder(f *store.Folder, at time.Time) error {
	if !at.Before(f.Created) {
		return nil
	}
	f.Created = at
	return t.PutFolder(f)
}

// moveTarget is the store's folder of a move: "" (default), "archive", or
// a folder ID in hex; a move into a deleted folder is a move to the
// default folder, as the folder's deletion did to its messages.
func (t *tx) moveTarget(op *syncOp) (string, error) {
	switch op.To {
	case syncToArchive:
		return FolderArchive, nil
	case syncToFolder:
		f, err := t.Folder(op.Folder[:])
		if err != nil || (f != nil && f.Deleted) {
			return "", err
		}
		return hex.EncodeToString(op.Folder[:]), nil
	}
	return "", nil
}

// place updates, with fn, the placement waiting for message id.
func (t *tx) place(id string, now time.Time, warn func(string, ...any), fn func(*store.Placement)) error {
	p, err := t.Placement(id)
	if err != nil {
		return err
	}
	if p == nil {
		p = &store.Placement{Message: id, Added: now}
	}
	fn(p)
	ok, err := t.PutPlacement(p)
	if err == nil && !ok {
		warn("dropped an inbox change from another device of this person for a message not here yet: too many wait")
	}
	return err
}

// emptyFolder puts every message of folder (hex ID) back in its default
// folder (keeping the stamp of its move: a later move still wins).
func (t *tx) emptyFolder(folder string) error {
	var ids []string
	err := t.Messages(func(m *messageRecord) error {
		if m.Folder == folder {
			ids = append(ids, m.ID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, id := range ids {
		if _, err := t.UpdateMessage(id, func(r *messageRecord) { r.Folder = "" }); err != nil {
			return err
		}
	}
	return nil
}

// roomFor returns the number of folder or draft records (bucket), after
// dropping the tombstones older than tombstoneAge if there are limit.
func (t *tx) roomFor(bucket []byte, limit int, now time.Time) (int, error) {
	n := t.Count(bucket)
	if n < limit {
		return n, nil
	}
	old := uint64(max(now.Add(-tombstoneAge).UnixMilli(), 0))
	var drop [][]byte
	if bytes.Equal(bucket, store.BucketFolders) {
		fs, err := t.Folders()
		if err != nil {
			return 0, err
		}
		for _, f := range fs {
			if f.Deleted && f.Stamp.MS < old {
				drop = append(drop, f.ID)
			}
		}
	} else {
		ds, err := t.Drafts()
		if err != nil {
			return 0, err
		}
		for _, d := range ds {
			if d.Deleted && d.Stamp.MS < old {
				drop = append(drop, d.ID)
			}
		}
	}
	for _, id := range drop {
		if err := t.Delete(bucket, id); err != nil {
			return 0, err
		}
	}
	return n - len(drop), nil
}
