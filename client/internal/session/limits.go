package session

import (
	"crypto/mlkem"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Limits. Each one is in SPEC.md section 11; changing one changes the protocol
// or the state format.
const (
	// MaxSkip is the largest number of message keys one incoming message may
	// make the receiver derive and store for a single chain (messages that
	// were skipped over). A message further ahead is refused (ErrDecrypt).
	MaxSkip = 1000

	// MaxSkippedKeys caps the stored skipped-message keys of a session, all
	// chains together. Beyond it the oldest keys are evicted (their messages
	// will then fail to decrypt).
	MaxSkippedKeys = 2000

	// MaxSkippedKeyAge is how long a skipped-message key is kept after it
	// was derived: one day more than the relay's default retention of an
	// undelivered envelope (14 days, SPEC.md section 10), after which the
	// message it would open can no longer arrive. An older key is deleted
	// at the next Open or MarshalSecret and its message fails to decrypt.
	MaxSkippedKeyAge = 15 * 24 * time.Hour

	// PQMessageInterval and PQInterval: a post-quantum ratchet step is due
	// when this party has sent or received PQMessageInterval messages, or
	// PQInterval has passed, since the last PQ step it sent (or the session
	// has not had one yet).
	PQMessageInterval = 50
	PQInterval        = 24 * time.Hour

	// MaxMessageSize is the largest session message (an envelope body).
	MaxMessageSize = protocol.MaxEnvelopeSize - protocol.EnvelopeHeaderSize
)

// Sizes. They are part of the wire format (SPEC.md section 11).
const (
	DHPublicKeySize   = 32                            // X25519
	KEMPublicKeySize  = mlkem.EncapsulationKeySize768 // ML-KEM-768 encapsulation key, 1184
	KEMCiphertextSize = mlkem.CiphertextSize768       // ML-KEM-768 ciphertext, 1088
	keySize           = 32

	// HeaderSize is the plaintext ratchet header without PQ fields:
	// dh (32) || pn u32 || n u32.
	HeaderSize = DHPublicKeySize + 4 + 4
	// PQBlockSize is the PQ fields appended to the header of every message of
	// a chain that carries a PQ step: ct key id u32 || ct || ek id u32 || ek.
	PQBlockSize = 4 + KEMCiphertextSize + 4 + KEMPublicKeySize
	// HeaderNonceSize is the XChaCha20-Poly1305 nonce of the header.
	HeaderNonceSize = 24
	// TagSize is a Poly1305 tag.
	TagSize = 16

	// MessageOverhead is what Seal adds to the plaintext when neither an Init
	// nor PQ fields are attached: flags (1) || nonce (24) || header (40) +
	// tag (16) || body tag (16). The nonce serves both AEADs.
	MessageOverhead = 1 + HeaderNonceSize + HeaderSize + TagSize + TagSize
	// PQOverhead is added to MessageOverhead on every message of a chain
	// that carries a PQ step.
	PQOverhead = PQBlockSize

	// SealedSecretSize is one prekey encapsulation in an Init: an HPKE seal
	// (X-Wing enc 1120 || ChaCha20-Poly1305 of a 32-byte secret) = 1168.
	SealedSecretSize = keys.SealOverhead + keySize

	initInnerSize  = keys.DeviceCertificateSize + DHPublicKeySize + KEMPublicKeySize + keys.SignatureSize
	initSealedSize = initInnerSize + TagSize
	initFixedSize  = 1 + 1 + 1 + 4 + 4 // tag, version, flags, spk id, opk id

	// InitSize is the encoded Init with a one-time prekey;
	// InitSizeNoOneTime without.
	InitSize          = initFixedSize + 2*SealedSecretSize + initSealedSize
	InitSizeNoOneTime = initFixedSize + SealedSecretSize + initSealedSize
)

// Labels and contexts. Each one appears in SPEC.md section 11 with exactly these
// bytes.
const (
	labelSPK        = "postern.v1 session prekey"          // HPKE info, seal to the signed prekey
	labelOPK        = "postern.v1 session one-time-prekey" // HPKE info, seal to the one-time prekey
	labelTranscript = "postern.v1 session transcript"      // transcript hashes TH0, TH
	labelInitKey    = "postern.v1 session init-key"        // HKDF info: Init inner encryption key
	labelRoot       = "postern.v1 session root"            // HKDF info: initial root, chain and header keys
	labelInitID     = "postern.v1 session init-id"         // Init ID (tie-break, matching)
	labelRatchet    = "postern.v1 session ratchet"         // HKDF info: KDF_RK without PQ secret
	labelRatchetPQ  = "postern.v1 session ratchet pq"      // HKDF info: KDF_RK with PQ secret
	labelChainKey   = "postern.v1 session chain-key"       // HMAC input: next chain key
	labelMsgKey     = "postern.v1 session message-key"     // HMAC input: message key
	labelDHProbe    = "postern.v1 session x25519 probe"    // fixed scalar to detect low-order points

	// ContextInit is the signature context (SPEC.md section 8) of the
	// initiator's signature over the transcript hash.
	ContextInit = "session-init"
)

// Type tags and versions of this package's encodings.
const (
	tagInit  = 0x40
	tagState = 0x41
	version  = 0x01 // of the Init

	// stateVersion is written by MarshalSecret: version 2 stamps every
	// skipped key with the time it was derived. stateVersion1 (no stamps)
	// is still read.
	stateVersion  = 0x02
	stateVersion1 = 0x01
)

// Message flags (first byte of a session message, in clear, and part of the
// associated data of both AEADs).
const (
	flagInit = 0x01 // an Init follows
	flagPQ   = 0x02 // the header carries the PQ block

	// flagNonceBody: the body is XChaCha20-Poly1305 under the message key
	// with the message's random nonce. Seal always sets it. A message
	// without it is of the previous format (body nonce 0^12), still read so
	// that messages in flight during an upgrade open; it is never written.
	flagNonceBody = 0x04
)

// bodyFormat selects how sealOn seals the body. Only bodyNonce is ever used
// by Seal; bodyLegacy exists so that tests can produce the previous format
// that Open still reads.
type bodyFormat uint8

const (
	bodyNonce  bodyFormat = iota // XChaCha20-Poly1305(mk, message nonce), flag 0x04
	bodyLegacy                   // ChaCha20-Poly1305(mk, 0^12), no flag: the previous format
)
