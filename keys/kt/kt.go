package kt

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/postern/postern/keys"
)

// Labels and contexts (SPEC.md).
const (
	// ContextHead is the signature context of a signed tree head.
	ContextHead = "kt-head"
	labelLeaf   = "postern.v1 kt-leaf"
)

// Sizes (SPEC.md section 10, "Key transparency").
const (
	// HashSize is the size of every tree hash.
	HashSize = sha256.Size
	// EntrySize is a leaf's data after its label: identity fingerprint,
	// list version, device-list hash.
	EntrySize = keys.FingerprintSize + 8 + keys.DeviceListHashSize
	// LeafSize is the length of LeafData.
	LeafSize = len(labelLeaf) + EntrySize
	// HeadSize is the length of an encoded signed tree head.
	HeadSize = 2 + keys.FingerprintSize + 8 + HashSize + 8 + 2 + keys.SignatureSize
	// MaxProofHashes bounds the hashes of one proof (a tree of 2^64
	// leaves needs at most 64 for an inclusion proof and 2*64 for a
	// consistency proof; 64 covers any tree of up to 2^32 leaves).
	MaxProofHashes = 64

	headSignedSize = HeadSize - 2 - keys.SignatureSize
	tagHead        = keys.TagTreeHead
	formatVersion  = 1
)

// Errors. Each failure of VerifyAnswer wraps one.
var (
	// ErrMalformed: a head, entry or proof that does not follow the layout.
	ErrMalformed = errors.New("kt: malformed")
	// ErrBadHead: a head not signed by the pinned relay key.
	ErrBadHead = errors.New("kt: tree head not signed by the relay's key")
	// ErrInclusion: the list is not in the log the head commits to.
	ErrInclusion = errors.New("kt: device list not included in the signed log")
	// ErrFork: two heads that no append-only log can both have given
	// (consistency fails, or the same size with two roots): the relay
	// shows different logs to different people.
	ErrFork = errors.New("kt: the relay's log forked")
	// ErrRollback: a head older than one already seen, or a list version
	// lower than one already verified.
	ErrRollback = errors.New("kt: rollback")
	// ErrWrongIdentity: the answer holds another person's list.
	ErrWrongIdentity = errors.New("kt: device list of another identity")
)

// Hasher is the tree's RFC 6962 hasher (SHA-256).
var Hasher = rfc6962.DefaultHasher

var factory = &compact.RangeFactory{Hash: Hasher.HashChildren}

// Entry is what a leaf records of one published list.
type Entry struct {
	Identity keys.Fingerprint              // the person's identity key fingerprint
	Version  uint64                        // the list's version
	ListHash [keys.DeviceListHashSize]byte // keys.DeviceListHash of the encoded list
}

// EntryOf returns the entry of a verified list and its encoding.
func EntryOf(l *keys.DeviceList, encoded []byte) Entry {
	return Entry{Identity: l.Identity.Fingerprint(), Version: l.Version, ListHash: keys.DeviceListHash(encoded)}
}

// Bytes returns identity || u64 version || list hash (EntrySize bytes).
func (e Entry) Bytes() []byte {
	b := make([]byte, 0, EntrySize)
	b = append(b, e.Identity[:]...)
	b = binary.BigEndian.AppendUint64(b, e.Version)
	return append(b, e.ListHash[:]...)
}

// ParseEntry parses Entry.Bytes.
func ParseEntry(b []byte) (Entry, error) {
	var e Entry
	if len(b) != EntrySize {
		return e, fmt.Errorf("%w: entry of %d bytes, want %d", ErrMalformed, len(b), EntrySize)
	}
	copy(e.Identity[:], b)
	e.Version = binary.BigEndian.Uint64(b[keys.FingerprintSize:])
	copy(e.ListHash[:], b[keys.FingerprintSize+8:])
	return e, nil
}

// LeafData is "postern.v1 kt-leaf" || Entry.Bytes(): the leaf's data.
func (e Entry) LeafData() []byte { return append([]byte(labelLeaf), e.Bytes()...) }

// LeafHash is the RFC 6962 leaf hash SHA-256(0x00 || LeafData).
func (e Entry) LeafHash() [HashSize]byte { return toHash(Hasher.HashLeaf(e.LeafData())) }

func toHash(b []byte) [HashSize]byte {
	var h [HashSize]byte
	copy(h[:], b)
	return h
}

// EmptyRoot is the root of the empty tree, SHA-256 of nothing.
func EmptyRoot() [HashSize]byte { return toHash(Hasher.EmptyRoot()) }

// Head is a relay's signed tree head.
type Head struct {
	RelayKey  keys.Fingerprint // fingerprint of the relay's signing key
	Size      uint64           // number of leaves
	Root      [HashSize]byte   // RFC 6962 root of the first Size leaves
	Time      time.Time        // when the relay signed it, unix seconds
	Signature []byte
}

// SignedPart is the encoding up to (not including) u16 len(sig): what the
// relay key signs with context ContextHead.
func (h *Head) SignedPart() []byte {
	b := make([]byte, 0, HeadSize)
	b = append(b, tagHead, formatVersion)
	b = append(b, h.RelayKey[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Size)
	b = append(b, h.Root[:]...)
	t := h.Time.Unix()
	if t < 0 {
		t = 0
	}
	return binary.BigEndian.AppendUint64(b, uint64(t))
}

// Bytes is SignedPart() || u16 len(sig) || Signature.
func (h *Head) Bytes() []byte {
	b := binary.BigEndian.AppendUint16(h.SignedPart(), uint16(len(h.Signature)))
	return append(b, h.Signature...)
}

// ParseHead parses an encoded head and verifies its signature by relayKey
// (the relay's key, pinned by the caller). ErrMalformed for a bad
// layout, ErrBadHead for another key or a bad signature.
func ParseHead(b []byte, relayKey *keys.SigningPublicKey) (*Head, error) {
	h, err := parseHead(b)
	if err != nil {
		return nil, err
	}
	if relayKey == nil || h.RelayKey != relayKey.Fingerprint() {
		return nil, fmt.Errorf("%w: it names relay key %s", ErrBadHead, h.RelayKey.Short())
	}
	if err := relayKey.Verify(ContextHead, b[:headSignedSize], h.Signature); err != nil {
		return nil, ErrBadHead
	}
	return h, nil
}

// ParseHeadUnverified parses an encoded head without checking its
// signature, for tools that find the key from the head (then verify with
// ParseHead).
func ParseHeadUnverified(b []byte) (*Head, error) { return parseHead(b) }

func parseHead(b []byte) (*Head, error) {
	if len(b) != HeadSize {
		return nil, fmt.Errorf("%w: tree head of %d bytes, want %d", ErrMalformed, len(b), HeadSize)
	}
	if b[0] != tagHead || b[1] != formatVersion {
		return nil, fmt.Errorf("%w: tree head tag 0x%02x version %d, want 0x%02x %d", ErrMalformed, b[0], b[1], tagHead, formatVersion)
	}
	h := &Head{}
	off := 2
	copy(h.RelayKey[:], b[off:])
	off += keys.FingerprintSize
	h.Size = binary.BigEndian.Uint64(b[off:])
	off += 8
	copy(h.Root[:], b[off:])
	off += HashSize
	t := binary.BigEndian.Uint64(b[off:])
	off += 8
	if t > 253402300799 {
		return nil, fmt.Errorf("%w: tree head time after 9999-12-31", ErrMalformed)
	}
	h.Time = time.Unix(int64(t), 0).UTC()
	if n := binary.BigEndian.Uint16(b[off:]); n != keys.SignatureSize {
		return nil, fmt.Errorf("%w: tree head signature length %d, want %d", ErrMalformed, n, keys.SignatureSize)
	}
	off += 2
	h.Signature = append([]byte(nil), b[off:]...)
	return h, nil
}

func hashes(p [][HashSize]byte) [][]byte {
	out := make([][]byte, len(p))
	for i := range p {
		out[i] = p[i][:]
	}
	return out
}

// VerifyInclusion checks that leaf is at index in the tree of size with
// root. ErrInclusion otherwise.
func VerifyInclusion(leaf [HashSize]byte, index, size uint64, p [][HashSize]byte, root [HashSize]byte) error {
	if len(p) > MaxProofHashes {
		return fmt.Errorf("%w: proof of %d hashes", ErrMalformed, len(p))
	}
	if err := proof.VerifyInclusion(Hasher, index, size, leaf[:], hashes(p), root[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrInclusion, err)
	}
	return nil
}

// VerifyConsistency checks that the tree of size2 with root2 extends the
// tree of size1 with root1. ErrRollback if size2 < size1, ErrFork if the
// proof fails.
func VerifyConsistency(size1, size2 uint64, root1, root2 [HashSize]byte, p [][HashSize]byte) error {
	if size2 < size1 {
		return fmt.Errorf("%w: head of %d leaves after one of %d", ErrRollback, size2, size1)
	}
	if len(p) > MaxProofHashes {
		return fmt.Errorf("%w: proof of %d hashes", ErrMalformed, len(p))
	}
	if err := proof.VerifyConsistency(Hasher, size1, size2, hashes(p), root1[:], root2[:]); err != nil {
		return fmt.Errorf("%w: %v", ErrFork, err)
	}
	return nil
}
