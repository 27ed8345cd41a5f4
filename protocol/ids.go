package protocol

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
)

// MailboxID names a mailbox: 128 random bits chosen by the relay.
type MailboxID [16]byte

// EnvelopeID names a stored envelope: 16 bytes chosen by the relay, opaque
// to clients (SPEC.md section 3).
type EnvelopeID [16]byte

// DeviceID names an enrolled device: the fingerprint of its public signing
// key (SHA-256 with the label in keys), so a relay can check it.
type DeviceID [32]byte

// CapabilityToken is a bearer secret that lets anyone holding it send to one
// mailbox without naming themselves. The relay stores only its Hash.
type CapabilityToken struct{ b [32]byte }

// CapabilityHash is what the relay stores and compares for a token.
type CapabilityHash [32]byte

// capabilityLabel separates capability hashes from every other SHA-256 use.
const capabilityLabel = LabelPrefix + "capability"

func (m MailboxID) String() string { return hex.EncodeToString(m[:]) }

// Short is the first four bytes in hex: enough to tell mailboxes apart in a
// log line without recording the whole ID.
func (m MailboxID) Short() string { return hex.EncodeToString(m[:4]) }

func (e EnvelopeID) String() string { return hex.EncodeToString(e[:]) }

// Short is the first four bytes in hex, for logs.
func (d DeviceID) Short() string { return hex.EncodeToString(d[:4]) }

func (d DeviceID) String() string { return hex.EncodeToString(d[:]) }

// NewMailboxID returns a fresh random mailbox ID.
func NewMailboxID() MailboxID {
	var m MailboxID
	rand.Read(m[:]) // crypto/rand.Read never fails (Go 1.24+)
	return m
}

// NewEnvelopeID returns a fresh random version 4 UUID (for tests and
// stores that do not derive their IDs).
func NewEnvelopeID() EnvelopeID {
	var e EnvelopeID
	rand.Read(e[:])
	e[6] = e[6]&0x0f | 0x40
	e[8] = e[8]&0x3f | 0x80
	return e
}

// NewCapabilityToken returns a fresh random token.
func NewCapabilityToken() CapabilityToken {
	var t CapabilityToken
	rand.Read(t.b[:])
	return t
}

// CapabilityTokenFromBytes reads a 32-byte token.
func CapabilityTokenFromBytes(b []byte) (CapabilityToken, error) {
	var t CapabilityToken
	if len(b) != len(t.b) {
		return t, errorf(ErrMalformed, "capability token is %d bytes, want %d", len(b), len(t.b))
	}
	copy(t.b[:], b)
	return t, nil
}

// SecretBytes returns the token itself, for the invitation text and the
// client's encrypted store. Never log it.
func (t CapabilityToken) SecretBytes() []byte { return append([]byte(nil), t.b[:]...) }

// Hash is SHA-256(label || token): what the relay stores.
func (t CapabilityToken) Hash() CapabilityHash {
	h := sha256.New()
	h.Write([]byte(capabilityLabel))
	h.Write(t.b[:])
	var out CapabilityHash
	h.Sum(out[:0])
	return out
}

// Equal compares two tokens in constant time.
func (t CapabilityToken) Equal(o CapabilityToken) bool {
	return subtle.ConstantTimeCompare(t.b[:], o.b[:]) == 1
}

// IsZero reports whether the token is unset.
func (t CapabilityToken) IsZero() bool {
	var z [32]byte
	return subtle.ConstantTimeCompare(t.b[:], z[:]) == 1
}

// String redacts: the token is a secret.
func (t CapabilityToken) String() string { return "CapabilityToken(REDACTED)" }

// GoString redacts for %#v as well.
func (t CapabilityToken) GoString() string { return t.String() }

// Short is the first four bytes in hex, for logs.
func (e EnvelopeID) Short() string { return hex.EncodeToString(e[:4]) }
