package store

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRelayTrustKeptPerRelay(t *testing.T) {
	st := testStore(t)
	err := st.Update(func(t *Tx) error {
		if err := t.PutRelayTrust(&RelayTrust{Relay: "wss://a.example", Key: []byte("key-a"), Head: []byte("head-a")}); err != nil {
			return err
		}
		return t.PutRelayTrust(&RelayTrust{Relay: "wss://b.example", Key: []byte("key-b")})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = st.View(func(tx *Tx) error {
		a, err := tx.RelayTrust("wss://a.example")
		if err != nil || a == nil || !bytes.Equal(a.Key, []byte("key-a")) || !bytes.Equal(a.Head, []byte("head-a")) {
			t.Errorf("relay a: %+v, %v", a, err)
		}
		b, err := tx.RelayTrust("wss://b.example")
		if err != nil || b == nil || !bytes.Equal(b.Key, []byte("key-b")) || b.Head != nil {
			t.Errorf("relay b: %+v, %v", b, err)
		}
		c, err := tx.RelayTrust("wss://c.example")
		if err != nil || c != nil {
			t.Errorf("unknown relay: %+v, %v", c, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(t *Tx) error { return t.PutRelayTrust(&RelayTrust{Relay: "wss://c.example"}) }); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a record without a key: %v, want ErrCorrupt", err)
	}
}

// TestWipe: erase.keys is overwritten before it goes (a copy of it taken
// before the wipe no longer matches its last state), both files are
// removed, and no later transaction makes a new store.db.
func TestWipe(t *testing.T) {
	st := testStore(t)
	if err := st.Update(func(t *Tx) error { return putTest(t, "x") }); err != nil {
		t.Fatal(err)
	}
	if err := st.Update(func(t *Tx) error { return t.putEphemeral(BucketSessions, []byte("k"), []byte("secret")) }); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(st.Path())
	before, err := os.ReadFile(st.EraseKeysPath())
	if err != nil {
		t.Fatal(err)
	}
	// A second name for the same inode shows what was written over it.
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Link(st.EraseKeysPath(), link); err != nil {
		t.Skipf("no hard links here: %v", err)
	}
	if err := st.Wipe(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(link)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) || bytes.Equal(after[:eraseSlotSize], before[:eraseSlotSize]) || bytes.Equal(after[eraseSlotSize:], before[eraseSlotSize:]) {
		t.Errorf("erase.keys was not overwritten in place before its removal")
	}
	for _, p := range []string{st.Path(), st.EraseKeysPath()} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Wipe: %v", filepath.Base(p), err)
		}
	}
	if err := st.Update(func(t *Tx) error { return putTest(t, "y") }); !errors.Is(err, ErrWiped) {
		t.Errorf("Update after Wipe: %v, want ErrWiped", err)
	}
	if err := st.View(func(*Tx) error { return nil }); !errors.Is(err, ErrWiped) {
		t.Errorf("View after Wipe: %v, want ErrWiped", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("files left: %v", ents)
	}
	if err := st.Wipe(); err != nil {
		t.Errorf("second Wipe: %v", err)
	}
}
