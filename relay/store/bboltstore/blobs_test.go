package bboltstore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

const chunk = protocol.BlobCipherChunkSize

// TestBlobBucketsAddedAtOpen: a schema-1 file written before blobs existed
// gains the blob buckets at open, without a migration or a schema bump.
func TestBlobBucketsAddedAtOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "relay.db")
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bBlobs, bBlobUse, bBlobExp} {
			if err := tx.DeleteBucket(b); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	})
	db.Close()

	s, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close(); checkFile(t, path) }()
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0).UTC()
	b := store.Blob{Key: store.BlobKey{1}, Size: 2 * chunk, Created: now, Expires: now.Add(24 * time.Hour)}
	if err := s.CreateBlob(ctx, b, protocol.DeviceID{2}, store.QuotaSlot{1}, 10*chunk, 64); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Blob(ctx, b.Key); err != nil || got.Size != b.Size || got.Done() {
		t.Fatalf("Blob = %+v, %v", got, err)
	}
}

func TestBlobAccounting(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	now := time.Unix(1_800_000_000, 0).UTC()
	dev := protocol.DeviceID{9}
	mk := func(k byte, size uint64) store.Blob {
		return store.Blob{Key: store.BlobKey{k}, Size: size, Created: now, Expires: now.Add(24 * time.Hour)}
	}
	if err := s.CreateBlob(ctx, mk(1, 4*chunk), dev, store.QuotaSlot{1}, 6*chunk, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBlob(ctx, mk(2, 3*chunk), dev, store.QuotaSlot{2}, 6*chunk, 2); !errors.Is(err, store.ErrBlobQuota) {
		t.Fatalf("over quota: %v", err)
	}
	if err := s.CreateBlob(ctx, mk(2, 2*chunk), dev, store.QuotaSlot{2}, 6*chunk, 2); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBlob(ctx, mk(3, 0), dev, store.QuotaSlot{3}, 6*chunk, 2); !errors.Is(err, store.ErrBlobQuota) {
		t.Fatalf("third unfinished: %v", err)
	}
	// Commits move forward from the stored length only.
	if _, err := s.CommitBlob(ctx, store.BlobKey{1}, store.QuotaSlot{1}, chunk, 2*chunk, now, now); !errors.Is(err, store.ErrBlobOffset) {
		t.Fatalf("commit from the wrong length: %v", err)
	}
	if _, err := s.CommitBlob(ctx, store.BlobKey{1}, store.QuotaSlot{1}, 0, 2*chunk, now, now); err != nil {
		t.Fatal(err)
	}
	fin := now.Add(time.Hour)
	b, err := s.CommitBlob(ctx, store.BlobKey{1}, store.QuotaSlot{1}, 2*chunk, 4*chunk, fin, fin.Add(48*time.Hour))
	if err != nil || !b.Done() || !b.Expires.Equal(fin.Add(48*time.Hour)) {
		t.Fatalf("finishing commit: %+v, %v", b, err)
	}
	if u, _ := s.BlobUsage(ctx, dev); u != (store.BlobUsage{Bytes: 6 * chunk, Unfinished: 1}) {
		t.Fatalf("usage %+v", u)
	}
	// At +24 h the unfinished one expires; the finished one lives on.
	keys, err := s.PurgeBlobs(ctx, now.Add(24*time.Hour), 100)
	if err != nil || len(keys) != 1 || keys[0] != (store.BlobKey{2}) {
		t.Fatalf("purge: %v, %v", keys, err)
	}
	if u, _ := s.BlobUsage(ctx, dev); u != (store.BlobUsage{Bytes: 4 * chunk}) {
		t.Fatalf("usage after purge %+v", u)
	}
	keys, _ = s.PurgeBlobs(ctx, fin.Add(48*time.Hour), 100)
	if len(keys) != 1 || keys[0] != (store.BlobKey{1}) {
		t.Fatalf("second purge: %v", keys)
	}
	if u, _ := s.BlobUsage(ctx, dev); u != (store.BlobUsage{}) {
		t.Fatalf("usage after both purges %+v", u)
	}
	if _, err := s.Blob(ctx, store.BlobKey{1}); !errors.Is(err, store.ErrUnknownBlob) {
		t.Fatalf("purged blob: %v", err)
	}
}
