package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"slices"
	"time"

	"github.com/postern/postern/keys"
)

// The inbox snapshot (protocol/SPEC.md section 9 "Inbox"): a newly linked
// device learns of folders, drafts and moves made from then on by the
// own-devices sync, and of those made before by a snapshot that the
// device that linked it sends it once, as soon as they have a session
// (the new device's introduction): the same sync operations (content
// 0x17), one per live folder (folder set), per live draft (draft save)
// and, when the history goes with the link, per message not in its
// default folder (move; the messages come with the history, and a move
// that comes first waits for its message). Each carries the time of the
// record's last change, so a change made on another device meanwhile
// still wins where it is later.

// inboxSnapshotOps are the operations of the inbox snapshot; moves only
// if withMoves.
func (t *tx) inboxSnapshotOps(withMoves bool) ([]syncOp, error) {
	var ops []syncOp
	live, err := t.liveFolders()
	if err != nil {
		return nil, err
	}
	for _, f := range live {
		op := syncOp{Kind: syncFolderSet, MS: f.Stamp.MS, Name: f.Name}
		copy(op.ID[:], f.ID)
		ops = append(ops, op)
	}
	drafts, err := t.liveDrafts()
	if err != nil {
		return nil, err
	}
	for _, d := range drafts {
		op := syncOp{Kind: syncDraftSave, MS: d.Stamp.MS, Subject: d.Subject, Text: d.Text}
		copy(op.ID[:], d.ID)
		if len(d.To) == len(op.Person) {
			op.HasTo = true
			copy(op.Person[:], d.To)
		}
		if d.ReplyTo != "" && messageIDBytes(d.ReplyTo, op.ReplyTo[:]) {
			op.HasReply = true
		}
		ops = append(ops, op)
	}
	if !withMoves {
		return ops, nil
	}
	set := liveSet(live)
	err = t.Messages(func(m *messageRecord) error {
		op := syncOp{Kind: syncMove, MS: m.FolderStamp.MS}
		switch f := folderOf(m, set); {
		case f == FolderArchive:
			op.To = syncToArchive
		case f == defaultFolder(m):
			return nil
		default:
			id, err := hex.DecodeString(f)
			if err != nil || len(id) != len(op.Folder) {
				return nil
			}
			op.To = syncToFolder
			copy(op.Folder[:], id)
		}
		if !messageIDBytes(m.ID, op.Msg[:]) {
			return nil
		}
		ops = append(ops, op)
		return nil
	})
	return ops, err
}

// pendingInboxSnapshots are the devices linked by this one that have
// yet to be sent their inbox snapshot: the snapshot goes over a session,
// and a device just linked has none yet (no prekeys published) until it
// introduces itself. Kept in the store, so that a restart does not lose
// them; tried after every received envelope and at each connection, and
// given up after inboxSnapshotAge (the sync of later changes goes on).
type pendingInboxSnapshots struct {
	V       int                  `json:"v"`
	Devices []pendingInboxDevice `json:"devices"`
}

type pendingInboxDevice struct {
	Device  []byte    `json:"device"`
	History bool      `json:"history,omitempty"`
	Added   time.Time `json:"added"`
}

var keyInboxSnapshots = []byte("inbox-snapshots")

const (
	inboxSnapshotAge   = 14 * 24 * time.Hour
	inboxSnapshotRetry = 30 * time.Second // after a failed send
)

func (t *tx) pendingInbox() (*pendingInboxSnapshots, error) {
	var p pendingInboxSnapshots
	if _, err := t.Get(bucketMeta, t.Index(bucketMeta, keyInboxSnapshots), &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func (t *tx) putPendingInbox(p *pendingInboxSnapshots) error {
	k := t.Index(bucketMeta, keyInboxSnapshots)
	if len(p.Devices) == 0 {
		return t.Delete(bucketMeta, k)
	}
	p.V = 1
	return t.Put(bucketMeta, k, p)
}

// queueInboxSnapshot records that device dev, just linked, is to get the
// inbox snapshot (with the moves if history).
func (c *Client) queueInboxSnapshot(dev keys.Fingerprint, history bool) {
	err := c.st.update(func(t *tx) error {
		p, err := t.pendingInbox()
		if err != nil {
			return err
		}
		p.Devices = append(p.Devices, pendingInboxDevice{Device: bytes.Clone(dev[:]), History: history, Added: c.now()})
		return t.putPendingInbox(p)
	})
	if err != nil {
		c.log.Warn("could not keep the folders and drafts to send to the new device", "err", err)
		return
	}
	// Not sent now: the device has no prekeys before it introduces
	// itself, which comes as a received envelope (afterReceive).
	c.noInboxSnapshots.Store(false)
	c.inboxSnapshotRetry.Store(0)
}

// flushInboxSnapshots sends each pending inbox snapshot it can: to a
// device that has a session with this one (or prekeys to start one).
// One that cannot be sent yet stays; failures are logged.
func (c *Client) flushInboxSnapshots(ctx context.Context) {
	if c.noInboxSnapshots.Load() || c.now().UnixMilli() < c.inboxSnapshotRetry.Load() {
		return
	}
	type job struct {
		dev []byte
		to  *contactRecord
		ops []syncOp
	}
	var jobs []job
	var drop [][]byte
	now := c.now()
	err := c.st.view(func(t *tx) error {
		p, err := t.pendingInbox()
		if err != nil {
			return err
		}
		if len(p.Devices) == 0 {
			c.noInboxSnapshots.Store(true)
			return nil
		}
		self, err := t.self()
		if err != nil {
			return err
		}
		sibs, err := c.targets(t, self)
		if err != nil {
			return err
		}
		for _, d := range p.Devices {
			i := slices.IndexFunc(sibs, func(s *contactRecord) bool { return bytes.Equal(s.Device.DeviceID, d.Device) })
			if i < 0 || now.Sub(d.Added) > inboxSnapshotAge {
				drop = append(drop, d.Device) // revoked, or waited too long
				continue
			}
			ops, err := t.inboxSnapshotOps(d.History)
			if err != nil {
				return err
			}
			jobs = append(jobs, job{dev: d.Device, to: sibs[i], ops: ops})
		}
		return nil
	})
	if err != nil {
		c.log.Warn("could not read the folders and drafts to send to a new device", "err", err)
		return
	}
	for _, j := range jobs {
		if err := c.sendSyncOps(ctx, j.to, j.ops); err != nil {
			// Most likely not introduced yet (no prekeys): not again for
			// a while, rather than after every envelope.
			c.log.Debug("the folders and drafts wait for the new device", "device", fpOf(j.dev).Short(), "err", err)
			c.inboxSnapshotRetry.Store(now.Add(inboxSnapshotRetry).UnixMilli())
			continue
		}
		drop = append(drop, j.dev)
	}
	if len(drop) == 0 {
		return
	}
	err = c.st.update(func(t *tx) error {
		p, err := t.pendingInbox()
		if err != nil {
			return err
		}
		p.Devices = slices.DeleteFunc(p.Devices, func(d pendingInboxDevice) bool {
			return slices.ContainsFunc(drop, func(id []byte) bool { return bytes.Equal(id, d.Device) })
		})
		return t.putPendingInbox(p)
	})
	if err != nil {
		c.log.Warn("could not note the folders and drafts sent to a new device", "err", err)
	}
}
