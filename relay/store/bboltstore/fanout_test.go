package bboltstore

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// fanoutOfMailboxes creates n mailboxes with a capability each and a list
// of them; the entries are returned in the list's order (ascending
// mailbox).
func fanoutOfMailboxes(t *testing.T, s *Store, n int) (protocol.FanoutID, protocol.CapabilityHash, protocol.CapabilityHash, []store.FanoutEntry) {
	t.Helper()
	var entries []store.FanoutEntry
	for range n {
		mb, h := mailboxWithCap(t, s)
		entries = append(entries, store.FanoutEntry{Mailbox: mb, Capability: h})
	}
	slices.SortFunc(entries, func(a, b store.FanoutEntry) int { return bytes.Compare(a.Mailbox[:], b.Mailbox[:]) })
	id := protocol.NewFanoutID()
	admin, send := protocol.NewCapabilityToken().Hash(), protocol.NewCapabilityToken().Hash()
	if err := s.CreateFanout(ctx, ownr, id, admin, send, entries); err != nil {
		t.Fatal(err)
	}
	return id, admin, send, entries
}

// dump is every key and value of the fan-out and envelope buckets, to
// check that a refused call changed nothing.
func dump(t *testing.T, s *Store) []byte {
	t.Helper()
	var b bytes.Buffer
	err := s.DB().View(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bFanouts, bFanoutEntries, bFanoutOwned, bEnv, bEnvMbox, bEnvExp, bMailboxes} {
			b.Write(name)
			tx.Bucket(name).ForEach(func(k, v []byte) error {
				b.Write(k)
				b.WriteByte(0)
				b.Write(v)
				b.WriteByte(1)
				return nil
			})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestFanoutAppend(t *testing.T) {
	s, _ := openTest(t)
	id, _, send, entries := fanoutOfMailboxes(t, s, 5)
	// Entry 1's capability revoked (a team's restriction: its reason
	// must reach the sender as for a plain Send), entry 3's mailbox
	// deleted.
	if err := s.RevokeCapability(ctx, ownr, entries[1].Mailbox, entries[1].Capability, protocol.RevokeRestrictedNew); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(ctx, ownr, entries[3].Mailbox); err != nil {
		t.Fatal(err)
	}
	if n, err := s.CheckFanout(ctx, id, send); err != nil || n != 5 {
		t.Fatalf("CheckFanout = %d, %v", n, err)
	}
	tx0, _ := s.Commits()
	res, err := s.AppendFanout(ctx, id, send, envelope(protocol.MailboxID{}, t0))
	if err != nil {
		t.Fatal(err)
	}
	if tx1, _ := s.Commits(); tx1-tx0 != 1 {
		t.Errorf("fan-out send took %d commits, want 1", tx1-tx0)
	}
	if len(res.Stored) != 3 || len(res.Refused) != 2 {
		t.Fatalf("stored %d, refused %d; want 3 and 2", len(res.Stored), len(res.Refused))
	}
	var re *store.RevokedError
	if r := res.Refused[0]; r.Index != 1 || !errors.Is(r.Err, store.ErrCapabilityRevoked) || !errors.As(r.Err, &re) || re.Reason != protocol.RevokeRestrictedNew {
		t.Errorf("refusal 0 = %d %v, want 1 revoked with its reason", r.Index, r.Err)
	}
	if r := res.Refused[1]; r.Index != 3 || !errors.Is(r.Err, store.ErrUnknownCapability) {
		t.Errorf("refusal 1 = %d %v, want 3 unknown capability", r.Index, r.Err)
	}
	ids := map[protocol.EnvelopeID]bool{}
	for i, want := range []int{0, 2, 4} {
		cp := res.Stored[i]
		if cp.Mailbox != entries[want].Mailbox {
			t.Fatalf("copy %d in mailbox %s, want %s", i, cp.Mailbox.Short(), entries[want].Mailbox.Short())
		}
		got, _ := s.Range(ctx, cp.Mailbox, 0, 10)
		if len(got) != 1 || got[0].ID != cp.ID || !bytes.Equal(got[0].Data, cp.Data) {
			t.Fatalf("mailbox %d holds %d envelopes", want, len(got))
		}
		ids[cp.ID] = true
		checkDepth(t, s, cp.Mailbox, 1)
	}
	if len(ids) != 3 {
		t.Error("copies share an envelope ID")
	}
	// Each copy is acknowledged on its own.
	if n, err := s.Ack(ctx, res.Stored[0].Mailbox, []protocol.EnvelopeID{res.Stored[0].ID}); err != nil || n != 1 {
		t.Fatalf("ack = %d, %v", n, err)
	}
	checkDepth(t, s, res.Stored[1].Mailbox, 1)
}

func TestFanoutRefusalsChangeNothing(t *testing.T) {
	s, _ := openTest(t)
	id, admin, send, entries := fanoutOfMailboxes(t, s, 3)
	wrong := protocol.NewCapabilityToken().Hash()
	before := dump(t, s)
	newSend := protocol.NewCapabilityToken().Hash()
	tooMany := make([]store.FanoutEntry, protocol.MaxFanoutEntries-1) // 3 - 1 + 1599 = 1601
	for i := range tooMany {
		tooMany[i].Mailbox[0], tooMany[i].Mailbox[1], tooMany[i].Mailbox[2] = 0xff, byte(i>>8), byte(i)
	}
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"send with the admin capability", func() error {
			_, err := s.AppendFanout(ctx, id, admin, envelope(protocol.MailboxID{}, t0))
			return err
		}(), store.ErrFanoutCapability},
		{"send to an unknown list", func() error {
			_, err := s.AppendFanout(ctx, protocol.NewFanoutID(), send, envelope(protocol.MailboxID{}, t0))
			return err
		}(), store.ErrUnknownFanout},
		{"update with the send capability", s.UpdateFanout(ctx, id, send, store.FanoutChange{NewSend: &newSend}), store.ErrFanoutCapability},
		{"update past the entry limit", s.UpdateFanout(ctx, id, admin, store.FanoutChange{NewSend: &newSend, Add: tooMany, Remove: []protocol.MailboxID{entries[0].Mailbox}}), store.ErrFanoutLimit},
		{"delete with a wrong capability", s.DeleteFanout(ctx, id, wrong), store.ErrFanoutCapability},
		{"delete an unknown list", s.DeleteFanout(ctx, protocol.NewFanoutID(), admin), store.ErrUnknownFanout},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	if !bytes.Equal(dump(t, s), before) {
		t.Fatal("a refused call changed the store")
	}
	// At the limit exactly: accepted (3 - 1 + 1598 = 1600).
	if err := s.UpdateFanout(ctx, id, admin, store.FanoutChange{Add: tooMany[1:], Remove: []protocol.MailboxID{entries[0].Mailbox}}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CheckFanout(ctx, id, send); n != protocol.MaxFanoutEntries {
		t.Fatalf("list of %d entries, want %d", n, protocol.MaxFanoutEntries)
	}
	// 1600 copies of a 16 KiB envelope are above MaxFanoutSendBytes.
	big := envelope(protocol.MailboxID{}, t0)
	big.Data = append(big.Data, make([]byte, 15<<10)...)
	before = dump(t, s)
	if _, err := s.AppendFanout(ctx, id, send, big); !errors.Is(err, store.ErrFanoutLimit) {
		t.Fatalf("oversized fan-out: %v", err)
	}
	if !bytes.Equal(dump(t, s), before) {
		t.Fatal("a refused send changed the store")
	}
}

func TestFanoutUpdateAndDelete(t *testing.T) {
	s, _ := openTest(t)
	id, admin, send, entries := fanoutOfMailboxes(t, s, 3)
	mb4, h4 := mailboxWithCap(t, s)
	newSend := protocol.NewCapabilityToken().Hash()
	// Replace entry 0's capability, remove entry 1, add a mailbox, and a
	// new send capability: one change.
	h0 := protocol.NewCapabilityToken().Hash()
	if err := s.AddCapability(ctx, ownr, entries[0].Mailbox, h0); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeCapability(ctx, ownr, entries[0].Mailbox, entries[0].Capability, protocol.RevokeBlocked); err != nil {
		t.Fatal(err)
	}
	err := s.UpdateFanout(ctx, id, admin, store.FanoutChange{
		NewSend: &newSend,
		Add:     []store.FanoutEntry{{Mailbox: entries[0].Mailbox, Capability: h0}, {Mailbox: mb4, Capability: h4}},
		Remove:  []protocol.MailboxID{entries[1].Mailbox, protocol.NewMailboxID()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckFanout(ctx, id, send); !errors.Is(err, store.ErrFanoutCapability) {
		t.Fatalf("the old send capability: %v", err)
	}
	if _, err := s.AppendFanout(ctx, id, send, envelope(protocol.MailboxID{}, t0)); !errors.Is(err, store.ErrFanoutCapability) {
		t.Fatalf("the old send capability: %v", err)
	}
	res, err := s.AppendFanout(ctx, id, newSend, envelope(protocol.MailboxID{}, t0))
	if err != nil || len(res.Stored) != 3 || len(res.Refused) != 0 {
		t.Fatalf("send after update: %d stored, %d refused, %v", len(res.Stored), len(res.Refused), err)
	}
	if got, _ := s.Range(ctx, entries[1].Mailbox, 0, 10); len(got) != 0 {
		t.Fatal("a removed mailbox got a copy")
	}
	// The device's allowance: MaxFanoutsPerDevice lists, and a deletion
	// gives one back.
	for i := 1; i < protocol.MaxFanoutsPerDevice; i++ {
		if err := s.CreateFanout(ctx, ownr, protocol.NewFanoutID(), admin, send, nil); err != nil {
			t.Fatalf("list %d: %v", i+1, err)
		}
	}
	if err := s.CreateFanout(ctx, ownr, protocol.NewFanoutID(), admin, send, nil); !errors.Is(err, store.ErrFanoutLimit) {
		t.Fatalf("list past the limit: %v", err)
	}
	if err := s.CreateFanout(ctx, protocol.DeviceID{9}, protocol.NewFanoutID(), admin, send, nil); err != nil {
		t.Fatalf("another device's list: %v", err)
	}
	if err := s.DeleteFanout(ctx, id, admin); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckFanout(ctx, id, newSend); !errors.Is(err, store.ErrUnknownFanout) {
		t.Fatalf("deleted list: %v", err)
	}
	err = s.DB().View(func(tx *bolt.Tx) error {
		if k, _ := tx.Bucket(bFanoutEntries).Cursor().Seek(id[:]); k != nil && hasPrefix(k, id[:]) {
			t.Error("a deleted list's entries remain")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateFanout(ctx, ownr, protocol.NewFanoutID(), admin, send, nil); err != nil {
		t.Fatalf("list after a deletion: %v", err)
	}
}

// A full queue refuses its entry only.
func TestFanoutQueueFull(t *testing.T) {
	s, _ := openTest(t)
	id, _, send, entries := fanoutOfMailboxes(t, s, 2)
	err := s.DB().Update(func(tx *bolt.Tx) error {
		return putMailbox(tx, entries[0].Mailbox, ownr, protocol.MaxQueueDepth)
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.AppendFanout(ctx, id, send, envelope(protocol.MailboxID{}, t0))
	if err != nil || len(res.Stored) != 1 || len(res.Refused) != 1 || !errors.Is(res.Refused[0].Err, store.ErrQueueFull) || res.Refused[0].Index != 0 {
		t.Fatalf("%+v, %v", res, err)
	}
}

// A damaged list record or entry fails the call with a corruption error,
// never a panic and never a partial write.
func TestFanoutCorruptRecords(t *testing.T) {
	s, _ := openTest(t)
	id, admin, send, entries := fanoutOfMailboxes(t, s, 2)
	for _, c := range []struct {
		name          string
		bucket, key   []byte
		value         []byte
		checkSucceeds bool
	}{
		{"short list record", bFanouts, id[:], make([]byte, fanoutRecordSize-1), false},
		{"list of too many entries", bFanouts, id[:], append(cat(admin[:], send[:], ownr[:]), 0xff, 0xff), false},
		{"short entry", bFanoutEntries, fanoutEntryKey(id, entries[0].Mailbox), make([]byte, 31), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			var old []byte
			err := s.DB().Update(func(tx *bolt.Tx) error {
				old = bytes.Clone(tx.Bucket(c.bucket).Get(c.key))
				return tx.Bucket(c.bucket).Put(c.key, c.value)
			})
			if err != nil {
				t.Fatal(err)
			}
			defer s.DB().Update(func(tx *bolt.Tx) error { return tx.Bucket(c.bucket).Put(c.key, old) })
			if _, err := s.CheckFanout(ctx, id, send); (err == nil) != c.checkSucceeds || (err != nil && !errors.Is(err, errCorrupt)) {
				t.Errorf("CheckFanout: %v", err)
			}
			before := dump(t, s)
			if _, err := s.AppendFanout(ctx, id, send, envelope(protocol.MailboxID{}, t0)); !errors.Is(err, errCorrupt) {
				t.Errorf("AppendFanout: %v", err)
			}
			if err := s.UpdateFanout(ctx, id, admin, store.FanoutChange{Remove: []protocol.MailboxID{entries[1].Mailbox}}); err == nil && !c.checkSucceeds {
				t.Error("UpdateFanout of a damaged list succeeded")
			}
			if !c.checkSucceeds && !bytes.Equal(dump(t, s), before) {
				t.Error("a failed call changed the store")
			}
		})
	}
}
