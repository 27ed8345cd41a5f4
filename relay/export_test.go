package relay

import (
	"encoding/hex"
	"time"

	"github.com/postern/postern/protocol"
)

// BlobBytesReceived counts the upload bytes the relay wrote to blob files.
func (r *Relay) BlobBytesReceived() int64 { return r.blobs.received.Load() }

// BlobFileName is the name of a blob's file in DataDir/BlobDir.
func BlobFileName(id protocol.BlobID) string {
	k := blobKey(id)
	return hex.EncodeToString(k[:])
}

// SetAuthFailurePenalty sets the delay of a failed authentication on
// probation until the test ends.
func SetAuthFailurePenalty(t interface{ Cleanup(func()) }, d time.Duration) {
	old := authFailurePenalty.set(d)
	t.Cleanup(func() { authFailurePenalty.set(old) })
}

// SetBlobRateWindow sets the window of the minimum upload rate until the
// test ends.
func SetBlobRateWindow(t interface{ Cleanup(func()) }, d time.Duration) {
	old := blobRateWindow.set(d)
	t.Cleanup(func() { blobRateWindow.set(old) })
}
