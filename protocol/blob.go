package protocol

import (
	"encoding/hex"
	"time"
)

// Attachments travel as blobs: the client encrypts a file in fixed-size
// chunks (SPEC.md section 12), asks the relay for a blob over its
// authenticated WebSocket (CreateBlob), uploads the ciphertext over HTTP
// with the upload token, and sends the blob ID, key and digest inside a
// session message. Anyone holding the blob ID may download it: the ID is
// 256 random bits, and the content is ciphertext.

// BlobID names a blob: 32 random bytes chosen by the relay. It is the
// download capability, so it is never logged whole.
type BlobID [32]byte

// BlobToken authorises uploading one blob. The relay stores only its hash.
type BlobToken [32]byte

// String is the lowercase hex form used in URLs.
func (b BlobID) String() string { return hex.EncodeToString(b[:]) }

// Short is the first four bytes in hex, for logs.
func (b BlobID) Short() string { return hex.EncodeToString(b[:4]) }

// ParseBlobID reads the hex form.
func ParseBlobID(s string) (BlobID, error) {
	var b BlobID
	if len(s) != 2*len(b) {
		return b, errorf(ErrMalformed, "blob id of %d characters, want %d", len(s), 2*len(b))
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return b, errorf(ErrMalformed, "blob id is not hex")
	}
	return b, nil
}

// String redacts: the token is a secret.
func (t BlobToken) String() string { return "BlobToken(REDACTED)" }

// GoString redacts for %#v as well.
func (t BlobToken) GoString() string { return t.String() }

// Blob transfer over HTTP (SPEC.md section 12).
const (
	// BlobPath prefixes a blob's URL: BlobPath + BlobID.String().
	BlobPath = "/v1/blobs/"
	// BlobChunkSize is the plaintext size of one attachment chunk.
	BlobChunkSize = 64 << 10
	// BlobChunkOverhead is the AEAD tag added to every chunk.
	BlobChunkOverhead = 16
	// BlobCipherChunkSize is one encrypted chunk: uploads resume at, and
	// relays commit, multiples of it.
	BlobCipherChunkSize = BlobChunkSize + BlobChunkOverhead
	// DefaultMaxBlobSize is the largest blob (ciphertext, padded) a relay
	// accepts unless configured otherwise: 4 GiB.
	DefaultMaxBlobSize = 4 << 30
	// DefaultBlobQuota is the default total size of the live and
	// unfinished blobs of one device: 10 GiB.
	DefaultBlobQuota = 10 << 30
	// DefaultBlobRetention is how long a finished blob is kept: one day
	// more than an envelope, because the envelope that announces a blob is
	// sent after its upload finished, and a recipient who receives it on
	// its last day must still be able to fetch the file.
	DefaultBlobRetention = DefaultRetention + 24*time.Hour
	// UnfinishedBlobRetention is how long an upload may stay incomplete.
	UnfinishedBlobRetention = 24 * 3600 // seconds
	// MaxUnfinishedBlobs bounds the incomplete uploads of one device.
	MaxUnfinishedBlobs = 64

	// HTTPHeaderOffset carries an upload's offset (request) and the committed
	// length (response).
	HTTPHeaderOffset = "Postern-Offset"
	// HTTPHeaderSize carries a blob's full size in HEAD responses.
	HTTPHeaderSize = "Postern-Size"
	// HTTPHeaderError carries a numbered error code on refused HTTP requests.
	HTTPHeaderError = "Postern-Error"
)

// CreateBlob (0x0d) asks for a new blob of Size ciphertext bytes: a
// multiple of BlobCipherChunkSize, at most the relay's maximum. The
// relay reserves it against the device's quota.
type CreateBlob struct{ Size uint64 }

func (*CreateBlob) Type() FrameType { return TypeCreateBlob }
func (f *CreateBlob) appendBody(b []byte) ([]byte, error) {
	return appendU64(b, f.Size), nil
}
func (f *CreateBlob) parseBody(r *Reader) { f.Size = r.U64("blob size") }

// BlobCreated (0x8a) answers CreateBlob.
type BlobCreated struct {
	Blob    BlobID
	Token   BlobToken
	Expires uint64 // Unix seconds: the upload must finish by then
}

func (*BlobCreated) Type() FrameType { return TypeBlobCreated }
func (f *BlobCreated) appendBody(b []byte) ([]byte, error) {
	b = append(b, f.Blob[:]...)
	b = append(b, f.Token[:]...)
	return appendU64(b, f.Expires), nil
}
func (f *BlobCreated) parseBody(r *Reader) {
	r.Array(f.Blob[:], "blob id")
	r.Array(f.Token[:], "blob token")
	f.Expires = r.U64("expires")
}
