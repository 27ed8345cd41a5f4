package store

import (
	"context"
	"errors"

	"github.com/postern/postern/protocol"
)

// Claim-space refusals.
var (
	// ErrUnknownClaimSpace: no claim space has that ID (never created, or
	// deleted).
	ErrUnknownClaimSpace = errors.New("store: unknown claim space")
	// ErrClaimCapability: the write or admin capability is not the
	// space's (perhaps replaced since).
	ErrClaimCapability = errors.New("store: wrong claim capability")
	// ErrClaimLimit: the device has protocol.MaxClaimSpacesPerDevice
	// spaces, the space protocol.MaxClaimsPerSpace registers, or the
	// register's version cannot grow.
	ErrClaimLimit = errors.New("store: claim limit reached")
)

func init() { refusals = append(refusals, ErrUnknownClaimSpace, ErrClaimCapability, ErrClaimLimit) }

// Claim is one compare-and-set register of a claim space. A register never
// written has version 0 and no value.
type Claim struct {
	Version uint64
	Value   []byte // opaque, at most protocol.MaxClaimValue bytes
}

// ClaimStore keeps claim spaces: per space, the hashes of its admin and
// write capabilities, the device that created it (for the per-device
// limit) and its registers, keyed by the hash of their token. It never
// sees a capability or a token in the clear, and nothing says what a
// register stands for.
type ClaimStore interface {
	// CreateClaimSpace records a new space created by creator, refusing
	// with ErrClaimLimit past protocol.MaxClaimSpacesPerDevice.
	CreateClaimSpace(ctx context.Context, creator protocol.DeviceID, id protocol.ClaimSpaceID, admin, write protocol.CapabilityHash) error
	// UpdateClaimSpace checks the admin capability hash (in constant
	// time), then replaces the write capability (ClaimSpaceSetWrite) or
	// the admin capability (ClaimSpaceSetAdmin) with h, or deletes the
	// space and its registers (ClaimSpaceDelete). A replaced capability
	// is refused from the moment this returns. It works while the
	// storage is full: it is how staff are removed.
	UpdateClaimSpace(ctx context.Context, id protocol.ClaimSpaceID, admin protocol.CapabilityHash, op protocol.ClaimSpaceOp, h protocol.CapabilityHash) error
	// SetClaim checks the write capability hash (in constant time), then:
	// if the register's version is expected, it stores value as version
	// expected+1 durably and returns that state and true; otherwise it
	// changes nothing and returns the current state and false. Of
	// concurrent calls with the same expected version exactly one wins.
	SetClaim(ctx context.Context, id protocol.ClaimSpaceID, write protocol.CapabilityHash, token protocol.ClaimTokenHash, expected uint64, value []byte) (Claim, bool, error)
	// GetClaim checks the write capability hash and returns the register.
	GetClaim(ctx context.Context, id protocol.ClaimSpaceID, write protocol.CapabilityHash, token protocol.ClaimTokenHash) (Claim, error)
}
