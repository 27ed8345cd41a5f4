package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// BlobDir is the directory of blob files inside Config.DataDir. Each blob
// is one file named by the hex of its store.BlobKey (a hash of the blob
// ID), so a listing of the directory reveals no download capability.
const BlobDir = "blobs"

// Hash labels (protocol/SPEC.md section 12.5).
const (
	blobKeyLabel   = "postern.v1 blob-id"
	blobTokenLabel = "postern.v1 blob-token"
	blobQuotaLabel = "postern.v1 blob-quota"
)

const (
	// blobBufferSize is the one buffer an upload streams through: an
	// upload costs this much memory whatever the blob's size.
	blobBufferSize = 1 << 20
	// blobCommitEvery: a long upload fsyncs and commits its whole chunks
	// at least this often, so a relay crash loses at most this much of it.
	blobCommitEvery = 64 << 20
	// blobIdleTimeout ends a blob transfer that makes no progress for this
	// long. The HTTP server has no overall read or write timeout (a 4 GiB
	// transfer over a slow link takes hours): each read of an upload and
	// each read of a download's file pushes the deadline on.
	blobIdleTimeout = 2 * time.Minute
	// unfinishedBlobRetention is protocol.UnfinishedBlobRetention as a
	// duration.
	unfinishedBlobRetention = time.Duration(protocol.UnfinishedBlobRetention) * time.Second
)

// blobKey is what the store and the file system know a blob by.
func blobKey(id protocol.BlobID) store.BlobKey {
	h := sha256.New()
	h.Write([]byte(blobKeyLabel))
	h.Write(id[:])
	var k store.BlobKey
	h.Sum(k[:0])
	return k
}

// blobTokenHash is what the store keeps of an upload token.
func blobTokenHash(t protocol.BlobToken) store.BlobTokenHash {
	h := sha256.New()
	h.Write([]byte(blobTokenLabel))
	h.Write(t[:])
	var out store.BlobTokenHash
	h.Sum(out[:0])
	return out
}

// blobQuotaSlot names the blob's entry in its uploader's quota ledger
// (store.QuotaSlot): only the token links it to the blob.
func blobQuotaSlot(t protocol.BlobToken) store.QuotaSlot {
	h := sha256.New()
	h.Write([]byte(blobQuotaLabel))
	h.Write(t[:])
	var out store.QuotaSlot
	h.Sum(out[:0])
	return out
}

// blobs is the relay's blob storage: the index in the store, the bytes in
// files under dir.
type blobs struct {
	dir string          // "" when the relay stores no blobs
	idx store.BlobStore // nil when the relay stores no blobs
	buf sync.Pool       // *[]byte of blobBufferSize

	mu       sync.Mutex
	active   map[store.BlobKey]*upload // one upload per blob at a time
	closing  bool
	uploads  sync.WaitGroup
	received atomic.Int64 // bytes written to blob files, for tests and stats
}

// upload is one PUT in progress.
type upload struct {
	rc         *http.ResponseController
	done       chan struct{} // closed when the upload has committed and let go
	mu         sync.Mutex
	stopped    bool // commit and return: the relay is shutting down, or…
	superseded bool // …a newer PUT of the same blob took over
}

// stop makes the upload commit what it has and return, waking a blocked
// read at once.
func (u *upload) stop(superseded bool) {
	u.mu.Lock()
	u.stopped = true
	u.superseded = u.superseded || superseded
	u.rc.SetReadDeadline(time.Unix(1, 0))
	u.mu.Unlock()
}

func (b *blobs) enabled() bool { return b.idx != nil && b.dir != "" }

func (b *blobs) path(k store.BlobKey) string { return filepath.Join(b.dir, hex.EncodeToString(k[:])) }

// initBlobs prepares the blob directory and deletes orphan files: files
// whose index entry does not exist (a crash between a purge's commit and
// its file removal, or a file created for an upload whose blob expired).
func (r *Relay) initBlobs() error {
	idx, ok := r.st.(store.BlobStore)
	if !ok || r.cfg.DataDir == "" {
		r.log.Warn("blob storage disabled: the store keeps no blob index or there is no data directory")
		return nil
	}
	dir := filepath.Join(r.cfg.DataDir, BlobDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("relay: blob directory: %w", err)
	}
	r.blobs.dir, r.blobs.idx = dir, idx
	r.blobs.active = map[store.BlobKey]*upload{}
	r.blobs.buf.New = func() any { b := make([]byte, blobBufferSize); return &b }
	n, err := r.collectOrphanBlobs(context.Background())
	if err != nil {
		return err
	}
	if n > 0 {
		r.log.Info("deleted orphan blob files", "files", n)
	}
	return nil
}

func (r *Relay) collectOrphanBlobs(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(r.blobs.dir)
	if err != nil {
		return 0, fmt.Errorf("relay: blob directory: %w", err)
	}
	n := 0
	for _, e := range entries {
		var k store.BlobKey
		if name := e.Name(); len(name) != 2*len(k) || !e.Type().IsRegular() {
			r.log.Warn("unexpected entry in the blob directory; left alone", "name", name)
			continue
		} else if _, err := hex.Decode(k[:], []byte(name)); err != nil {
			r.log.Warn("unexpected entry in the blob directory; left alone", "name", name)
			continue
		}
		_, err := r.blobs.idx.Blob(ctx, k)
		if errors.Is(err, store.ErrUnknownBlob) {
			if err := os.Remove(r.blobs.path(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return n, fmt.Errorf("relay: delete orphan blob file: %w", err)
			}
			n++
			continue
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// shutdownBlobs refuses new uploads, makes each upload in progress commit
// what it has and return, and waits for them (they use the store).
func (b *blobs) shutdown() {
	b.mu.Lock()
	b.closing = true
	for _, u := range b.active {
		u.stop(false)
	}
	b.mu.Unlock()
	b.uploads.Wait()
}

// PurgeExpiredBlobs deletes every blob whose expiry has passed (by
// Config.Now): its index entry, which frees its quota, then its file. It
// returns how many it deleted. The purge loop calls it with PurgeExpired.
func (r *Relay) PurgeExpiredBlobs(ctx context.Context) (int, error) {
	if !r.blobs.enabled() {
		return 0, nil
	}
	total := 0
	for {
		keys, err := r.blobs.idx.PurgeBlobs(ctx, r.cfg.Now(), r.cfg.PurgeBatch)
		// The index entries are gone (durably): a crash before the files
		// are removed leaves orphans, which the next start deletes.
		for _, k := range keys {
			if err := os.Remove(r.blobs.path(k)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				r.log.Error("delete expired blob file", "err", err)
			}
		}
		total += len(keys)
		r.cfg.Metrics.BlobsExpired(len(keys))
		if err != nil {
			return total, err
		}
		if len(keys) < r.cfg.PurgeBatch || ctx.Err() != nil {
			break
		}
	}
	if total > 0 {
		r.log.Info("blob purge", "blobs", total)
		r.auditCount(auditBlobPurge, "blobs", total)
	}
	return total, nil
}

// createBlob answers CreateBlob: it checks the size, reserves it against
// the device's quota and hands out a fresh ID and upload token.
func (c *conn) createBlob(id uint32, f *protocol.CreateBlob) {
	r := c.r
	if !r.blobs.enabled() {
		c.refuse(id, protocol.CodeInternal, "this relay does not store blobs")
		return
	}
	s := r.set()
	switch {
	case f.Size == 0 || f.Size%protocol.BlobCipherChunkSize != 0:
		c.refuse(id, protocol.CodeBlobSize, fmt.Sprintf("blob size must be a positive multiple of %d", protocol.BlobCipherChunkSize))
		return
	case f.Size > uint64(s.maxBlobSize):
		c.refuse(id, protocol.CodeBlobTooLarge, fmt.Sprintf("blob size above this relay's maximum of %d bytes", s.maxBlobSize))
		return
	}
	var bid protocol.BlobID
	var tok protocol.BlobToken
	rand.Read(bid[:])
	rand.Read(tok[:])
	now := r.cfg.Now()
	rec := store.Blob{
		Key:       blobKey(bid),
		Size:      f.Size,
		TokenHash: blobTokenHash(tok),
		Created:   now,
		Expires:   now.Add(unfinishedBlobRetention).Truncate(time.Second),
	}
	if err := r.blobs.idx.CreateBlob(c.ctx, rec, c.device, blobQuotaSlot(tok), uint64(s.blobQuota), protocol.MaxUnfinishedBlobs); err != nil {
		if errors.Is(err, store.ErrBlobQuota) {
			c.refuse(id, protocol.CodeBlobQuota, fmt.Sprintf("quota of %d bytes or %d unfinished uploads reached", s.blobQuota, protocol.MaxUnfinishedBlobs))
			return
		}
		c.storeRefusal(id, err)
		return
	}
	c.log.Info("blob created", "blob", bid.Short(), "size", f.Size)
	c.send(id, &protocol.BlobCreated{Blob: bid, Token: tok, Expires: uint64(rec.Expires.Unix())})
}
