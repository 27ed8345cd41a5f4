package protocol

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
)

// Claim spaces (SPEC.md section 4 and section 10 "Claim spaces"): a team
// queue keeps on the relay a set of compare-and-set registers, one per
// conversation, named by an opaque 32-byte token and holding a version
// and an opaque value. The relay never learns what a token names or what
// a value says: clients derive tokens and encrypt values under keys the
// relay does not have. Writes need the space's write capability; the
// space's admin capability replaces it (staff removal) or deletes the
// space.

// Frame types of claim spaces.
const (
	TypeCreateClaimSpace FrameType = 0x16
	TypeUpdateClaimSpace FrameType = 0x17
	TypeSetClaim         FrameType = 0x18
	TypeGetClaim         FrameType = 0x19

	TypeClaimSpaceCreated FrameType = 0x8d
	TypeClaimState        FrameType = 0x8e
)

// newClaimFrame is newFrame for the claim-space frames.
func newClaimFrame(t FrameType) Frame {
	switch t {
	case TypeCreateClaimSpace:
		return new(CreateClaimSpace)
	case TypeUpdateClaimSpace:
		return new(UpdateClaimSpace)
	case TypeSetClaim:
		return new(SetClaim)
	case TypeGetClaim:
		return new(GetClaim)
	case TypeClaimSpaceCreated:
		return new(ClaimSpaceCreated)
	case TypeClaimState:
		return new(ClaimState)
	}
	return nil
}

// ClaimSpaceID names a claim space: 128 random bits chosen by the relay.
type ClaimSpaceID [16]byte

// NewClaimSpaceID returns a fresh random claim-space ID.
func NewClaimSpaceID() ClaimSpaceID {
	var s ClaimSpaceID
	rand.Read(s[:]) // crypto/rand.Read never fails (Go 1.24+)
	return s
}

// Short is the first four bytes in hex, for logs.
func (s ClaimSpaceID) Short() string { return hex.EncodeToString(s[:4]) }

// ClaimToken names one register of a claim space: 32 bytes the relay
// treats as opaque (clients compute an HMAC of the conversation under the
// team's claim key). The relay stores only its Hash.
type ClaimToken [32]byte

// ClaimTokenHash is what the relay stores for a ClaimToken.
type ClaimTokenHash [32]byte

// claimTokenLabel separates claim-token hashes from every other SHA-256 use.
const claimTokenLabel = LabelPrefix + "claim-token"

// Hash is SHA-256(label || token): the register's key in the relay's store,
// so that a copy of the store does not hold the tokens clients use.
func (t ClaimToken) Hash() ClaimTokenHash {
	h := sha256.New()
	h.Write([]byte(claimTokenLabel))
	h.Write(t[:])
	var out ClaimTokenHash
	h.Sum(out[:0])
	return out
}

// ---- client requests ----

// CreateClaimSpace asks for a new claim space. It needs an authenticated
// device (spaces are counted per device, MaxClaimSpacesPerDevice). Like
// AddCapability it carries hashes: the capabilities themselves reach the
// relay only when they are used.
type CreateClaimSpace struct {
	Admin CapabilityHash // hash of the admin capability (UpdateClaimSpace)
	Write CapabilityHash // hash of the write capability (SetClaim, GetClaim)
}

func (*CreateClaimSpace) Type() FrameType { return TypeCreateClaimSpace }
func (f *CreateClaimSpace) appendBody(b []byte) ([]byte, error) {
	return append(append(b, f.Admin[:]...), f.Write[:]...), nil
}
func (f *CreateClaimSpace) parseBody(r *Reader) {
	r.Array(f.Admin[:], "admin capability hash")
	r.Array(f.Write[:], "write capability hash")
}

// ClaimSpaceOp is what an UpdateClaimSpace does.
type ClaimSpaceOp uint8

// Operations of UpdateClaimSpace.
const (
	// ClaimSpaceSetWrite replaces the write capability: the old one is
	// refused from the moment the relay answers (staff removal).
	ClaimSpaceSetWrite ClaimSpaceOp = 1
	// ClaimSpaceSetAdmin replaces the admin capability (admin removal).
	ClaimSpaceSetAdmin ClaimSpaceOp = 2
	// ClaimSpaceDelete deletes the space and every register in it.
	ClaimSpaceDelete ClaimSpaceOp = 3
)

// UpdateClaimSpace changes a claim space with its admin capability. It
// needs no authentication. Hash is the new capability's hash for
// ClaimSpaceSetWrite and ClaimSpaceSetAdmin and is not encoded (zero) for
// ClaimSpaceDelete.
type UpdateClaimSpace struct {
	Space ClaimSpaceID
	Admin CapabilityToken
	Op    ClaimSpaceOp
	Hash  CapabilityHash
}

func (*UpdateClaimSpace) Type() FrameType { return TypeUpdateClaimSpace }
func (f *UpdateClaimSpace) appendBody(b []byte) ([]byte, error) {
	b = append(b, f.Space[:]...)
	b = append(b, f.Admin.b[:]...)
	b = append(b, byte(f.Op))
	switch f.Op {
	case ClaimSpaceSetWrite, ClaimSpaceSetAdmin:
		return append(b, f.Hash[:]...), nil
	case ClaimSpaceDelete:
		if f.Hash != (CapabilityHash{}) {
			return nil, errorf(ErrMalformed, "claim space delete carries no capability hash")
		}
		return b, nil
	}
	return nil, errorf(ErrMalformed, "claim space operation %d", f.Op)
}
func (f *UpdateClaimSpace) parseBody(r *Reader) {
	r.Array(f.Space[:], "claim space")
	r.Array(f.Admin.b[:], "admin capability")
	f.Op = ClaimSpaceOp(r.U8("claim space operation"))
	if r.Err() != nil {
		return
	}
	switch f.Op {
	case ClaimSpaceSetWrite, ClaimSpaceSetAdmin:
		r.Array(f.Hash[:], "capability hash")
	case ClaimSpaceDelete:
	default:
		r.Failf("claim space operation %d is not 1, 2 or 3", f.Op)
	}
}

// SetClaim is a compare-and-set on one register: if its version is
// Expected, the relay stores Value as version Expected+1 (durably) and
// answers ClaimState{OK: true}; otherwise it changes nothing and answers
// ClaimState{OK: false} with the current version and value. A register
// never written has version 0 and an empty value. It needs the space's
// write capability and no authentication.
type SetClaim struct {
	Space    ClaimSpaceID
	Write    CapabilityToken
	Token    ClaimToken
	Expected uint64
	Value    []byte // opaque to the relay, at most MaxClaimValue bytes
}

func (*SetClaim) Type() FrameType { return TypeSetClaim }
func (f *SetClaim) appendBody(b []byte) ([]byte, error) {
	if err := checkLen("claim value", f.Value, MaxClaimValue); err != nil {
		return nil, err
	}
	b = append(b, f.Space[:]...)
	b = append(b, f.Write.b[:]...)
	b = append(b, f.Token[:]...)
	b = appendU64(b, f.Expected)
	return appendBytes16(b, f.Value), nil
}
func (f *SetClaim) parseBody(r *Reader) {
	r.Array(f.Space[:], "claim space")
	r.Array(f.Write.b[:], "write capability")
	r.Array(f.Token[:], "claim token")
	f.Expected = r.U64("expected version")
	f.Value = r.Bytes16(MaxClaimValue, "claim value")
}

// GetClaim reads one register. It needs the space's write capability and
// no authentication; the answer is ClaimState{OK: true}.
type GetClaim struct {
	Space ClaimSpaceID
	Write CapabilityToken
	Token ClaimToken
}

func (*GetClaim) Type() FrameType { return TypeGetClaim }
func (f *GetClaim) appendBody(b []byte) ([]byte, error) {
	b = append(b, f.Space[:]...)
	b = append(b, f.Write.b[:]...)
	return append(b, f.Token[:]...), nil
}
func (f *GetClaim) parseBody(r *Reader) {
	r.Array(f.Space[:], "claim space")
	r.Array(f.Write.b[:], "write capability")
	r.Array(f.Token[:], "claim token")
}

// ---- relay frames ----

// ClaimSpaceCreated answers CreateClaimSpace.
type ClaimSpaceCreated struct{ Space ClaimSpaceID }

func (*ClaimSpaceCreated) Type() FrameType { return TypeClaimSpaceCreated }
func (f *ClaimSpaceCreated) appendBody(b []byte) ([]byte, error) {
	return append(b, f.Space[:]...), nil
}
func (f *ClaimSpaceCreated) parseBody(r *Reader) { r.Array(f.Space[:], "claim space") }

// ClaimState answers SetClaim and GetClaim: whether the set took effect
// (always true for GetClaim) and the register's version and value after
// it. A register at version 0 was never written and holds nothing.
type ClaimState struct {
	OK      bool
	Version uint64
	Value   []byte
}

func (*ClaimState) Type() FrameType { return TypeClaimState }
func (f *ClaimState) appendBody(b []byte) ([]byte, error) {
	if err := checkLen("claim value", f.Value, MaxClaimValue); err != nil {
		return nil, err
	}
	if f.Version == 0 && len(f.Value) != 0 {
		return nil, errorf(ErrMalformed, "claim at version 0 with a value")
	}
	var ok byte
	if f.OK {
		ok = 1
	}
	b = appendU64(append(b, ok), f.Version)
	return appendBytes16(b, f.Value), nil
}
func (f *ClaimState) parseBody(r *Reader) {
	switch r.U8("claim ok") {
	case 0:
	case 1:
		f.OK = true
	default:
		r.Failf("claim ok: not 0 or 1")
	}
	f.Version = r.U64("claim version")
	f.Value = r.Bytes16(MaxClaimValue, "claim value")
	if r.Err() == nil && f.Version == 0 && len(f.Value) != 0 {
		r.Failf("claim at version 0 with a value")
	}
}
