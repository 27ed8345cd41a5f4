package senderkey

import (
	"crypto/ed25519"
	"math"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Sizes. They are part of the wire format (SPEC.md section 15.1).
const (
	GroupIDSize     = 16                       // a group's ID
	SenderIDSize    = len(protocol.DeviceID{}) // a sender device's ID, 32
	ChainKeySize    = 32                       // a chain key
	HeaderKeySize   = 32                       // the group header key
	PublicKeySize   = ed25519.PublicKeySize    // a sender key's Ed25519 public key, 32
	SignatureSize   = ed25519.SignatureSize    // 64
	HeaderNonceSize = 24                       // XChaCha20-Poly1305 nonce of a message
	TagSize         = 16                       // a Poly1305 tag

	// DistributionSize is an encoded distribution message: tag, version,
	// group ID, epoch, iteration, chain key, public key, previous epoch's
	// end.
	DistributionSize = 1 + 1 + GroupIDSize + 4 + 4 + ChainKeySize + PublicKeySize + 4

	// MessageOverhead is what Seal adds to the plaintext: version (1) ||
	// nonce (24) || sender (32) || epoch (4) || iteration (4) || body tag
	// (16) || signature (64) || header tag (16).
	MessageOverhead = 1 + HeaderNonceSize + SenderIDSize + 4 + 4 + TagSize + SignatureSize + TagSize

	// MaxMessageSize is the largest group message: an envelope body.
	MaxMessageSize = protocol.MaxEnvelopeSize - protocol.EnvelopeHeaderSize
	// MaxPlaintextSize is the largest plaintext Seal accepts.
	MaxPlaintextSize = MaxMessageSize - MessageOverhead
)

// Limits. Each one is in SPEC.md section 15.1; changing one changes the
// protocol or the state format.
const (
	// MaxSkip is the largest number of message keys one incoming message
	// may make the receiver derive and store for its sender key (messages
	// skipped over), and the most skipped keys kept per sender key. A
	// message further ahead is refused with ErrSkipLimit.
	MaxSkip = 1000

	// MaxSkippedKeys caps the stored skipped keys of one group state, all
	// senders and epochs together. Beyond it keys are evicted from the
	// sender key holding the most, its lowest iteration first, so a sender
	// that floods loses its own keys before anyone else's.
	MaxSkippedKeys = 4000

	// MaxGroupMembers is the most people in a group, and MaxSenders the
	// most sender devices a group state holds keys for: each member with
	// keys.MaxDevices devices.
	MaxGroupMembers = 200
	MaxSenders      = MaxGroupMembers * keys.MaxDevices

	// MaxIteration is the last iteration a sender key seals; an own key at
	// MaxIteration+1 is exhausted. On the receiving side MaxIteration+1
	// marks an epoch with no end.
	MaxIteration = math.MaxUint32 - 1
	openEnd      = math.MaxUint32
)

// Labels. Each one appears in SPEC.md section 15.1 with exactly these
// bytes.
const (
	labelMessageKey = protocol.LabelPrefix + "group-message-key"       // HMAC input: message key
	labelChainKey   = protocol.LabelPrefix + "group-chain-key"         // HMAC input: next chain key
	labelAEAD       = protocol.LabelPrefix + "group-aead"              // HKDF info: body key and nonce
	labelSignature  = protocol.LabelPrefix + "group-message-signature" // first bytes of the signed message
)

// Type tags (SPEC.md section 8) and versions of this package's encodings.
const (
	tagDistribution = 0x50
	tagOwn          = 0x51
	tagState        = 0x52
	encodingVersion = 0x01

	// messageVersion is the first byte of a group message, in clear and
	// the associated data of the header AEAD.
	messageVersion = 0x01
)
