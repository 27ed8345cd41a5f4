package bboltstore

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// testDirectory is a directory publish under log key {k} at version v,
// with publishing capability hash {c}.
func testDirectory(k byte, v uint64, c byte) store.DirectoryPublish {
	h := sha256.Sum256([]byte{k, byte(v)})
	e := kt.Entry{Identity: [32]byte{k}, Version: v, ListHash: h}
	return store.DirectoryPublish{LogKey: [32]byte{k}, Version: v, Hash: h, Capability: protocol.CapabilityHash{c}, Entry: e.Bytes()}
}

// TestDirectoryPublishAndAnswer: directory leaves join the device lists'
// tree; the first publish sets the capability, a wrong one or a version
// not above the logged one changes nothing; answers prove the newest
// leaf in the newest head, with consistency from an older head; the
// offline check accepts the log.
func TestDirectoryPublishAndAnswer(t *testing.T) {
	s, _ := openTest(t)
	sign, signer := testSigner(t)
	if _, err := s.DirectoryAnswer(ctx, [32]byte{7}, 0); !errors.Is(err, store.ErrUnknownDirectory) {
		t.Fatalf("answer on an empty log: %v", err)
	}
	if _, err := s.PublishDeviceList(ctx, testPublish(1, 1, 0), sign); err != nil {
		t.Fatal(err)
	}
	pub, err := s.PublishDirectory(ctx, testDirectory(7, 3, 0xc1), sign)
	if err != nil || pub.Index != 1 {
		t.Fatalf("first publish: index %d, %v", pub.Index, err)
	}
	first, _ := kt.ParseHead(pub.Head, signer.Public())
	if _, err := s.PublishDeviceList(ctx, testPublish(1, 2, 1), sign); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PublishDirectory(ctx, testDirectory(7, 5, 0xc1), sign); err != nil {
		t.Fatal(err)
	}
	// Another organisation's log key has its own capability.
	if _, err := s.PublishDirectory(ctx, testDirectory(8, 1, 0xc2), sign); err != nil {
		t.Fatal(err)
	}
	headBefore, sizeBefore, _ := s.KTHead(ctx)
	for _, c := range []struct {
		name string
		p    store.DirectoryPublish
		want error
	}{
		{"same version", testDirectory(7, 5, 0xc1), store.ErrStaleDirectory},
		{"lower version", testDirectory(7, 4, 0xc1), store.ErrStaleDirectory},
		{"wrong capability", testDirectory(7, 6, 0xc2), store.ErrDirectoryCapability},
		{"wrong capability and stale", testDirectory(7, 1, 0xc2), store.ErrDirectoryCapability},
	} {
		if _, err := s.PublishDirectory(ctx, c.p, sign); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	bad := testDirectory(7, 6, 0xc1)
	bad.Hash[0] ^= 1
	if _, err := s.PublishDirectory(ctx, bad, sign); err == nil {
		t.Error("a publish whose entry is not its leaf was stored")
	}
	if h, n, _ := s.KTHead(ctx); n != sizeBefore || !bytes.Equal(h, headBefore) {
		t.Fatalf("a refused publish changed the log: size %d, was %d", n, sizeBefore)
	}
	a, err := s.DirectoryAnswer(ctx, [32]byte{7}, first.Size)
	if err != nil {
		t.Fatal(err)
	}
	want := testDirectory(7, 5, 0xc1)
	if a.Version != 5 || a.Hash != want.Hash || a.Index != 3 {
		t.Fatalf("answer: version %d index %d", a.Version, a.Index)
	}
	h, err := kt.ParseHead(a.Head, signer.Public())
	if err != nil || h.Size != 5 {
		t.Fatalf("answer head: %v", err)
	}
	e, _ := kt.ParseEntry(want.Entry)
	if err := kt.VerifyInclusion(e.LeafHash(), a.Index, h.Size, a.Inclusion, h.Root); err != nil {
		t.Fatal(err)
	}
	if err := kt.VerifyConsistency(first.Size, h.Size, first.Root, h.Root, a.Consistency); err != nil {
		t.Fatal(err)
	}
	// The device list's answer proves its leaf in the same tree.
	la, err := s.KTAnswer(ctx, [32]byte{1}, 0)
	if err != nil || !bytes.Equal(la.Head, a.Head) {
		t.Fatalf("device list answer: %v", err)
	}
}

// TestDirectoryVerify: the offline check accepts logged directories and
// names a directory record that its leaf does not record.
func TestDirectoryVerify(t *testing.T) {
	s, path := openTest(t)
	sign, signer := testSigner(t)
	for v := uint64(1); v <= 3; v++ {
		if _, err := s.PublishDirectory(ctx, testDirectory(7, v, 0xc1), sign); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.PublishDirectory(ctx, testDirectory(8, 1, 0xc2), sign); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rep, err := VerifyKT(path, signer.Public())
	if err != nil || rep.Size != 4 || rep.Directories != 2 || rep.Heads != 4 {
		t.Fatalf("offline check: %+v, %v", rep, err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bKTDirectories)
		v := bytes.Clone(b.Get([]byte{7, 31: 0}))
		v[7] = 2 // version 2 at the index of version 3's leaf
		return b.Put([]byte{7, 31: 0}, v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyKT(path, signer.Public()); !errors.Is(err, ErrKTMismatch) {
		t.Fatalf("a changed directory record passed: %v", err)
	}
}
