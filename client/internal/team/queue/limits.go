package queue

import (
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Sizes. They are part of the wire format (SPEC.md section 15.6).
const (
	// ConversationIDSize is a queue conversation's team-wide ID.
	ConversationIDSize = 16
	// IdentitySize is a staff member's identity fingerprint.
	IdentitySize = keys.FingerprintSize
	// KeySize is the size of a claim key and of a team key.
	KeySize = 32
	// MessageIDSize is the content message id a receipt names (section 9).
	MessageIDSize = 16

	// ValuePlaintextSize is the fixed size of an encoded Value, padding
	// included: every value has it, whatever it says.
	ValuePlaintextSize = 128
	// valueFieldsSize is the part of it the fields use; the rest is zero.
	valueFieldsSize = 1 + 1 + IdentitySize + IdentitySize + 8 + 8 + 8 + 4

	nonceSize = 24 // XChaCha20-Poly1305
	tagSize   = 16 // Poly1305

	// SealedValueSize is the exact size of every register value the relay
	// holds: format (1) || key epoch (4) || nonce (24) || ciphertext of
	// the 128-byte plaintext (144).
	SealedValueSize = 1 + 4 + nonceSize + ValuePlaintextSize + tagSize

	// changeEntrySize is one conversation's entry in a state change.
	changeEntrySize = ConversationIDSize + 8 + SealedValueSize
)

// Limits. Each one is in SPEC.md section 15.6.
const (
	// MaxConversations is the most conversations a View holds: the most
	// registers a claim space may hold.
	MaxConversations = protocol.MaxClaimsPerSpace

	// MaxChanges is the most conversations one state-change message
	// carries (an admin announcing every open conversation to new staff
	// sends several).
	MaxChanges = 256
	// MaxChangeSize is the largest state-change body.
	MaxChangeSize = 2 + 2 + MaxChanges*changeEntrySize

	// MaxReceiptMessages is the most message ids one receipt names, as
	// for the pairwise receipt (section 9 "Receipts").
	MaxReceiptMessages = 64
	// MaxReceiptSize is the largest receipt body.
	MaxReceiptSize = 2 + 1 + ConversationIDSize + IdentitySize + 1 + MaxReceiptMessages*MessageIDSize

	// MaxTime is the largest time a value holds: 9999-12-31T23:59:59.999Z
	// in Unix milliseconds. 0 means none.
	MaxTime = 253402300799999
)

// Labels. Each one appears in SPEC.md section 15.6 with exactly these
// bytes.
const (
	labelClaimToken = protocol.LabelPrefix + "queue-claim-token" // HMAC input prefix: a register's token
	labelValueKey   = protocol.LabelPrefix + "queue-value-key"   // HKDF info: the value AEAD key from a team key
)

// Type tags (SPEC.md section 8 "Type tags") and versions of this
// package's encodings.
const (
	tagChange       = 0x60
	tagReceipt      = 0x61
	encodingVersion = 0x01

	// valueFormat is the first byte of a sealed value, in clear and in the
	// associated data.
	valueFormat = 0x01
)

// Compile-time check: a sealed value fits a claim register.
var _ [protocol.MaxClaimValue - SealedValueSize]struct{}
