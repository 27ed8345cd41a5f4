package store

import (
	"context"
	"errors"

	"github.com/postern/postern/protocol"
)

// KT refusals.
var (
	// ErrUnknownIdentity: no device list is stored for the identity.
	ErrUnknownIdentity = errors.New("store: no device list for that identity")
	// ErrStaleDeviceList: the list's version is not above the stored one.
	ErrStaleDeviceList = errors.New("store: device list version not above the stored one")
	// ErrDeviceListMoved: the stored list is no longer the one the caller
	// read (another publish won the race); read again and retry.
	ErrDeviceListMoved = errors.New("store: stored device list changed meanwhile")
)

func init() { refusals = append(refusals, ErrUnknownIdentity, ErrStaleDeviceList, ErrDeviceListMoved) }

// StoredList is the newest device list of one identity.
type StoredList struct {
	Version uint64 // the list's version
	Index   uint64 // its leaf's index in the log
	List    []byte // the encoded keys.DeviceList
}

// Publish is one device list to store and log.
type Publish struct {
	Identity [32]byte // fingerprint of the list's identity key
	Version  uint64   // the list's version (above the stored one)
	// Prev is the version the caller read (0: none stored); the publish
	// is refused with ErrDeviceListMoved if the stored version differs.
	Prev uint64
	List []byte // the encoded, verified list
	// Entry is the leaf's entry (kt.Entry.Bytes): identity, version,
	// list hash. The store adds the leaf label and hashes it.
	Entry []byte
	// Revoke are enrolled devices to revoke in the same transaction, as
	// RevokeDevice does (those in the previous list and not in this one);
	// unknown and already revoked ones are skipped.
	Revoke []protocol.DeviceID
}

// SignHead signs the tree head of size leaves with root, at the time the
// caller chooses, and returns its encoding (kt.Head.Bytes).
type SignHead func(size uint64, root [32]byte) ([]byte, error)

// Published is where a publish landed.
type Published struct {
	Index uint64 // the new leaf's index
	Head  []byte // the signed head of the tree that ends with it
	// Revoked are the devices of Publish.Revoke this transaction revoked.
	Revoked []protocol.DeviceID
}

// KTAnswer is a stored list with everything a client needs to verify it,
// read in one consistent view.
type KTAnswer struct {
	StoredList
	Inclusion   [][32]byte // of the list's leaf in Head's tree
	Head        []byte     // the newest signed head
	Consistency [][32]byte // from the asked known size to Head's size
}

// KTStore is a Store that keeps signed device lists and the relay's
// key-transparency log: an append-only RFC 6962 tree of one leaf per
// published list, with a signed head per append (keys/kt). The relay
// serves the transparency frames only on a store that implements it.
type KTStore interface {
	// DeviceList returns the newest list of identity, or
	// ErrUnknownIdentity.
	DeviceList(ctx context.Context, identity [32]byte) (StoredList, error)
	// PublishDeviceList stores p.List as identity's newest list, appends
	// its leaf, revokes p.Revoke and stores the head sign returns for the
	// new tree, all in one transaction, durably. ErrStaleDeviceList if
	// p.Version is not above the stored version, ErrDeviceListMoved if
	// the stored version is not p.Prev; then nothing changes. sign runs
	// inside the transaction; its error aborts it.
	PublishDeviceList(ctx context.Context, p Publish, sign SignHead) (Published, error)
	// KTAnswer returns identity's newest list, its inclusion proof in the
	// newest head's tree, that head, and the consistency proof from
	// knownSize (empty for 0, for the head's size, and for a size above
	// it: the client then sees a head older than its own, a rollback).
	// ErrUnknownIdentity if no list is stored for identity.
	KTAnswer(ctx context.Context, identity [32]byte, knownSize uint64) (KTAnswer, error)
	// KTHead returns the newest signed head and the tree size, or a nil
	// head and 0 when the log is empty.
	KTHead(ctx context.Context) (head []byte, size uint64, err error)
}
