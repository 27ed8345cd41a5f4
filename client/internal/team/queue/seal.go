package queue

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/protocol"
)

// Space is what a staff device needs to use one team queue's claim space:
// its ID, the team's claim key and its team keys (the current epoch seals,
// every epoch held opens). It is immutable and safe for concurrent use.
type Space struct {
	id      protocol.ClaimSpaceID
	claim   ClaimKey
	current TeamKey
	keys    map[uint32]TeamKey
	aeads   map[uint32]cipher.AEAD // per epoch, under its value key
}

// NewSpace returns the Space of claim space id. current seals new values;
// earlier are the team keys of the epochs before it, for values written
// then. Two keys of one epoch, or a zero key, are ErrInvalid.
func NewSpace(id protocol.ClaimSpaceID, claim ClaimKey, current TeamKey, earlier ...TeamKey) (*Space, error) {
	if isZero(claim.k[:]) || isZero(current.k[:]) {
		return nil, fmt.Errorf("%w: zero key", ErrInvalid)
	}
	s := &Space{id: id, claim: claim, current: current, keys: map[uint32]TeamKey{current.epoch: current}}
	for _, k := range earlier {
		if isZero(k.k[:]) {
			return nil, fmt.Errorf("%w: zero key", ErrInvalid)
		}
		if _, dup := s.keys[k.epoch]; dup {
			return nil, fmt.Errorf("%w: two team keys of epoch %d", ErrInvalid, k.epoch)
		}
		s.keys[k.epoch] = k
	}
	s.aeads = make(map[uint32]cipher.AEAD, len(s.keys))
	for e, k := range s.keys {
		s.aeads[e] = k.aead()
	}
	return s, nil
}

// String shows the space's short ID and key epoch, never a key.
func (s Space) String() string {
	return fmt.Sprintf("queue.Space(%s, epoch %d)", s.id.Short(), s.current.epoch)
}

// ID is the claim space's ID.
func (s *Space) ID() protocol.ClaimSpaceID { return s.id }

// Token is the register token of conversation c (ClaimKey.Token).
func (s *Space) Token(c ConversationID) protocol.ClaimToken { return s.claim.Token(c) }

// Seal encrypts v for the register of conversation c under the current
// team key, with a fresh random nonce. The result is always
// SealedValueSize bytes.
func (s *Space) Seal(c ConversationID, v Value) ([]byte, error) {
	if err := v.Check(); err != nil {
		return nil, err
	}
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, ErrRandom
	}
	return sealWith(s.aeads[s.current.epoch], s.current.epoch, s.id, s.claim.Token(c), nonce, v), nil
}

// sealValue is Seal with a given nonce (the vectors and fuzz tests use it
// to re-seal what they opened):
//
//	sealed = 0x01 || epoch u32 || nonce [24] ||
//	         XChaCha20-Poly1305(value key, nonce, value, ad)
//	ad     = 0x01 || epoch u32 || space ID [16] || token [32]
func sealValue(k TeamKey, space protocol.ClaimSpaceID, token protocol.ClaimToken, nonce [nonceSize]byte, v Value) []byte {
	return sealWith(k.aead(), k.epoch, space, token, nonce, v)
}

func sealWith(aead cipher.AEAD, epoch uint32, space protocol.ClaimSpaceID, token protocol.ClaimToken, nonce [nonceSize]byte, v Value) []byte {
	out := make([]byte, 0, SealedValueSize)
	out = append(out, valueFormat)
	out = binary.BigEndian.AppendUint32(out, epoch)
	out = append(out, nonce[:]...)
	var pt [ValuePlaintextSize]byte
	return aead.Seal(out, nonce[:], v.appendTo(pt[:0]), valueAD(epoch, space, token))
}

// aead is the XChaCha20-Poly1305 instance of k's value key.
func (k TeamKey) aead() cipher.AEAD {
	aead, err := chacha20poly1305.NewX(k.valueKey())
	if err != nil {
		panic("queue: xchacha20poly1305: " + err.Error()) // the key is 32 bytes
	}
	return aead
}

func valueAD(epoch uint32, space protocol.ClaimSpaceID, token protocol.ClaimToken) []byte {
	ad := make([]byte, 0, 1+4+len(space)+len(token))
	ad = append(ad, valueFormat)
	ad = binary.BigEndian.AppendUint32(ad, epoch)
	ad = append(ad, space[:]...)
	return append(ad, token[:]...)
}

// Open decrypts the sealed value of conversation c's register. A value of
// another length or format is ErrMalformed, one under an epoch not held
// ErrUnknownKey, one that does not authenticate for this space and token
// ErrDecrypt; a plaintext that is not a valid value is ErrMalformed.
func (s *Space) Open(c ConversationID, sealed []byte) (Value, error) {
	if len(sealed) != SealedValueSize || sealed[0] != valueFormat {
		return Value{}, fmt.Errorf("%w: sealed value", ErrMalformed)
	}
	epoch := binary.BigEndian.Uint32(sealed[1:5])
	aead, ok := s.aeads[epoch]
	if !ok {
		return Value{}, ErrUnknownKey
	}
	var buf [ValuePlaintextSize]byte
	pt, err := aead.Open(buf[:0], sealed[5:5+nonceSize], sealed[5+nonceSize:], valueAD(epoch, s.id, s.claim.Token(c)))
	if err != nil {
		return Value{}, ErrDecrypt
	}
	var v Value
	if err := v.UnmarshalBinary(pt); err != nil {
		return Value{}, err
	}
	return v, nil
}

// Register is one conversation's register as a device knows it: the
// version, the sealed value as the relay holds it (nil at version 0) and
// that value opened (Initial's at version 0).
type Register struct {
	Version uint64
	Sealed  []byte
	Value   Value
}

// OpenRegister checks and opens a register read from the relay or
// received in a state change: version 0 must have no value (its Value is
// then initial, the caller's view of the new conversation), any other
// version a sealed value that opens.
func (s *Space) OpenRegister(c ConversationID, version uint64, sealed []byte, initial Value) (Register, error) {
	if version == 0 {
		if len(sealed) != 0 {
			return Register{}, fmt.Errorf("%w: a value at version 0", ErrMalformed)
		}
		if err := initial.Check(); err != nil || initial.State != New {
			return Register{}, fmt.Errorf("%w: initial value not new", ErrInvalid)
		}
		return Register{Value: initial}, nil
	}
	v, err := s.Open(c, sealed)
	if err != nil {
		return Register{}, err
	}
	return Register{Version: version, Sealed: append([]byte(nil), sealed...), Value: v}, nil
}
