package bboltstore

import (
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A damaged file must fail the operation that meets the damage, with
// errCorrupt, and never panic the committer: every other mailbox keeps
// working.
func TestCorruptIndexKeysDoNotPanic(t *testing.T) {
	s, _ := openTest(t)
	mb, h := mailboxWithCap(t, s)
	if _, err := s.Append(ctx, envelope(mb, t0), h); err != nil {
		t.Fatal(err)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bEnvExp).Put([]byte{0, 0, 0}, nil); err != nil { // shorter than expiry||seq
			return err
		}
		return tx.Bucket(bEnvMbox).Put(append(mb[:], 1, 2), nil) // mailbox prefix, short seq
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Purge(ctx, t0.Add(1<<40), 100); !errors.Is(err, errCorrupt) {
		t.Errorf("Purge over a short expiry key: %v, want errCorrupt", err)
	}
	if _, err := s.Range(ctx, mb, 0, 10); !errors.Is(err, errCorrupt) {
		t.Errorf("Range over a short mailbox key: %v, want errCorrupt", err)
	}
	if err := s.DeleteMailbox(ctx, ownr, mb); !errors.Is(err, errCorrupt) {
		t.Errorf("DeleteMailbox over a short mailbox key: %v, want errCorrupt", err)
	}
	// The committer survived: another mailbox still takes envelopes.
	other, h2 := mailboxWithCap(t, s)
	if _, err := s.Append(ctx, envelope(other, t0), h2); err != nil {
		t.Fatalf("append after corruption: %v", err)
	}
	// Repair so that the cleanup consistency check sees a sane file.
	s.db.Update(func(tx *bolt.Tx) error {
		tx.Bucket(bEnvExp).Delete([]byte{0, 0, 0})
		return tx.Bucket(bEnvMbox).Delete(append(mb[:], 1, 2))
	})
}

func TestSafeUpdateTurnsPanicIntoError(t *testing.T) {
	s, _ := openTest(t)
	err := s.safeUpdate(func(tx *bolt.Tx) error {
		var k []byte
		_ = k[3] // index out of range
		return nil
	})
	if !errors.Is(err, errCorrupt) {
		t.Fatalf("err = %v, want errCorrupt", err)
	}
}
