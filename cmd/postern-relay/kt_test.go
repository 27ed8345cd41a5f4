package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/store"
)

// ktFixture writes a data directory whose log holds 3 identities' lists
// in 7 publishes, signed with the relay key, through the store interface.
func ktFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	key, err := audit.LoadOrCreateKey(filepath.Join(dir, audit.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	st := testStore(t, dir)
	defer st.Close()
	sign := func(size uint64, root [32]byte) ([]byte, error) {
		h := &kt.Head{RelayKey: key.Public().Fingerprint(), Size: size, Root: root, Time: time.Now()}
		sig, err := key.Sign(kt.ContextHead, h.SignedPart())
		h.Signature = sig
		return h.Bytes(), err
	}
	now := time.Now().Truncate(time.Second)
	var ids []*identity.Identity
	for range 3 {
		id, err := identity.GenerateIdentity()
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	versions := map[int]uint64{}
	for i := range 7 {
		n := i % 3
		b, err := ids[n].SignDeviceList(&keys.DeviceList{Version: versions[n] + 1, Created: now,
			Devices: []keys.ListedDevice{{ID: keys.Fingerprint{byte(i)}, Linked: now, Relay: "wss://relay.example.org"}}})
		if err != nil {
			t.Fatal(err)
		}
		l, _ := keys.ParseDeviceList(b)
		_, err = st.PublishDeviceList(context.Background(), store.Publish{Identity: l.Identity.Fingerprint(), Version: l.Version, Prev: versions[n], List: b, Entry: kt.EntryOf(l, b).Bytes()}, sign)
		if err != nil {
			t.Fatal(err)
		}
		versions[n]++
	}
	return dir
}

// edit changes one record of the closed database with bbolt directly.
func edit(t *testing.T, dir, bucket string, f func(b *bolt.Bucket) error) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(dir, relay.DBFile), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return f(tx.Bucket([]byte(bucket))) }); err != nil {
		t.Fatal(err)
	}
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// TestKTVerify: a good log verifies with a summary; each kind of tampering
// (a leaf, a tree node, a head's root, a stored list, a list swapped for
// an older one of the same person) fails with a message naming it.
func TestKTVerify(t *testing.T) {
	dir := ktFixture(t)
	var out, errb bytes.Buffer
	if err := ktVerify([]string{"--data", dir}, &out, &errb); err != nil {
		t.Fatalf("good log: %v", err)
	}
	if !strings.Contains(out.String(), "transparency log ok: 7 leaves") || !strings.Contains(out.String(), "3 device lists") {
		t.Fatalf("summary: %s", out.String())
	}
	flip := func(v []byte, at int) []byte { v = bytes.Clone(v); v[at] ^= 1; return v }
	for _, c := range []struct {
		name, bucket, want string
		f                  func(b *bolt.Bucket) error
	}{
		{"leaf entry edited", "kt_leaves", "tree node level 0 index 3", func(b *bolt.Bucket) error { return b.Put(u64(3), flip(b.Get(u64(3)), 40)) }},
		{"inner node edited", "kt_nodes", "tree node level 1 index 0", func(b *bolt.Bucket) error {
			k := append([]byte{1}, u64(0)...)
			return b.Put(k, flip(b.Get(k), 0))
		}},
		{"head root edited", "kt_heads", "head of size 7", func(b *bolt.Bucket) error { return b.Put(u64(7), flip(b.Get(u64(7)), 2+32+8)) }},
		{"stored list edited", "kt_lists", "list of identity", func(b *bolt.Bucket) error {
			k, v := b.Cursor().First()
			return b.Put(bytes.Clone(k), flip(v, len(v)-1))
		}},
		{"list index moved to another leaf", "kt_lists", "is not the one its leaf", func(b *bolt.Bucket) error {
			k, v := b.Cursor().First()
			v = bytes.Clone(v)
			binary.BigEndian.PutUint64(v[8:], binary.BigEndian.Uint64(v[8:])-3) // the same person's previous leaf
			return b.Put(bytes.Clone(k), v)
		}},
	} {
		d := ktFixture(t)
		edit(t, d, c.bucket, c.f)
		err := ktVerify([]string{"--data", d}, &out, &errb)
		if err == nil || !strings.Contains(err.Error(), "does NOT verify") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want a mismatch naming %q", c.name, err, c.want)
		}
	}
	// Another key's fingerprint pinned: refused.
	if err := ktVerify([]string{"--data", dir, "--key-fingerprint", strings.Repeat("ab", 32)}, &out, &errb); err == nil {
		t.Error("a wrong pinned key passed")
	}
}
