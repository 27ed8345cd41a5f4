package store

import (
	"context"
	"time"

	"github.com/postern/postern/protocol"
)

// BlobKey names a blob in storage: a hash of its protocol.BlobID (the
// relay computes it). The store, the blob files and any listing of them
// hold only keys, never the IDs, which are download capabilities.
type BlobKey [32]byte

// BlobTokenHash is the hash of a blob's upload token: what the store keeps.
type BlobTokenHash [32]byte

// Blob is the index record of one blob. The bytes themselves live in a
// file the relay manages; the record says how many of them are committed.
type Blob struct {
	Key       BlobKey
	Owner     protocol.DeviceID
	Size      uint64 // the reserved (padded ciphertext) size
	Committed uint64 // durable length: a multiple of protocol.BlobCipherChunkSize
	TokenHash BlobTokenHash
	Created   time.Time
	Finished  time.Time // zero while the upload is incomplete
	Expires   time.Time
}

// Done reports whether the upload finished.
func (b Blob) Done() bool { return !b.Finished.IsZero() }

// BlobUsage is what one device holds: the bytes reserved by its live and
// unfinished blobs, and how many are unfinished.
type BlobUsage struct {
	Bytes      uint64
	Unfinished int
}

// BlobStore is the blob index. A Store that also implements it lets the
// relay accept blobs; the default bboltstore does.
type BlobStore interface {
	// CreateBlob records b (Committed 0, unfinished) and reserves b.Size
	// against the owner's quota: ErrBlobQuota if the owner's reserved bytes
	// would pass quota or it already has maxUnfinished unfinished blobs.
	CreateBlob(ctx context.Context, b Blob, quota uint64, maxUnfinished int) error
	// Blob returns the record, or ErrUnknownBlob. It does not check expiry.
	Blob(ctx context.Context, key BlobKey) (Blob, error)
	// CommitBlob moves the committed length from from to to (ErrBlobOffset
	// if the stored length is not from; ErrUnknownBlob if the record is
	// gone). When to reaches the size the blob is finished at now and
	// expires at finishedExpiry. It returns the updated record.
	CommitBlob(ctx context.Context, key BlobKey, from, to uint64, now, finishedExpiry time.Time) (Blob, error)
	// PurgeBlobs deletes up to max records whose expiry is at or before now,
	// releasing their quota, and returns their keys so that the caller can
	// delete the files.
	PurgeBlobs(ctx context.Context, now time.Time, max int) ([]BlobKey, error)
	// BlobUsage returns a device's reserved bytes and unfinished count.
	BlobUsage(ctx context.Context, dev protocol.DeviceID) (BlobUsage, error)
}
