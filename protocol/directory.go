package protocol

import (
	"crypto/sha256"
)

// Organisation directories in the transparency log (SPEC.md section 4,
// section 10 "Key transparency" and section 15.7 "Transport and the
// transparency log"). The relay never sees a directory: it logs one leaf
// per published version, (log key, version, hash), beside the device
// lists' leaves in the same tree, and proves it as it proves a device
// list. Publishing needs an authenticated device and the organisation's
// publishing capability, whose hash the first publish for a log key sets.

// Frame types of organisation directories.
const (
	TypePublishDirectory FrameType = 0x1a
	TypeFetchDirectory   FrameType = 0x1b

	TypeDirectoryLeaf FrameType = 0x8f
)

// directoryCapabilityLabel separates the hash of a directory publishing
// capability from mailbox capability hashes of the same 32 bytes.
const directoryCapabilityLabel = LabelPrefix + "directory-capability"

// DirectoryHash is SHA-256("postern.v1 directory-capability" || token):
// what the relay stores and compares for a directory publishing
// capability.
func (t CapabilityToken) DirectoryHash() CapabilityHash {
	h := sha256.New()
	h.Write([]byte(directoryCapabilityLabel))
	h.Write(t.b[:])
	var out CapabilityHash
	h.Sum(out[:0])
	return out
}

// newDirectoryFrame is newFrame for the directory frames.
func newDirectoryFrame(t FrameType) Frame {
	switch t {
	case TypePublishDirectory:
		return new(PublishDirectory)
	case TypeFetchDirectory:
		return new(FetchDirectory)
	case TypeDirectoryLeaf:
		return new(DirectoryLeaf)
	}
	return nil
}

// PublishDirectory appends the leaf (LogKey, Version, Hash) of an
// organisation's new directory to the relay's log. It needs an
// authenticated device and the organisation's publishing capability: the
// first publish for LogKey sets the capability's hash, every later one
// must present the same capability, and Version must be above the logged
// one. The relay answers with a DirectoryLeaf frame (no consistency
// proof) once the leaf is durable.
type PublishDirectory struct {
	LogKey     [32]byte        // directory.LogKey(organisation ID)
	Version    uint64          // the directory's version, >= 1
	Hash       [32]byte        // directory.Hash(encoded directory)
	Capability CapabilityToken // the organisation's publishing capability
}

func (*PublishDirectory) Type() FrameType { return TypePublishDirectory }
func (f *PublishDirectory) appendBody(b []byte) ([]byte, error) {
	if f.Version == 0 {
		return nil, errorf(ErrMalformed, "directory version 0")
	}
	b = append(b, f.LogKey[:]...)
	b = appendU64(b, f.Version)
	b = append(b, f.Hash[:]...)
	return append(b, f.Capability.b[:]...), nil
}
func (f *PublishDirectory) parseBody(r *Reader) {
	r.Array(f.LogKey[:], "directory log key")
	f.Version = r.U64("directory version")
	if r.Err() == nil && f.Version == 0 {
		r.Failf("directory version 0")
	}
	r.Array(f.Hash[:], "directory hash")
	r.Array(f.Capability.b[:], "directory capability")
}

// FetchDirectory asks for the logged leaf of LogKey with its inclusion
// proof in the relay's newest head, and the consistency proof from the
// tree size KnownSize (0: none) to that head. No authentication.
type FetchDirectory struct {
	LogKey    [32]byte
	KnownSize uint64
}

func (*FetchDirectory) Type() FrameType { return TypeFetchDirectory }
func (f *FetchDirectory) appendBody(b []byte) ([]byte, error) {
	return appendU64(append(b, f.LogKey[:]...), f.KnownSize), nil
}
func (f *FetchDirectory) parseBody(r *Reader) {
	r.Array(f.LogKey[:], "directory log key")
	f.KnownSize = r.U64("known tree size")
}

// DirectoryLeaf answers FetchDirectory and PublishDirectory: the newest
// logged version and hash of the asked log key, its leaf index, the
// inclusion proof of that leaf in the tree of Head, the relay's newest
// signed head, and the consistency proof from the asked known size to
// Head's size (empty when that size is 0 or Head's).
type DirectoryLeaf struct {
	Version     uint64 // >= 1
	Hash        [32]byte
	Index       uint64
	Inclusion   []ProofHash
	Head        []byte
	Consistency []ProofHash
}

func (*DirectoryLeaf) Type() FrameType { return TypeDirectoryLeaf }
func (f *DirectoryLeaf) appendBody(b []byte) ([]byte, error) {
	if f.Version == 0 || len(f.Head) == 0 {
		return nil, errorf(ErrMalformed, "directory leaf of version 0 or without a head")
	}
	if err := checkLen("tree head", f.Head, MaxTreeHeadSize); err != nil {
		return nil, err
	}
	if len(f.Inclusion) > MaxProofHashes || len(f.Consistency) > MaxProofHashes {
		return nil, errorf(ErrTooLarge, "proof of %d or %d hashes, limit %d", len(f.Inclusion), len(f.Consistency), MaxProofHashes)
	}
	b = appendU64(b, f.Version)
	b = append(b, f.Hash[:]...)
	b = appendU64(b, f.Index)
	b = appendProof(b, f.Inclusion)
	b = appendBytes16(b, f.Head)
	return appendProof(b, f.Consistency), nil
}
func (f *DirectoryLeaf) parseBody(r *Reader) {
	f.Version = r.U64("directory version")
	if r.Err() == nil && f.Version == 0 {
		r.Failf("directory version 0")
	}
	r.Array(f.Hash[:], "directory hash")
	f.Index = r.U64("leaf index")
	f.Inclusion = readProof(r, "inclusion proof")
	f.Head = r.Bytes16(MaxTreeHeadSize, "tree head")
	if r.Err() == nil && len(f.Head) == 0 {
		r.Failf("empty tree head")
	}
	f.Consistency = readProof(r, "consistency proof")
}
