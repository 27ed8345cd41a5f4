package relay

import (
	"encoding/hex"

	"github.com/postern/postern/protocol"
)

// BlobBytesReceived counts the upload bytes the relay wrote to blob files.
func (r *Relay) BlobBytesReceived() int64 { return r.blobs.received.Load() }

// BlobFileName is the name of a blob's file in DataDir/BlobDir.
func BlobFileName(id protocol.BlobID) string {
	k := blobKey(id)
	return hex.EncodeToString(k[:])
}
