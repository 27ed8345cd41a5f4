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

// QuotaSlot names a blob's entry in its uploader's quota ledger: a hash
// of the blob's upload token under a label of its own (the relay computes
// it when the blob is created and at each upload). The store keeps the
// slot with the device and the reserved bytes, and the token's other hash
// with the blob: without the token, which the store never holds, nothing
// stored links a blob to the device that uploads it.
type QuotaSlot [32]byte

// Blob is the index record of one blob. The bytes themselves live in a
// file the relay manages; the record says how many of them are committed.
// It does not name the device that created it (QuotaSlot).
type Blob struct {
	Key       BlobKey
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
	// against owner's quota in a ledger entry named slot, unfinished:
	// ErrBlobQuota if owner's reserved bytes would pass quota or it
	// already has maxUnfinished unfinished blobs. The blob record does not
	// name owner.
	CreateBlob(ctx context.Context, b Blob, owner protocol.DeviceID, slot QuotaSlot, quota uint64, maxUnfinished int) error
	// Blob returns the record, or ErrUnknownBlob. It does not check expiry.
	Blob(ctx context.Context, key BlobKey) (Blob, error)
	// CommitBlob moves the committed length from from to to (ErrBlobOffset
	// if the stored length is not from; ErrUnknownBlob if the record is
	// gone). When to reaches the size the blob is finished at now and
	// expires at finishedExpiry, and its ledger entry slot (if any) stops
	// counting as unfinished and expires with it. It returns the updated
	// record.
	CommitBlob(ctx context.Context, key BlobKey, slot QuotaSlot, from, to uint64, now, finishedExpiry time.Time) (Blob, error)
	// PurgeBlobs deletes up to max records whose expiry is at or before now,
	// and the ledger entries whose expiry has passed (releasing their
	// bytes), and returns the blobs' keys so that the caller can delete the
	// files.
	PurgeBlobs(ctx context.Context, now time.Time, max int) ([]BlobKey, error)
	// BlobUsage returns a device's reserved bytes and unfinished count.
	BlobUsage(ctx context.Context, dev protocol.DeviceID) (BlobUsage, error)
}
