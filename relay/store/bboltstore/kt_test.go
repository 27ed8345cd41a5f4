package bboltstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/keys/hybrid"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// testSigner signs heads with a fresh hybrid key, as the relay does.
func testSigner(t testing.TB) (store.SignHead, *hybrid.Signer) {
	s, err := hybrid.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return func(size uint64, root [32]byte) ([]byte, error) {
		h := &kt.Head{RelayKey: s.Public().Fingerprint(), Size: size, Root: root, Time: time.Unix(1772366400, 0)}
		sig, err := s.Sign(kt.ContextHead, h.SignedPart())
		if err != nil {
			return nil, err
		}
		h.Signature = sig
		return h.Bytes(), nil
	}, s
}

// testPublish is a publish of list bytes for identity id at version v
// (the store does not parse lists: the relay verifies them).
func testPublish(id byte, v, prev uint64) store.Publish {
	list := []byte(fmt.Sprintf("list of %d version %d", id, v))
	e := kt.Entry{Identity: [32]byte{id}, Version: v, ListHash: sha256.Sum256(list)}
	return store.Publish{Identity: [32]byte{id}, Version: v, Prev: prev, List: list, Entry: e.Bytes()}
}

// TestKTPublishAndAnswer: publishes append one leaf each; a stale or raced
// version changes nothing; every answer's inclusion proof verifies under
// its head, whose signature verifies; consistency proofs link old heads.
func TestKTPublishAndAnswer(t *testing.T) {
	s, _ := openTest(t)
	sign, signer := testSigner(t)
	if _, err := s.KTAnswer(ctx, [32]byte{1}, 0); !errors.Is(err, store.ErrUnknownIdentity) {
		t.Fatalf("answer on an empty log: %v", err)
	}
	if h, n, err := s.KTHead(ctx); h != nil || n != 0 || err != nil {
		t.Fatalf("empty log head: %v %d %v", h, n, err)
	}
	var heads []*kt.Head
	versions := map[byte]uint64{}
	for i := 0; i < 40; i++ {
		id := byte(i%5 + 1)
		p := testPublish(id, versions[id]+1, versions[id])
		pub, err := s.PublishDeviceList(ctx, p, sign)
		if err != nil {
			t.Fatal(err)
		}
		versions[id]++
		h, err := kt.ParseHead(pub.Head, signer.Public())
		if err != nil || pub.Index != uint64(i) || h.Size != uint64(i+1) {
			t.Fatalf("publish %d: index %d, head %v", i, pub.Index, err)
		}
		heads = append(heads, h)
	}
	headBefore, sizeBefore, _ := s.KTHead(ctx)
	for _, c := range []struct {
		name string
		p    store.Publish
		want error
	}{
		{"same version", testPublish(1, versions[1], versions[1]), store.ErrStaleDeviceList},
		{"older version", testPublish(1, 1, versions[1]), store.ErrStaleDeviceList},
		{"raced (prev is not the stored version)", testPublish(1, versions[1]+1, versions[1]-1), store.ErrDeviceListMoved},
		{"first list with a prev", testPublish(9, 1, 1), store.ErrDeviceListMoved},
	} {
		if _, err := s.PublishDeviceList(ctx, c.p, sign); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if h, n, _ := s.KTHead(ctx); n != sizeBefore || !bytes.Equal(h, headBefore) {
		t.Errorf("a refused publish changed the log: size %d, was %d", n, sizeBefore)
	}
	if sl, err := s.DeviceList(ctx, [32]byte{1}); err != nil || sl.Version != versions[1] {
		t.Errorf("a refused publish changed the stored list: %v", err)
	}
	if _, err := s.DeviceList(ctx, [32]byte{9}); !errors.Is(err, store.ErrUnknownIdentity) {
		t.Errorf("a refused first publish stored a list: %v", err)
	}
	latest := heads[len(heads)-1]
	for id := byte(1); id <= 5; id++ {
		for _, known := range []uint64{0, 1, 7, 39, 40, 41} {
			a, err := s.KTAnswer(ctx, [32]byte{id}, known)
			if err != nil {
				t.Fatal(err)
			}
			h, err := kt.ParseHead(a.Head, signer.Public())
			if err != nil || h.Size != latest.Size || h.Root != latest.Root {
				t.Fatalf("answer head: %v", err)
			}
			want := testPublish(id, versions[id], 0)
			if a.Version != versions[id] || !bytes.Equal(a.List, want.List) {
				t.Fatalf("identity %d: version %d, want %d", id, a.Version, versions[id])
			}
			e, _ := kt.ParseEntry(want.Entry)
			if err := kt.VerifyInclusion(e.LeafHash(), a.Index, h.Size, a.Inclusion, h.Root); err != nil {
				t.Fatalf("identity %d: %v", id, err)
			}
			if known > 0 && known < h.Size {
				k := heads[known-1]
				if err := kt.VerifyConsistency(k.Size, h.Size, k.Root, h.Root, a.Consistency); err != nil {
					t.Fatalf("consistency %d -> %d: %v", known, h.Size, err)
				}
			} else if len(a.Consistency) != 0 {
				t.Fatalf("known size %d: consistency proof of %d hashes", known, len(a.Consistency))
			}
		}
	}
}

// TestKTPublishRevokes: the devices a publish names are revoked in its
// transaction, with their data; unknown or already revoked ones are
// skipped.
func TestKTPublishRevokes(t *testing.T) {
	s, _ := openTest(t)
	sign, _ := testSigner(t)
	now := time.Unix(1772366400, 0)
	for _, b := range []byte{1, 2} {
		if _, err := s.EnrollDevice(ctx, store.Device{ID: protocol.DeviceID{b}, PublicKey: []byte{b}, Enrolled: now}, nil, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateMailbox(ctx, protocol.DeviceID{2}, protocol.MailboxID{2}); err != nil {
		t.Fatal(err)
	}
	p := testPublish(1, 1, 0)
	p.Revoke = []protocol.DeviceID{{2}, {3}}
	pub, err := s.PublishDeviceList(ctx, p, sign)
	if err != nil || len(pub.Revoked) != 1 || pub.Revoked[0] != (protocol.DeviceID{2}) {
		t.Fatalf("publish: %v, revoked %v", err, pub.Revoked)
	}
	if d, err := s.Device(ctx, protocol.DeviceID{2}); err != nil || !d.Revoked {
		t.Fatalf("device 2 not revoked: %v", err)
	}
	if _, err := s.MailboxOwner(ctx, protocol.MailboxID{2}); !errors.Is(err, store.ErrUnknownMailbox) {
		t.Fatalf("the revoked device's mailbox survived: %v", err)
	}
	if d, _ := s.Device(ctx, protocol.DeviceID{1}); d.Revoked {
		t.Fatal("device 1 revoked")
	}
}

// TestKTHeadsKept: only the newest KeptHeads heads stay.
func TestKTHeadsKept(t *testing.T) {
	defer func(n uint64) { KeptHeads = n }(KeptHeads)
	KeptHeads = 3
	s, path := openTest(t)
	sign, _ := testSigner(t)
	for v := uint64(1); v <= 6; v++ {
		if _, err := s.PublishDeviceList(ctx, testPublish(1, v, v-1), sign); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	heads := dumpFile(t, path)["kt_heads"].records
	if len(heads) != 3 {
		t.Fatalf("%d heads kept, want 3", len(heads))
	}
	for size := uint64(4); size <= 6; size++ {
		if heads[string(u64Key(size))] == nil {
			t.Fatalf("head of size %d gone", size)
		}
	}
}

// TestMigrateSchema3: a schema-3 file (what the previous release leaves:
// no kt_ buckets) is backed up and migrated in one transaction: the four
// empty kt_ buckets appear, schema 4 is recorded, nothing else changes.
func TestMigrateSchema3(t *testing.T) {
	s, path := openTest(t)
	now := time.Unix(1772366400, 0)
	if _, err := s.EnrollDevice(ctx, store.Device{ID: protocol.DeviceID{7}, PublicKey: []byte{7}, Enrolled: now}, nil, now); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateMailbox(ctx, protocol.DeviceID{7}, protocol.MailboxID{7}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// Make it what schema 3 wrote.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bKTLists, bKTLeaves, bKTNodes, bKTHeads} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bMeta).Put(keySchema, binary.BigEndian.AppendUint32(nil, 3))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	before := dumpFile(t, path)
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	sign, _ := testSigner(t)
	if _, err := s2.PublishDeviceList(ctx, testPublish(1, 1, 0), sign); err != nil {
		t.Fatalf("publish after the migration: %v", err)
	}
	s2.Close()
	if v, err := FileSchema(path + fmt.Sprintf(BackupSuffix, 3)); err != nil || v != 3 {
		t.Fatalf("backup before the migration: schema %d, %v", v, err)
	}
	if v, err := FileSchema(path); err != nil || v != 4 {
		t.Fatalf("schema %d, %v; want 4", v, err)
	}
	after := dumpFile(t, path)
	for name, b := range before {
		for k, v := range b.records {
			if name == "meta" && k == string(keySchema) {
				continue
			}
			if !bytes.Equal(after[name].records[k], v) {
				t.Errorf("bucket %s key %x changed", name, k)
			}
		}
	}
	for _, b := range []string{"kt_lists", "kt_leaves", "kt_nodes", "kt_heads"} {
		if after[b] == nil {
			t.Errorf("bucket %s missing after the migration", b)
		}
	}
}
