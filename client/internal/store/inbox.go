package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// The inbox (schema 4, protocol/SPEC.md section 9 "Local state"): folders
// of the user's own and drafts, each keyed by a random 16-byte ID; a
// message's folder and read state live in its own record. Changes made on
// one device reach the person's other devices (the client's sync content),
// so folder and draft records and a message's placement carry the Stamp of
// their last change: the later stamp wins on every device, whatever order
// the changes arrive in. A deleted folder or draft stays as a tombstone, so
// that an older change arriving late does not bring it back.

// Stamp orders the changes to one record across a person's devices: the
// later time wins, then the larger device ID (two devices never share one).
type Stamp struct {
	MS     uint64 `json:"ms"`     // the changing device's clock, Unix milliseconds
	Device []byte `json:"device"` // the changing device's ID
}

// After reports whether s is a later change than o.
func (s Stamp) After(o Stamp) bool {
	if s.MS != o.MS {
		return s.MS > o.MS
	}
	return bytes.Compare(s.Device, o.Device) > 0
}

// IsZero reports whether s is no change at all.
func (s Stamp) IsZero() bool { return s.MS == 0 && len(s.Device) == 0 }

// Folder is a folder of the user's own (the system folders Inbox, Sent,
// Drafts and Archive have no record).
type Folder struct {
	V       int       `json:"v"`
	ID      []byte    `json:"id"` // random, the record key
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Stamp   Stamp     `json:"stamp"`
	Deleted bool      `json:"deleted,omitempty"` // a tombstone
}

// Draft is a message being written, kept as it is written.
type Draft struct {
	V  int    `json:"v"`
	ID []byte `json:"id"` // random, the record key
	// To is the identity fingerprint of the person it is to (names are
	// each device's own), empty if none was chosen yet.
	To      []byte    `json:"to,omitempty"`
	Subject string    `json:"subject,omitempty"`
	Text    string    `json:"text,omitempty"`
	ReplyTo string    `json:"reply_to,omitempty"` // a message ID
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
	Stamp   Stamp     `json:"stamp"`
	Deleted bool      `json:"deleted,omitempty"` // a tombstone
}

// Placement is a message's folder and read state received from another
// device of this person before the message itself: it is applied when
// the message is stored (AddMessage).
type Placement struct {
	V           int       `json:"v"`
	Message     string    `json:"message"`
	Folder      string    `json:"folder,omitempty"`
	FolderStamp Stamp     `json:"folder_stamp"`
	Read        bool      `json:"read,omitempty"`
	ReadAt      time.Time `json:"read_at,omitzero"`
	Added       time.Time `json:"added"`
}

// MaxPlacements bounds the placements waiting for their message: one
// for a message that never comes would otherwise stay for ever. When they
// are full, those waiting longer than PlacementAge go (a message comes
// within the relay's retention, or not at all).
const (
	MaxPlacements = 4096
	PlacementAge  = 30 * 24 * time.Hour
)

// Apply applies p's folder (if its stamp is later) and read state to m.
func (p *Placement) Apply(m *Message) {
	if !p.FolderStamp.IsZero() && p.FolderStamp.After(m.FolderStamp) {
		m.Folder, m.FolderStamp = p.Folder, p.FolderStamp
	}
	if p.Read && !m.Outgoing {
		if !m.Read || p.ReadAt.Before(m.ReadAt) {
			m.ReadAt = p.ReadAt
		}
		m.Read = true
	}
}

// ---- folders ----

// Folder returns folder record id (a tombstone too), or nil if there is
// none.
func (t *Tx) Folder(id []byte) (*Folder, error) {
	var f Folder
	ok, err := t.Get(BucketFolders, id, &f)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(f.ID, id) {
		return nil, ErrCorrupt
	}
	return &f, nil
}

// PutFolder stores f under its ID.
func (t *Tx) PutFolder(f *Folder) error {
	if len(f.ID) != RecordIDSize {
		return fmt.Errorf("store: folder record ID of %d bytes", len(f.ID))
	}
	f.V = 1
	return t.Put(BucketFolders, f.ID, f)
}

// Folders returns every folder record, tombstones included, in key order.
func (t *Tx) Folders() ([]*Folder, error) {
	var out []*Folder
	err := t.Each(BucketFolders, func(k, v []byte) error {
		f := new(Folder)
		if err := Unmarshal(v, f); err != nil {
			return err
		}
		if !bytes.Equal(f.ID, k) {
			return ErrCorrupt
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// ---- drafts ----

// Draft returns draft record id (a tombstone too), or nil if there is
// none.
func (t *Tx) Draft(id []byte) (*Draft, error) {
	var d Draft
	ok, err := t.Get(BucketDrafts, id, &d)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(d.ID, id) {
		return nil, ErrCorrupt
	}
	return &d, nil
}

// PutDraft stores d under its ID.
func (t *Tx) PutDraft(d *Draft) error {
	if len(d.ID) != RecordIDSize {
		return fmt.Errorf("store: draft record ID of %d bytes", len(d.ID))
	}
	d.V = 1
	return t.Put(BucketDrafts, d.ID, d)
}

// Drafts returns every draft record, tombstones included, in key order.
func (t *Tx) Drafts() ([]*Draft, error) {
	var out []*Draft
	err := t.Each(BucketDrafts, func(k, v []byte) error {
		d := new(Draft)
		if err := Unmarshal(v, d); err != nil {
			return err
		}
		if !bytes.Equal(d.ID, k) {
			return ErrCorrupt
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// ---- placements ----

// Placement returns the placement waiting for message id, or nil.
func (t *Tx) Placement(id string) (*Placement, error) {
	var p Placement
	ok, err := t.Get(BucketPlacements, t.Index(BucketPlacements, []byte(id)), &p)
	if err != nil || !ok {
		return nil, err
	}
	if p.Message != id {
		return nil, ErrCorrupt
	}
	return &p, nil
}

// PutPlacement stores p for its message, which is not stored yet. When
// MaxPlacements wait already, those added PlacementAge before p.Added go;
// if none does, it reports false and stores nothing.
func (t *Tx) PutPlacement(p *Placement) (bool, error) {
	key := t.Index(BucketPlacements, []byte(p.Message))
	if !t.Has(BucketPlacements, key) && t.Count(BucketPlacements) >= MaxPlacements {
		var old [][]byte
		err := t.Each(BucketPlacements, func(k, v []byte) error {
			var q Placement
			if err := Unmarshal(v, &q); err != nil {
				return err
			}
			if q.Added.Before(p.Added.Add(-PlacementAge)) {
				old = append(old, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return false, err
		}
		if len(old) == 0 {
			return false, nil
		}
		for _, k := range old {
			if err := t.Delete(BucketPlacements, k); err != nil {
				return false, err
			}
		}
	}
	p.V = 1
	return true, t.Put(BucketPlacements, key, p)
}

// Count is the number of keys of bucket (this transaction's writes
// included).
func (t *Tx) Count(bucket []byte) int {
	n := 0
	c := t.bt.Bucket(bucket).Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}

// ---- messages by page ----

// MessagesBefore calls fn with the stored messages from the newest to the
// oldest, starting after message before (from the newest if before is
// ""; nothing if there is no message before); fn returning ErrStop ends
// the walk.
func (t *Tx) MessagesBefore(before string, fn func(*Message) error) error {
	c := t.bt.Bucket(BucketMessages).Cursor()
	var k, v []byte
	if before == "" {
		k, v = c.Last()
	} else {
		key, err := t.GetRaw(BucketMessageIDs, t.Index(BucketMessageIDs, []byte(before)))
		if err != nil || key == nil {
			return err
		}
		if len(key) != 8 {
			return ErrCorrupt
		}
		if k, _ = c.Seek(key); k == nil || !bytes.Equal(k, key) {
			return fmt.Errorf("store: the message index names a message that is gone: %w", ErrCorrupt)
		}
		k, v = c.Prev()
	}
	for ; k != nil; k, v = c.Prev() {
		p, err := t.decrypt(BucketMessages, k, v)
		if err != nil {
			return err
		}
		m := new(Message)
		if err := Unmarshal(p, m); err != nil {
			return err
		}
		if err := fn(m); err != nil {
			if err == ErrStop {
				return nil
			}
			return err
		}
	}
	return nil
}

// messageKey is the messages key of sequence seq.
func messageKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }
