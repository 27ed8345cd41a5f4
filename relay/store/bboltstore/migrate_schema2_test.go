package bboltstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// The schema-2 fixture, testdata/relay/schema2.db, is the schema-1 fixture
// opened by the schema-2 code (migrated to schema 2) with two more blobs
// of alice-phone's written through the schema-2 Store API: one finished
// (2 chunks), one unfinished (3 chunks, 1 committed). It is what a
// schema-2 relay leaves on disk; its README says how it was made.
const schema2FixturePath = "../../../testdata/relay/schema2.db"

func copySchema2(t *testing.T) (string, []byte) {
	t.Helper()
	b, err := os.ReadFile(schema2FixturePath)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "relay.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, b
}

// TestMigrateSchema2Fixture: a file written by the schema-2 code opens with
// this code: backed up byte for byte, migrated in one transaction to
// schema 3, every bucket but blobs unchanged, blob records without their
// owner (no device ID anywhere in them), one quota ledger entry per blob
// naming its owner, each device's usage the same, and quotas enforced on
// it afterwards.
func TestMigrateSchema2Fixture(t *testing.T) {
	path, fixture := copySchema2(t)
	if v, err := FileSchema(path); err != nil || v != 2 {
		t.Fatalf("fixture schema = %d, %v; want 2", v, err)
	}
	before := dumpFile(t, path)
	if len(before["blobs"].records) != 3 {
		t.Fatalf("fixture has %d blobs, want 3", len(before["blobs"].records))
	}
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	checkFile(t, path)
	if bak, err := os.ReadFile(path + fmt.Sprintf(BackupSuffix, 2)); err != nil || !bytes.Equal(bak, fixture) {
		t.Errorf("automatic backup: %v (or it differs from the schema-2 file)", err)
	}
	after := dumpFile(t, path)
	if v, err := FileSchema(path); err != nil || v != SchemaVersion {
		t.Errorf("schema after migration = %d, %v", v, err)
	}
	owners := map[string]bool{}
	for name, b := range before {
		a := after[name]
		if a == nil {
			t.Fatalf("bucket %s gone", name)
		}
		for k, v := range b.records {
			want := v
			switch name {
			case "blobs":
				owners[string(v[:32])] = true
				want = v[32:]
			case "meta":
				if k == string(keySchema) {
					want = binary.BigEndian.AppendUint32(nil, SchemaVersion)
				}
			}
			if !bytes.Equal(a.records[k], want) {
				t.Errorf("bucket %s: key %x changed", name, k)
			}
		}
		if len(a.records) != len(b.records) || a.seq != b.seq {
			t.Errorf("bucket %s: %d records (seq %d), was %d (seq %d)", name, len(a.records), a.seq, len(b.records), b.seq)
		}
	}
	for _, v := range after["blobs"].records {
		for o := range owners {
			if bytes.Contains(v, []byte(o)) {
				t.Error("a blob record still holds its owner's device ID")
			}
		}
	}
	ledger := after["blob_quota"]
	if ledger == nil || len(ledger.records) != 3 || len(after["blob_quota_exp"].records) != 3 {
		t.Fatalf("quota ledger: %+v", ledger)
	}
	perDev := map[string]uint64{}
	for _, v := range ledger.records {
		q, err := decodeQuota(v)
		if err != nil {
			t.Fatal(err)
		}
		perDev[string(q.dev[:])] += q.bytes
	}
	for dev, v := range before["blob_use"].records {
		if got := binary.BigEndian.Uint64(v[:8]); perDev[dev] != got {
			t.Errorf("device %x: ledger holds %d bytes, usage says %d", dev[:4], perDev[dev], got)
		}
	}

	// Quotas hold on the migrated file: a device at its quota is refused.
	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for dev := range before["blob_use"].records {
		d := protocol.DeviceID([]byte(dev))
		u, err := s.BlobUsage(ctx, d)
		if err != nil || u.Bytes != binary.BigEndian.Uint64(before["blob_use"].records[dev][:8]) {
			t.Errorf("usage after migration %+v, %v", u, err)
		}
		nb := store.Blob{Key: store.BlobKey{0xaa}, Size: protocol.BlobCipherChunkSize, Created: fixtureT0, Expires: fixtureT0.Add(24 * time.Hour)}
		if err := s.CreateBlob(ctx, nb, d, store.QuotaSlot{0xaa}, u.Bytes+protocol.BlobCipherChunkSize-1, 64); !errors.Is(err, store.ErrBlobQuota) {
			t.Errorf("over quota after migration: %v", err)
		}
		if err := s.CreateBlob(ctx, nb, d, store.QuotaSlot{0xaa}, u.Bytes+protocol.BlobCipherChunkSize, 64); err != nil {
			t.Errorf("within quota after migration: %v", err)
		}
	}
	// The upload that was unfinished at the migration can finish.
	k2 := store.BlobKey(sha256.Sum256([]byte("schema2 fixture blob unfinished")))
	if b, err := s.CommitBlob(ctx, k2, store.QuotaSlot{0xbb}, protocol.BlobCipherChunkSize, 3*protocol.BlobCipherChunkSize, fixtureT0, fixtureT0.Add(time.Hour)); err != nil || !b.Done() {
		t.Errorf("finishing a migrated upload: %+v, %v", b, err)
	}
}

// TestMigrateSchema2Fails: a blob record that is not a schema-2 record
// stops the migration and leaves the file as it was.
func TestMigrateSchema2Fails(t *testing.T) {
	path, _ := copySchema2(t)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bBlobs).Put(bytes.Repeat([]byte{7}, 32), []byte("short")) })
	db.Close()
	before, _ := os.ReadFile(path)
	if _, err := Open(path, nil); err == nil {
		t.Fatal("migration over a damaged blob record succeeded")
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("a failed migration changed the file")
	}
}

// TestBlobRecordNamesNoDevice: CreateBlob stores no device ID with the
// blob, and the ledger entry only the upload token's slot links to it.
func TestBlobRecordNamesNoDevice(t *testing.T) {
	s, _ := openTest(t)
	dev := protocol.DeviceID{0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a}
	b := store.Blob{Key: store.BlobKey{3}, Size: protocol.BlobCipherChunkSize, Created: t0, Expires: t0.Add(24 * time.Hour)}
	if err := s.CreateBlob(ctx, b, dev, store.QuotaSlot{4}, 1<<30, 64); err != nil {
		t.Fatal(err)
	}
	s.view(func(tx *bolt.Tx) error {
		for _, bn := range [][]byte{bBlobs, bBlobExp} {
			tx.Bucket(bn).ForEach(func(k, v []byte) error {
				if bytes.Contains(k, dev[:8]) || bytes.Contains(v, dev[:8]) {
					t.Errorf("bucket %s names the device", bn)
				}
				return nil
			})
		}
		if q, err := decodeQuota(tx.Bucket(bBlobQuota).Get([]byte{4, 31: 0})); err != nil || q.dev != dev || !q.unfinished || q.expires%3600 != 0 {
			t.Errorf("ledger entry %+v, %v", q, err)
		}
		return nil
	})
	if _, err := s.CommitBlob(ctx, b.Key, store.QuotaSlot{4}, 0, protocol.BlobCipherChunkSize, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.BlobUsage(ctx, dev); u != (store.BlobUsage{Bytes: protocol.BlobCipherChunkSize}) {
		t.Errorf("usage after finishing: %+v", u)
	}
}
