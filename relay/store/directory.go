package store

import (
	"context"
	"errors"

	"github.com/postern/postern/protocol"
)

// Directory refusals.
var (
	// ErrUnknownDirectory: no directory leaf is logged under that log key.
	ErrUnknownDirectory = errors.New("store: no directory logged under that key")
	// ErrStaleDirectory: the version is not above the logged one.
	ErrStaleDirectory = errors.New("store: directory version not above the logged one")
	// ErrDirectoryCapability: the publishing capability is not the one
	// the first publish for the log key set.
	ErrDirectoryCapability = errors.New("store: wrong directory publishing capability")
)

func init() {
	refusals = append(refusals, ErrUnknownDirectory, ErrStaleDirectory, ErrDirectoryCapability)
}

// LoggedDirectory is the newest logged leaf of one organisation's
// directory: the relay keeps its version and hash, never the directory.
type LoggedDirectory struct {
	Version uint64   // the directory's version
	Hash    [32]byte // directory.Hash of it
	Index   uint64   // its leaf's index in the log
}

// DirectoryPublish is one directory leaf to log.
type DirectoryPublish struct {
	LogKey  [32]byte // directory.LogKey(organisation)
	Version uint64   // above the logged one
	Hash    [32]byte
	// Capability is the hash of the presented publishing capability
	// (protocol.CapabilityToken.DirectoryHash): stored by the first
	// publish for LogKey, compared in constant time by every later one.
	Capability protocol.CapabilityHash
	// Entry is the leaf's entry (kt.Entry.Bytes of LogKey, Version,
	// Hash); the store adds the leaf label and hashes it.
	Entry []byte
}

// DirectoryAnswer is a logged directory leaf with everything a client
// needs to verify it, read in one consistent view.
type DirectoryAnswer struct {
	LoggedDirectory
	Inclusion   [][32]byte // of the leaf in Head's tree
	Head        []byte     // the newest signed head
	Consistency [][32]byte // from the asked known size to Head's size
}

// DirectoryLog is a KTStore that also logs organisation directories by
// hash, as leaves of the same tree (SPEC.md section 10 "Key
// transparency").
type DirectoryLog interface {
	KTStore
	// PublishDirectory appends p's leaf, records it as the log key's
	// newest and stores the head sign returns, in one durable
	// transaction. ErrDirectoryCapability if a capability hash is stored
	// for p.LogKey and p.Capability differs; ErrStaleDirectory if
	// p.Version is not above the logged version; then nothing changes.
	PublishDirectory(ctx context.Context, p DirectoryPublish, sign SignHead) (Published, error)
	// DirectoryAnswer returns the newest leaf of logKey, its inclusion
	// proof in the newest head's tree, that head and the consistency
	// proof from knownSize (as KTAnswer). ErrUnknownDirectory if nothing
	// is logged under logKey.
	DirectoryAnswer(ctx context.Context, logKey [32]byte, knownSize uint64) (DirectoryAnswer, error)
}
