package bboltstore

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
)

// Envelope IDs are assigned by the store, name their sequence under the
// file's key, look random, and are acknowledged without an index.
func TestEnvelopeIDs(t *testing.T) {
	s, _ := openTest(t)
	mb, h := mailboxWithCap(t, s)
	given := envelope(mb, t0)
	var ids []protocol.EnvelopeID
	for range 4 {
		e, err := s.Append(ctx, given, h)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID == given.ID {
			t.Fatal("Append kept the caller's ID")
		}
		if got := s.seqOf(e.ID); got != e.Seq {
			t.Fatalf("ID decrypts to sequence %d, want %d", got, e.Seq)
		}
		// The sequence does not show: no ID starts with it.
		if binary.BigEndian.Uint64(e.ID[:8]) == e.Seq {
			t.Fatalf("ID %x shows its sequence %d", e.ID, e.Seq)
		}
		ids = append(ids, e.ID)
	}
	s.db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bEnvID).Stats().KeyN; n != 0 {
			t.Errorf("env_id holds %d keys: new envelopes need no index", n)
		}
		return nil
	})

	// Another mailbox's acknowledgement, a forged ID and an ID whose
	// random half was changed delete nothing.
	other, _ := mailboxWithCap(t, s)
	forged := ids[1]
	forged[15] ^= 1
	for _, tc := range []struct {
		mb  protocol.MailboxID
		ids []protocol.EnvelopeID
	}{{other, ids[:1]}, {mb, []protocol.EnvelopeID{protocol.NewEnvelopeID(), forged}}} {
		if n, err := s.Ack(ctx, tc.mb, tc.ids); err != nil || n != 0 {
			t.Fatalf("Ack(%x) = %d, %v; want nothing deleted", tc.ids, n, err)
		}
	}
	if n, err := s.Ack(ctx, mb, ids[:3]); err != nil || n != 3 {
		t.Fatalf("Ack = %d, %v; want 3", n, err)
	}
	left, err := s.Range(ctx, mb, 0, 10)
	if err != nil || len(left) != 1 || left[0].ID != ids[3] {
		t.Fatalf("after the acks: %d envelopes, %v", len(left), err)
	}
}

// A restored backup hands out sequence numbers again; the IDs it gives
// them differ from the ones given before, so that a client's record of an
// envelope it acknowledged never hides a new one.
func TestEnvelopeIDsAfterRestore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "relay.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	mb, h := mailboxWithCap(t, s)
	if err := s.Backup(path + ".bak"); err != nil {
		t.Fatal(err)
	}
	first, err := s.Append(ctx, envelope(mb, t0), h)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, err := os.ReadFile(path + ".bak")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	again, err := s.Append(ctx, envelope(mb, t0), h)
	if err != nil {
		t.Fatal(err)
	}
	if again.Seq != first.Seq || again.ID == first.ID {
		t.Fatalf("after restore: sequence %d (was %d), same ID: %v", again.Seq, first.Seq, again.ID == first.ID)
	}
}

// Envelopes stored by schema 1 keep their random IDs and are acknowledged
// through the env_id index, beside new ones.
func TestLegacyEnvelopeIDs(t *testing.T) {
	path, m := copyFixture(t)
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, fm := range m.Mailboxes {
		if fm.Deleted || len(fm.Envelopes) == 0 {
			continue
		}
		mb := protocol.MailboxID(unhex(t, fm.ID))
		var legacy []protocol.EnvelopeID
		for _, fe := range fm.Envelopes {
			legacy = append(legacy, protocol.EnvelopeID(unhex(t, fe.ID)))
		}
		var live *fixtureCapability
		for i := range fm.Capabilities {
			if fm.Capabilities[i].State == "live" {
				live = &fm.Capabilities[i]
			}
		}
		if live == nil {
			continue
		}
		tok, err := protocol.CapabilityTokenFromBytes(unhex(t, live.Token))
		if err != nil {
			t.Fatal(err)
		}
		fresh, err := s.Append(ctx, envelope(mb, t0), tok.Hash())
		if err != nil {
			t.Fatal(err)
		}
		n, err := s.Ack(ctx, mb, append(legacy, fresh.ID))
		if err != nil || n != len(legacy)+1 {
			t.Fatalf("Ack of %d schema-1 IDs and a new one = %d, %v", len(legacy), n, err)
		}
		left, err := s.Range(ctx, mb, 0, 100)
		if err != nil || len(left) != 0 {
			t.Fatalf("left: %d, %v", len(left), err)
		}
		s.db.View(func(tx *bolt.Tx) error {
			for _, id := range legacy {
				if tx.Bucket(bEnvID).Get(id[:]) != nil {
					t.Errorf("env_id still holds acknowledged %x", id)
				}
			}
			return nil
		})
		return
	}
	t.Fatal("the fixture has no mailbox with queued envelopes and a live capability")
}
