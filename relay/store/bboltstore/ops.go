package bboltstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// ---- devices and invites ----

// device value (schema 2): flags(1: bit 0 = revoked, bit 1 = suspended) ||
// enrolled day (u32, days since the Unix epoch) || account label length
// (u8, 0 = none) || account label || public key
const deviceHeader = 1 + 4 + 1

func encodeDevice(d store.Device) []byte {
	var flags byte
	if d.Revoked {
		flags |= 1
	}
	if d.Suspended {
		flags |= 2
	}
	v := make([]byte, 0, deviceHeader+len(d.Account)+len(d.PublicKey))
	v = append(v, flags)
	v = binary.BigEndian.AppendUint32(v, uint32(timeU64(d.Enrolled)/86400))
	v = append(v, byte(len(d.Account)))
	v = append(v, d.Account...)
	return append(v, d.PublicKey...)
}

func decodeDevice(id []byte, v []byte) (store.Device, bool) {
	// Only bits 0 (revoked) and 1 (suspended) are defined: other bits
	// mean a damaged record. So does a label this package cannot write.
	if len(v) < deviceHeader || v[0]&^3 != 0 || len(v) < deviceHeader+int(v[5]) {
		return store.Device{}, false
	}
	label := string(v[deviceHeader : deviceHeader+int(v[5])])
	if label != "" && store.CheckAccountLabel(label) != nil {
		return store.Device{}, false
	}
	var d store.Device
	copy(d.ID[:], id)
	d.Revoked = v[0]&1 != 0
	d.Suspended = v[0]&2 != 0
	d.Enrolled = unixTime(uint64(binary.BigEndian.Uint32(v[1:5])) * 86400)
	d.Account = label
	d.PublicKey = append([]byte(nil), v[deviceHeader+len(label):]...)
	return d, true
}

// invite value (schema 2): expires (u64 Unix seconds) || used (u8: 0 or 1)
// || account label length (u8, 0 = none) || account label
const inviteHeader = 8 + 1 + 1

type invite struct {
	expires uint64
	used    bool
	account string
}

func encodeInvite(i invite) []byte {
	v := make([]byte, 0, inviteHeader+len(i.account))
	v = binary.BigEndian.AppendUint64(v, i.expires)
	var used byte
	if i.used {
		used = 1
	}
	v = append(v, used, byte(len(i.account)))
	return append(v, i.account...)
}

func decodeInvite(v []byte) (invite, bool) {
	if len(v) < inviteHeader || v[8] > 1 || len(v) != inviteHeader+int(v[9]) {
		return invite{}, false
	}
	i := invite{expires: binary.BigEndian.Uint64(v[:8]), used: v[8] == 1, account: string(v[inviteHeader:])}
	if i.account != "" && store.CheckAccountLabel(i.account) != nil {
		return invite{}, false
	}
	return i, true
}

// accountPrefix is the accounts-bucket prefix of a label's devices.
func accountPrefix(label string) []byte { return append([]byte(label), 0) }

func accountKey(label string, id protocol.DeviceID) []byte {
	return append(accountPrefix(label), id[:]...)
}

// splitAccountKey parses an accounts-bucket key.
func splitAccountKey(k []byte) (label string, id protocol.DeviceID, err error) {
	n := len(k) - len(id) - 1
	if n < 1 || k[n] != 0 {
		return "", id, corrupt("account key of %d bytes", len(k))
	}
	copy(id[:], k[n+1:])
	return string(k[:n]), id, nil
}

// day is t's UTC day as stored: days since the Unix epoch.
func day(t time.Time) uint32 { return uint32(timeU64(t) / 86400) }

// readDevice decodes a device with its last-seen day.
func readDevice(tx *bolt.Tx, id []byte) (store.Device, bool) {
	d, ok := decodeDevice(id, tx.Bucket(bDevices).Get(id))
	if !ok {
		return d, false
	}
	if v := tx.Bucket(bSeen).Get(id); len(v) == 4 {
		d.LastSeen = unixTime(uint64(binary.BigEndian.Uint32(v)) * 86400)
	}
	return d, true
}

// putDevice writes d's record and keeps the accounts index in step with
// its label: old is the record as stored before (zero for a new device).
func putDevice(tx *bolt.Tx, old, d store.Device) error {
	if old.Account != d.Account {
		if old.Account != "" {
			if err := tx.Bucket(bAccounts).Delete(accountKey(old.Account, d.ID)); err != nil {
				return err
			}
		}
		if d.Account != "" {
			if err := tx.Bucket(bAccounts).Put(accountKey(d.Account, d.ID), nil); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(bDevices).Put(d.ID[:], encodeDevice(d))
}

func (s *Store) EnrollDevice(ctx context.Context, d store.Device, invite *store.InviteHash, now time.Time) (store.Device, error) {
	var out store.Device
	err := s.update(func(tx *bolt.Tx) error {
		if old, ok := readDevice(tx, d.ID[:]); ok {
			switch {
			case old.Revoked:
				return store.ErrDeviceRevoked
			case old.Suspended:
				return store.ErrDeviceSuspended
			}
			out = old
			return nil
		}
		nd := d
		nd.Revoked, nd.Suspended, nd.Account = false, false, ""
		inv := tx.Bucket(bInvites)
		if invite != nil {
			i, ok := decodeInvite(inv.Get(invite[:]))
			if !ok || i.used || !now.Before(unixTime(i.expires)) {
				return store.ErrEnrollmentRefused
			}
			i.used = true
			if err := inv.Put(invite[:], encodeInvite(i)); err != nil {
				return err
			}
			nd.Account = i.account
		}
		nd.Enrolled = unixTime(timeU64(nd.Enrolled) / 86400 * 86400)
		nd.LastSeen = unixTime(uint64(day(now)) * 86400)
		out = nd
		if err := tx.Bucket(bSeen).Put(d.ID[:], binary.BigEndian.AppendUint32(nil, day(now))); err != nil {
			return err
		}
		return putDevice(tx, store.Device{}, nd)
	})
	return out, err
}

func (s *Store) Device(ctx context.Context, id protocol.DeviceID) (store.Device, error) {
	var d store.Device
	err := s.view(func(tx *bolt.Tx) error {
		var ok bool
		d, ok = readDevice(tx, id[:])
		if !ok {
			return store.ErrUnknownDevice
		}
		return nil
	})
	return d, err
}

func (s *Store) RevokeDevice(ctx context.Context, id protocol.DeviceID) error {
	return s.updateFreeing(func(tx *bolt.Tx) error {
		d, ok := decodeDevice(id[:], tx.Bucket(bDevices).Get(id[:]))
		if !ok {
			return store.ErrUnknownDevice
		}
		return revokeDevice(tx, d)
	})
}

// revokeDevice marks d revoked and deletes its mailboxes (with their
// queues and capabilities), its bundle and its one-time prekeys. The
// record, with its label, is kept.
func revokeDevice(tx *bolt.Tx, d store.Device) error {
	id := d.ID
	// Collect first: deleting under a cursor skips keys in bbolt.
	var mbs []protocol.MailboxID
	c := tx.Bucket(bOwned).Cursor()
	for k, _ := c.Seek(id[:]); k != nil && hasPrefix(k, id[:]); k, _ = c.Next() {
		if len(k) != 48 {
			return corrupt("owned key of %d bytes", len(k))
		}
		mbs = append(mbs, protocol.MailboxID(k[32:]))
	}
	for _, mb := range mbs {
		if err := deleteMailbox(tx, id, mb); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bBundles).Delete(id[:]); err != nil {
		return err
	}
	var pks [][]byte
	pc := tx.Bucket(bPrekeys).Cursor()
	for k, _ := pc.Seek(id[:]); k != nil && hasPrefix(k, id[:]); k, _ = pc.Next() {
		pks = append(pks, bytes.Clone(k))
	}
	for _, k := range pks {
		if err := tx.Bucket(bPrekeys).Delete(k); err != nil {
			return err
		}
	}
	old := d
	d.Revoked, d.Suspended = true, false
	return putDevice(tx, old, d)
}

func (s *Store) SuspendDevice(ctx context.Context, id protocol.DeviceID, suspended bool) error {
	return s.updateFreeing(func(tx *bolt.Tx) error {
		d, ok := decodeDevice(id[:], tx.Bucket(bDevices).Get(id[:]))
		switch {
		case !ok:
			return store.ErrUnknownDevice
		case d.Revoked:
			return store.ErrDeviceRevoked
		case d.Suspended == suspended:
			return nil
		}
		old := d
		d.Suspended = suspended
		return putDevice(tx, old, d)
	})
}

func (s *Store) DeviceSeen(ctx context.Context, id protocol.DeviceID, now time.Time) error {
	return s.updateFreeing(func(tx *bolt.Tx) error {
		if tx.Bucket(bDevices).Get(id[:]) == nil {
			return store.ErrUnknownDevice
		}
		return tx.Bucket(bSeen).Put(id[:], binary.BigEndian.AppendUint32(nil, day(now)))
	})
}

func (s *Store) Devices(ctx context.Context) ([]store.Device, error) {
	var out []store.Device
	err := s.view(func(tx *bolt.Tx) error {
		out = nil
		return tx.Bucket(bDevices).ForEach(func(k, _ []byte) error {
			if len(k) != 32 {
				return corrupt("device key of %d bytes", len(k))
			}
			d, ok := readDevice(tx, k)
			if !ok {
				return corrupt("device record %x", k[:4])
			}
			d.PublicKey = nil // not needed to list, and 2 KB each
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

func (s *Store) AddInvites(ctx context.Context, hashes []store.InviteHash, expires time.Time, account string) error {
	if account != "" {
		if err := store.CheckAccountLabel(account); err != nil {
			return err
		}
	}
	v := encodeInvite(invite{expires: timeU64(expires), account: account})
	return s.update(func(tx *bolt.Tx) error {
		inv := tx.Bucket(bInvites)
		for _, h := range hashes {
			if err := inv.Put(h[:], v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) RevokeInvite(ctx context.Context, h store.InviteHash) (used bool, err error) {
	err = s.updateFreeing(func(tx *bolt.Tx) error {
		inv := tx.Bucket(bInvites)
		v := inv.Get(h[:])
		if v == nil {
			return store.ErrUnknownInvite
		}
		i, ok := decodeInvite(v)
		used = ok && i.used
		return inv.Delete(h[:])
	})
	return used, err
}

// ---- mailboxes and capabilities ----

func (s *Store) CreateMailbox(ctx context.Context, owner protocol.DeviceID, id protocol.MailboxID) error {
	return s.update(func(tx *bolt.Tx) error {
		if _, _, ok := mailboxRecord(tx, id); ok {
			return store.ErrMailboxLimit // a 128-bit random collision; never in practice
		}
		n := 0
		c := tx.Bucket(bOwned).Cursor()
		for k, _ := c.Seek(owner[:]); k != nil && hasPrefix(k, owner[:]); k, _ = c.Next() {
			n++
		}
		if n >= protocol.MaxMailboxesPerDevice {
			return store.ErrMailboxLimit
		}
		if err := tx.Bucket(bOwned).Put(cat(owner[:], id[:]), nil); err != nil {
			return err
		}
		return putMailbox(tx, id, owner, 0)
	})
}

func (s *Store) MailboxOwner(ctx context.Context, id protocol.MailboxID) (protocol.DeviceID, error) {
	var owner protocol.DeviceID
	err := s.view(func(tx *bolt.Tx) error {
		var ok bool
		owner, _, ok = mailboxRecord(tx, id)
		if !ok {
			return store.ErrUnknownMailbox
		}
		return nil
	})
	return owner, err
}

func (s *Store) DeleteMailbox(ctx context.Context, owner protocol.DeviceID, id protocol.MailboxID) error {
	return s.updateFreeing(func(tx *bolt.Tx) error {
		if err := ownedMailbox(tx, owner, id); err != nil {
			return err
		}
		return deleteMailbox(tx, owner, id)
	})
}

// deleteMailbox deletes a mailbox of owner with its queue and capabilities.
func deleteMailbox(tx *bolt.Tx, owner protocol.DeviceID, id protocol.MailboxID) error {
	// Collect first: deleting under a cursor skips keys in bbolt.
	var seqs []uint64
	c := tx.Bucket(bEnvMbox).Cursor()
	for k, _ := c.Seek(id[:]); k != nil && hasPrefix(k, id[:]); k, _ = c.Next() {
		if len(k) != 24 {
			return corrupt("mailbox index key of %d bytes", len(k))
		}
		seqs = append(seqs, binary.BigEndian.Uint64(k[16:]))
	}
	env := tx.Bucket(bEnv)
	for _, seq := range seqs {
		e, err := decodeEnv(seq, env.Get(u64(seq)))
		if err != nil {
			return err
		}
		if err := deleteEnvelope(tx, seq, e); err != nil {
			return err
		}
	}
	var capKeys [][]byte
	cc := tx.Bucket(bCaps).Cursor()
	for k, _ := cc.Seek(id[:]); k != nil && hasPrefix(k, id[:]); k, _ = cc.Next() {
		capKeys = append(capKeys, append([]byte(nil), k...))
	}
	for _, k := range capKeys {
		if err := tx.Bucket(bCaps).Delete(k); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bOwned).Delete(cat(owner[:], id[:])); err != nil {
		return err
	}
	return tx.Bucket(bMailboxes).Delete(id[:])
}

// caps: mailbox(16) || hash(32) -> state(1). Keyed by mailbox first, so an
// owner can never touch another mailbox's capabilities.
func (s *Store) AddCapability(ctx context.Context, owner protocol.DeviceID, mb protocol.MailboxID, h protocol.CapabilityHash) error {
	return s.update(func(tx *bolt.Tx) error {
		if err := ownedMailbox(tx, owner, mb); err != nil {
			return err
		}
		caps := tx.Bucket(bCaps)
		key := cat(mb[:], h[:])
		// A revoked hash falls through: its owner lifts the revocation
		// (unblocking a contact), and it counts as a new live one.
		if v := caps.Get(key); len(v) == 1 && store.CapabilityState(v[0]) == store.CapabilityLive {
			return nil
		}
		live := 0
		c := caps.Cursor()
		for k, v := c.Seek(mb[:]); k != nil && hasPrefix(k, mb[:]); k, v = c.Next() {
			if len(v) == 1 && store.CapabilityState(v[0]) == store.CapabilityLive {
				live++
			}
		}
		if live >= protocol.MaxCapabilitiesPerMailbox {
			return store.ErrCapabilityLimit
		}
		return caps.Put(key, []byte{byte(store.CapabilityLive)})
	})
}

// A revoked capability is stored as state 2 alone when revoked as
// protocol.RevokeBlocked (as before reasons existed), and as state 2 ||
// reason (1 to 3) otherwise.
func (s *Store) RevokeCapability(ctx context.Context, owner protocol.DeviceID, mb protocol.MailboxID, h protocol.CapabilityHash, reason protocol.RevokeReason) error {
	if reason > protocol.MaxRevokeReason {
		return corrupt("revocation reason %d", reason) // the decoder refuses it
	}
	v := []byte{byte(store.CapabilityRevoked)}
	if reason != protocol.RevokeBlocked {
		v = append(v, byte(reason))
	}
	return s.updateFreeing(func(tx *bolt.Tx) error {
		if err := ownedMailbox(tx, owner, mb); err != nil {
			return err
		}
		return tx.Bucket(bCaps).Put(cat(mb[:], h[:]), v)
	})
}

func (s *Store) CheckCapability(ctx context.Context, mb protocol.MailboxID, h protocol.CapabilityHash) error {
	return s.view(func(tx *bolt.Tx) error { return checkCapability(tx, mb, h) })
}

// ---- prekeys ----

// prekeys: device(32) || seq(u64) -> one-time prekey; bundles: device -> bundle
func (s *Store) PublishPrekeys(ctx context.Context, dev protocol.DeviceID, bundle []byte, prekeys [][]byte) error {
	return s.update(func(tx *bolt.Tx) error {
		pk := tx.Bucket(bPrekeys)
		n := 0
		c := pk.Cursor()
		for k, _ := c.Seek(dev[:]); k != nil && hasPrefix(k, dev[:]); k, _ = c.Next() {
			n++
		}
		if n+len(prekeys) > protocol.MaxStoredPrekeys {
			return store.ErrPrekeyLimit
		}
		if len(bundle) > 0 {
			if err := tx.Bucket(bBundles).Put(dev[:], bundle); err != nil {
				return err
			}
		}
		for _, p := range prekeys {
			seq, err := pk.NextSequence()
			if err != nil {
				return err
			}
			if err := pk.Put(cat(dev[:], u64(seq)), p); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) FetchBundle(ctx context.Context, mb protocol.MailboxID, h protocol.CapabilityHash) (bundle, prekey []byte, err error) {
	// A read-only check first, so that refused fetches cost no commit.
	if err := s.CheckCapability(ctx, mb, h); err != nil {
		return nil, nil, err
	}
	err = s.updateFreeing(func(tx *bolt.Tx) error {
		bundle, prekey = nil, nil
		if err := checkCapability(tx, mb, h); err != nil {
			return err
		}
		owner, _, _ := mailboxRecord(tx, mb)
		b := tx.Bucket(bBundles).Get(owner[:])
		if b == nil {
			return store.ErrNoBundle
		}
		bundle = bytes.Clone(b)
		c := tx.Bucket(bPrekeys).Cursor()
		k, v := c.Seek(owner[:])
		if k == nil || !hasPrefix(k, owner[:]) {
			return nil
		}
		prekey = bytes.Clone(v)
		return tx.Bucket(bPrekeys).Delete(bytes.Clone(k))
	})
	if err != nil {
		return nil, nil, err
	}
	return bundle, prekey, nil
}

func (s *Store) PrekeyStatus(ctx context.Context, dev protocol.DeviceID) (count int, hasBundle bool, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		hasBundle = tx.Bucket(bBundles).Get(dev[:]) != nil
		c := tx.Bucket(bPrekeys).Cursor()
		for k, _ := c.Seek(dev[:]); k != nil && hasPrefix(k, dev[:]); k, _ = c.Next() {
			count++
		}
		return nil
	})
	return count, hasBundle, err
}

// ---- envelopes ----

func (s *Store) Append(ctx context.Context, e store.Envelope, h protocol.CapabilityHash) (store.Envelope, error) {
	// The capability is checked inside the committing transaction only:
	// the relay checked it before queueing, and this check is the one that
	// cannot race a revocation.
	var salt [8]byte
	rand.Read(salt[:])
	err := s.update(func(tx *bolt.Tx) error {
		if err := checkCapability(tx, e.Mailbox, h); err != nil {
			return err
		}
		owner, depth, _ := mailboxRecord(tx, e.Mailbox)
		if depth >= protocol.MaxQueueDepth {
			return store.ErrQueueFull
		}
		env := tx.Bucket(bEnv)
		// Keys only ever grow in env (the sequence) and almost only in
		// env_exp (the expiry): fill pages completely on split instead of
		// bbolt's default half, which halves the bytes per envelope.
		env.FillPercent = 1.0
		tx.Bucket(bEnvExp).FillPercent = 1.0
		seq, err := env.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		e.ID = s.envelopeID(seq, salt)
		sk := u64(seq)
		if err := env.Put(sk, encodeEnv(e)); err != nil {
			return err
		}
		if err := tx.Bucket(bEnvMbox).Put(cat(e.Mailbox[:], sk), nil); err != nil {
			return err
		}
		if err := tx.Bucket(bEnvExp).Put(cat(u64(timeU64(e.Expires)), sk), nil); err != nil {
			return err
		}
		return putMailbox(tx, e.Mailbox, owner, depth+1)
	})
	if err != nil {
		return store.Envelope{}, err
	}
	return e, nil
}

func (s *Store) Range(ctx context.Context, mb protocol.MailboxID, after uint64, limit int) ([]store.Envelope, error) {
	var out []store.Envelope
	err := s.view(func(tx *bolt.Tx) error {
		env := tx.Bucket(bEnv)
		c := tx.Bucket(bEnvMbox).Cursor()
		for k, _ := c.Seek(cat(mb[:], u64(after+1))); k != nil && hasPrefix(k, mb[:]) && len(out) < limit; k, _ = c.Next() {
			if len(k) != 24 {
				return corrupt("mailbox index key of %d bytes", len(k))
			}
			seq := binary.BigEndian.Uint64(k[16:])
			e, err := decodeEnv(seq, env.Get(k[16:]))
			if err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

func (s *Store) Ack(ctx context.Context, mb protocol.MailboxID, ids []protocol.EnvelopeID) (int, error) {
	var n int
	err := s.updateFreeing(func(tx *bolt.Tx) error {
		n = 0
		env := tx.Bucket(bEnv)
		legacy := tx.Bucket(bEnvID)
		for _, id := range ids {
			// The ID names its sequence (envid.go); a schema-1 envelope
			// is found through the env_id index instead.
			seq := s.seqOf(id)
			v := env.Get(u64(seq))
			if len(v) < envHeader || !bytes.Equal(v[16:32], id[:]) {
				sk := legacy.Get(id[:])
				if len(sk) != 8 {
					continue
				}
				seq = binary.BigEndian.Uint64(sk)
				v = env.Get(sk)
			}
			e, err := decodeEnv(seq, v)
			if err != nil {
				return err
			}
			if e.ID != id || e.Mailbox != mb {
				continue
			}
			if err := deleteEnvelope(tx, seq, e); err != nil {
				return err
			}
			n++
		}
		return decrementDepth(tx, mb, uint32(n))
	})
	return n, err
}

func (s *Store) Purge(ctx context.Context, now time.Time, max int) (int, error) {
	var n int
	err := s.updateFreeing(func(tx *bolt.Tx) error {
		n = 0
		var seqs []uint64
		c := tx.Bucket(bEnvExp).Cursor()
		limit := timeU64(now)
		for k, _ := c.First(); k != nil && len(seqs) < max; k, _ = c.Next() {
			if len(k) != 16 {
				return corrupt("expiry index key of %d bytes", len(k))
			}
			if binary.BigEndian.Uint64(k[:8]) > limit {
				break
			}
			seqs = append(seqs, binary.BigEndian.Uint64(k[8:]))
		}
		env := tx.Bucket(bEnv)
		depth := map[protocol.MailboxID]uint32{}
		for _, seq := range seqs {
			e, err := decodeEnv(seq, env.Get(u64(seq)))
			if err != nil {
				return err
			}
			if err := deleteEnvelope(tx, seq, e); err != nil {
				return err
			}
			depth[e.Mailbox]++
			n++
		}
		for mb, d := range depth {
			if err := decrementDepth(tx, mb, d); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}
