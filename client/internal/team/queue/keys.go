package queue

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"github.com/postern/postern/protocol"
)

// ConversationID names a queue conversation across the team: every staff
// device uses the same ID for it (the client wiring derives it from the
// conversation's intake), and the claim token is computed from it.
type ConversationID [ConversationIDSize]byte

// ClaimKey is a team's claim key (SECRET): it turns a conversation ID
// into the opaque token of its register. It lives as long as the claim
// space (a new key would give every conversation a new, empty register),
// so it is not replaced when staff are removed: a removed member who knows
// it still cannot read or write a register without the space's write
// capability. Its zero value is not a key. Not comparable with ==; use
// Equal.
type ClaimKey struct {
	_ [0]func() // not comparable
	k [KeySize]byte
}

// NewClaimKey draws a claim key from crypto/rand.
func NewClaimKey() (ClaimKey, error) {
	var k ClaimKey
	if _, err := rand.Read(k.k[:]); err != nil {
		return ClaimKey{}, ErrRandom
	}
	return k, nil
}

// ClaimKeyFromSecret parses the KeySize secret bytes of a claim key (as
// SecretBytes wrote them). All-zero bytes are refused.
func ClaimKeyFromSecret(b []byte) (ClaimKey, error) {
	var k ClaimKey
	if len(b) != KeySize || isZero(b) {
		return ClaimKey{}, fmt.Errorf("%w: claim key", ErrInvalid)
	}
	copy(k.k[:], b)
	return k, nil
}

// SecretBytes returns the key's bytes: SECRET, for the encrypted store
// and the team's key distribution only.
func (k ClaimKey) SecretBytes() []byte { return append([]byte(nil), k.k[:]...) }

// Equal compares two claim keys in constant time.
func (k ClaimKey) Equal(o ClaimKey) bool { return subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1 }

// String never shows the key.
func (ClaimKey) String() string { return "queue.ClaimKey(REDACTED)" }

// Token is the register token of conversation c, the only thing the relay
// learns of it:
//
//	HMAC-SHA256(claim key, "postern.v1 queue-claim-token" || conversation ID)
func (k ClaimKey) Token(c ConversationID) protocol.ClaimToken {
	m := hmac.New(sha256.New, k.k[:])
	m.Write([]byte(labelClaimToken))
	m.Write(c[:])
	var t protocol.ClaimToken
	m.Sum(t[:0])
	return t
}

// TeamKey is one epoch of a team's value key (SECRET): a 32-byte secret
// the team's admins give staff with the staff list and replace when a
// member is removed, numbered by its epoch. Values are sealed under the
// current epoch and opened under the epoch they name, so a device keeps
// the earlier epochs for the registers written before. Its zero value is
// not a key. Not comparable with ==; use Equal.
type TeamKey struct {
	_     [0]func() // not comparable
	epoch uint32
	k     [KeySize]byte
}

// NewTeamKey draws the team key of the given epoch from crypto/rand.
func NewTeamKey(epoch uint32) (TeamKey, error) {
	k := TeamKey{epoch: epoch}
	if _, err := rand.Read(k.k[:]); err != nil {
		return TeamKey{}, ErrRandom
	}
	return k, nil
}

// TeamKeyFromSecret parses the KeySize secret bytes of the team key of
// epoch. All-zero bytes are refused.
func TeamKeyFromSecret(epoch uint32, b []byte) (TeamKey, error) {
	if len(b) != KeySize || isZero(b) {
		return TeamKey{}, fmt.Errorf("%w: team key", ErrInvalid)
	}
	k := TeamKey{epoch: epoch}
	copy(k.k[:], b)
	return k, nil
}

// Epoch is the key's epoch.
func (k TeamKey) Epoch() uint32 { return k.epoch }

// SecretBytes returns the key's bytes: SECRET, for the encrypted store
// and the team's key distribution only.
func (k TeamKey) SecretBytes() []byte { return append([]byte(nil), k.k[:]...) }

// Equal compares two team keys (epoch and bytes), the bytes in constant
// time.
func (k TeamKey) Equal(o TeamKey) bool {
	return subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1 && k.epoch == o.epoch
}

// String never shows the key.
func (k TeamKey) String() string { return fmt.Sprintf("queue.TeamKey(epoch %d, REDACTED)", k.epoch) }

// valueKey is the AEAD key of values sealed under k:
//
//	HKDF-SHA256(ikm = team key, salt = none, info = "postern.v1 queue-value-key", L = 32)
func (k TeamKey) valueKey() []byte {
	out, err := hkdf.Key(sha256.New, k.k[:], nil, labelValueKey, KeySize)
	if err != nil {
		// Only an L above 255*32 fails; 32 cannot.
		panic("queue: hkdf: " + err.Error())
	}
	return out
}

func isZero(b []byte) bool {
	var acc byte
	for _, x := range b {
		acc |= x
	}
	return acc == 0
}
