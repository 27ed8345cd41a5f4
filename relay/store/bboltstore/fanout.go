package bboltstore

// Fan-out lists (SPEC.md section 10, "Fan-out lists" and "Storage
// layout"). The buckets were added within schema 4, as the blob buckets
// were within schema 1: Open creates missing buckets, and a relay that
// does not know them leaves them alone.

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

var (
	// fan-out ID (16) -> admin capability hash (32) || send capability
	// hash (32) || creator device ID (32) || u16 number of entries
	bFanouts = []byte("fanouts")
	// fan-out ID (16) || mailbox ID (16) -> capability hash (32); a
	// list's entries in ascending order of mailbox, which is the order of
	// the indexes a send reports.
	bFanoutEntries = []byte("fanout_entries")
	// creator device ID (32) || fan-out ID (16) -> empty (counts lists
	// per device)
	bFanoutOwned = []byte("fanout_owned")
)

func init() { allBuckets = append(allBuckets, bFanouts, bFanoutEntries, bFanoutOwned) }

var _ store.FanoutStore = (*Store)(nil)

const fanoutRecordSize = 32 + 32 + 32 + 2

type fanoutRecord struct {
	admin, send protocol.CapabilityHash
	creator     protocol.DeviceID
	entries     int
}

func (r fanoutRecord) encode() []byte {
	v := make([]byte, 0, fanoutRecordSize)
	v = append(v, r.admin[:]...)
	v = append(v, r.send[:]...)
	v = append(v, r.creator[:]...)
	return binary.BigEndian.AppendUint16(v, uint16(r.entries))
}

// readFanout reads a list's record: store.ErrUnknownFanout when there is
// none, a corruption error when it is not one this package writes.
func readFanout(tx *bolt.Tx, id protocol.FanoutID) (fanoutRecord, error) {
	var r fanoutRecord
	v := tx.Bucket(bFanouts).Get(id[:])
	if v == nil {
		return r, store.ErrUnknownFanout
	}
	if len(v) != fanoutRecordSize {
		return r, corrupt("fan-out record of %d bytes", len(v))
	}
	copy(r.admin[:], v[0:32])
	copy(r.send[:], v[32:64])
	copy(r.creator[:], v[64:96])
	r.entries = int(binary.BigEndian.Uint16(v[96:]))
	if r.entries > protocol.MaxFanoutEntries {
		return r, corrupt("fan-out record of %d entries", r.entries)
	}
	return r, nil
}

// sameHash compares two capability hashes in constant time.
func sameHash(a, b protocol.CapabilityHash) bool {
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// fanoutWith reads a list and checks h against its admin (admin true) or
// send capability.
func fanoutWith(tx *bolt.Tx, id protocol.FanoutID, h protocol.CapabilityHash, admin bool) (fanoutRecord, error) {
	r, err := readFanout(tx, id)
	if err != nil {
		return r, err
	}
	want := r.send
	if admin {
		want = r.admin
	}
	if !sameHash(want, h) {
		return r, store.ErrFanoutCapability
	}
	return r, nil
}

func fanoutEntryKey(id protocol.FanoutID, mb protocol.MailboxID) []byte { return cat(id[:], mb[:]) }

func (s *Store) CreateFanout(ctx context.Context, creator protocol.DeviceID, id protocol.FanoutID, admin, send protocol.CapabilityHash, entries []store.FanoutEntry) error {
	// A mailbox listed twice keeps its last entry.
	last := make(map[protocol.MailboxID]protocol.CapabilityHash, len(entries))
	for _, e := range entries {
		last[e.Mailbox] = e.Capability
	}
	if len(last) > protocol.MaxFanoutEntries {
		return store.ErrFanoutLimit
	}
	return s.update(func(tx *bolt.Tx) error {
		if tx.Bucket(bFanouts).Get(id[:]) != nil {
			return store.ErrFanoutLimit // a 128-bit random collision; never in practice
		}
		n := 0
		c := tx.Bucket(bFanoutOwned).Cursor()
		for k, _ := c.Seek(creator[:]); k != nil && hasPrefix(k, creator[:]); k, _ = c.Next() {
			n++
		}
		if n >= protocol.MaxFanoutsPerDevice {
			return store.ErrFanoutLimit
		}
		eb := tx.Bucket(bFanoutEntries)
		for mb, h := range last {
			if err := eb.Put(fanoutEntryKey(id, mb), h[:]); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bFanoutOwned).Put(cat(creator[:], id[:]), nil); err != nil {
			return err
		}
		return tx.Bucket(bFanouts).Put(id[:], fanoutRecord{admin: admin, send: send, creator: creator, entries: len(last)}.encode())
	})
}

func (s *Store) UpdateFanout(ctx context.Context, id protocol.FanoutID, admin protocol.CapabilityHash, ch store.FanoutChange) error {
	add := make(map[protocol.MailboxID]protocol.CapabilityHash, len(ch.Add))
	for _, e := range ch.Add {
		add[e.Mailbox] = e.Capability
	}
	rm := make(map[protocol.MailboxID]bool, len(ch.Remove))
	for _, mb := range ch.Remove {
		rm[mb] = true
	}
	// A removal frees space unless the change also adds.
	write := s.update
	if len(add) == 0 && ch.NewSend == nil {
		write = s.updateFreeing
	}
	return write(func(tx *bolt.Tx) error {
		r, err := fanoutWith(tx, id, admin, true)
		if err != nil {
			return err
		}
		// Count first, write after: a refusal must change nothing.
		eb := tx.Bucket(bFanoutEntries)
		n := r.entries
		for mb := range rm {
			if eb.Get(fanoutEntryKey(id, mb)) != nil {
				n--
			}
		}
		for mb := range add {
			if rm[mb] || eb.Get(fanoutEntryKey(id, mb)) == nil {
				n++
			}
		}
		if n > protocol.MaxFanoutEntries {
			return store.ErrFanoutLimit
		}
		for mb := range rm {
			if err := eb.Delete(fanoutEntryKey(id, mb)); err != nil {
				return err
			}
		}
		for mb, h := range add {
			if err := eb.Put(fanoutEntryKey(id, mb), h[:]); err != nil {
				return err
			}
		}
		r.entries = n
		if ch.NewSend != nil {
			r.send = *ch.NewSend
		}
		return tx.Bucket(bFanouts).Put(id[:], r.encode())
	})
}

func (s *Store) DeleteFanout(ctx context.Context, id protocol.FanoutID, admin protocol.CapabilityHash) error {
	return s.updateFreeing(func(tx *bolt.Tx) error {
		r, err := fanoutWith(tx, id, admin, true)
		if err != nil {
			return err
		}
		// Collect first: deleting under a cursor skips keys in bbolt.
		var keys [][]byte
		eb := tx.Bucket(bFanoutEntries)
		c := eb.Cursor()
		for k, _ := c.Seek(id[:]); k != nil && hasPrefix(k, id[:]); k, _ = c.Next() {
			keys = append(keys, append([]byte(nil), k...))
		}
		for _, k := range keys {
			if err := eb.Delete(k); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bFanoutOwned).Delete(cat(r.creator[:], id[:])); err != nil {
			return err
		}
		return tx.Bucket(bFanouts).Delete(id[:])
	})
}

func (s *Store) CheckFanout(ctx context.Context, id protocol.FanoutID, send protocol.CapabilityHash) (int, error) {
	var n int
	err := s.view(func(tx *bolt.Tx) error {
		r, err := fanoutWith(tx, id, send, false)
		n = r.entries
		return err
	})
	return n, err
}

func (s *Store) AppendFanout(ctx context.Context, id protocol.FanoutID, send protocol.CapabilityHash, e store.Envelope) (store.FanoutResult, error) {
	var res store.FanoutResult
	err := s.update(func(tx *bolt.Tx) error {
		// The committer runs this again alone if its batch fails: start
		// from nothing each time.
		res = store.FanoutResult{}
		r, err := fanoutWith(tx, id, send, false)
		if err != nil {
			return err
		}
		if r.entries*len(e.Data) > protocol.MaxFanoutSendBytes {
			return store.ErrFanoutLimit
		}
		// Every check before a write is the list's; from here on an
		// entry is refused in the result, never by returning a refusal
		// (that would commit the copies before it).
		type entry struct {
			mb protocol.MailboxID
			h  protocol.CapabilityHash
		}
		list := make([]entry, 0, r.entries)
		c := tx.Bucket(bFanoutEntries).Cursor()
		for k, v := c.Seek(id[:]); k != nil && hasPrefix(k, id[:]); k, v = c.Next() {
			if len(k) != 32 || len(v) != 32 {
				return corrupt("fan-out entry of %d+%d bytes", len(k), len(v))
			}
			list = append(list, entry{protocol.MailboxID(k[16:]), protocol.CapabilityHash(v)})
		}
		if len(list) > protocol.MaxFanoutEntries {
			return corrupt("fan-out list of %d entries", len(list))
		}
		salts := make([]byte, 8*len(list))
		rand.Read(salts)
		env := tx.Bucket(bEnv)
		// As Append: keys only grow in env and almost only in env_exp.
		env.FillPercent = 1.0
		tx.Bucket(bEnvExp).FillPercent = 1.0
		for i, en := range list {
			// The checks of Append, entry by entry.
			if err := checkCapability(tx, en.mb, en.h); err != nil {
				if !store.IsRefusal(err) {
					return err
				}
				res.Refused = append(res.Refused, store.FanoutRefusal{Index: i, Err: err})
				continue
			}
			owner, depth, _ := mailboxRecord(tx, en.mb)
			if depth >= protocol.MaxQueueDepth {
				res.Refused = append(res.Refused, store.FanoutRefusal{Index: i, Err: store.ErrQueueFull})
				continue
			}
			seq, err := env.NextSequence()
			if err != nil {
				return err
			}
			cp := e
			cp.Mailbox = en.mb
			cp.Seq = seq
			cp.ID = s.envelopeID(seq, [8]byte(salts[8*i:]))
			sk := u64(seq)
			if err := env.Put(sk, encodeEnv(cp)); err != nil {
				return err
			}
			if err := tx.Bucket(bEnvMbox).Put(cat(cp.Mailbox[:], sk), nil); err != nil {
				return err
			}
			if err := tx.Bucket(bEnvExp).Put(cat(u64(timeU64(cp.Expires)), sk), nil); err != nil {
				return err
			}
			if err := putMailbox(tx, cp.Mailbox, owner, depth+1); err != nil {
				return err
			}
			res.Stored = append(res.Stored, cp)
		}
		return nil
	})
	if err != nil {
		return store.FanoutResult{}, err
	}
	return res, nil
}
