package group

import (
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Limits and sizes. Each one is in SPEC.md section 15.5.
const (
	// IDSize is a group ID: 16 random bytes chosen by its creator.
	IDSize = 16
	// MaxMembers is the most people in a group.
	MaxMembers = 200
	// MaxDevices is the most devices listed for one member.
	MaxDevices = keys.MaxDevices
	// MaxNameSize is the longest group or member name, in bytes of UTF-8.
	MaxNameSize = 64
	// HeaderKeySize and CapabilitySize are the secrets a state carries.
	HeaderKeySize  = 32
	CapabilitySize = 32

	// memberFixedSize is a member's identity, name length, role and
	// device count; delegateSize the identity a delegate acts for;
	// deviceFixedSize a device ID and its joined flag; joinedSize the
	// mailbox and capability of a joined device.
	memberFixedSize = keys.FingerprintSize + 1 + 1 + 1
	delegateSize    = keys.FingerprintSize
	deviceFixedSize = keys.FingerprintSize + 1
	joinedSize      = 16 + CapabilitySize

	// headerMaxSize is tag, version, group ID, version, name, relay,
	// fan-out ID, send capability, header key, member count.
	headerMaxSize = 2 + IDSize + 8 + 1 + MaxNameSize + 2 + keys.MaxRelayURLSize + 16 + CapabilitySize + HeaderKeySize + 2
	memberMaxSize = memberFixedSize + MaxNameSize + delegateSize + MaxDevices*(deviceFixedSize+joinedSize)
	trailerSize   = keys.SigningPublicKeySize + 2 + keys.SignatureSize

	// MaxStateSize is the largest encoded state.
	MaxStateSize = headerMaxSize + MaxMembers*memberMaxSize + trailerSize
)

// SignatureContext is the context of an admin's hybrid signature over a
// state (SPEC.md section 8 "Hybrid signatures").
const SignatureContext = protocol.LabelPrefix + "group-state"

// Type tag (SPEC.md section 8 "Type tags") and version of the encoding.
const (
	tagState        = 0x53
	encodingVersion = 0x01
)
