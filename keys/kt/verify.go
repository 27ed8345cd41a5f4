package kt

import (
	"fmt"

	"github.com/postern/postern/keys"
)

// Answer is a relay's answer to a device-list fetch (protocol.DeviceList),
// as bytes not yet trusted.
type Answer struct {
	List        []byte           // the encoded device list
	Index       uint64           // its leaf's index in the log
	Inclusion   [][HashSize]byte // inclusion proof of the leaf in Head's tree
	Head        []byte           // the relay's newest signed head
	Consistency [][HashSize]byte // from the caller's known size to Head's size
}

// VerifyAnswer checks an answer for the person with identity fingerprint
// id against the relay's pinned key and the newest head the caller holds
// for this relay (nil: none yet): the head's signature, the list's
// signature and rules, that it is id's list, that its leaf is in the head's
// tree, and that the head extends known. It returns the verified list and
// head; the caller keeps the head if it is newer than known, and refuses a
// list version lower than one it has verified for id (ErrRollback is not
// decided here: the caller holds the versions).
func VerifyAnswer(a Answer, relayKey *keys.SigningPublicKey, id keys.Fingerprint, known *Head) (*keys.DeviceList, *Head, error) {
	h, err := ParseHead(a.Head, relayKey)
	if err != nil {
		return nil, nil, err
	}
	l, err := keys.ParseDeviceList(a.List)
	if err != nil {
		return nil, nil, err
	}
	if l.Identity.Fingerprint() != id {
		return nil, nil, ErrWrongIdentity
	}
	leaf := EntryOf(l, a.List).LeafHash()
	if err := VerifyInclusion(leaf, a.Index, h.Size, a.Inclusion, h.Root); err != nil {
		return nil, nil, err
	}
	if known != nil {
		if known.RelayKey != h.RelayKey {
			return nil, nil, fmt.Errorf("%w: the known head is another relay's", ErrBadHead)
		}
		if err := VerifyConsistency(known.Size, h.Size, known.Root, h.Root, a.Consistency); err != nil {
			return nil, nil, err
		}
	} else if len(a.Consistency) != 0 {
		return nil, nil, fmt.Errorf("%w: a consistency proof without a known head", ErrMalformed)
	}
	return l, h, nil
}
