package senderkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"

	"github.com/postern/postern/protocol"
)

// Own is this device's sender key for one group and epoch: the chain key
// at the next iteration to seal and the epoch's Ed25519 signing key. It
// is SECRET. The zero value is not usable; make one with NewOwn, Rotate or
// UnmarshalOwn. An Own is not safe for concurrent use.
type Own struct {
	group   GroupID
	sender  protocol.DeviceID
	epoch   uint32
	next    uint32 // iteration of ck: the next message sealed
	prevEnd uint32 // the previous epoch's end (0: none)
	ck      [ChainKeySize]byte
	seed    [ed25519.SeedSize]byte
	priv    ed25519.PrivateKey
	rand    io.Reader
}

// NewOwn makes a sender key for (group, sender, epoch) with a fresh chain
// key and signing key read from r (nil: crypto/rand), in that order:
// 32 bytes of chain key, then the 32-byte Ed25519 seed. Every nonce Seal
// draws also comes from r. It declares no previous epoch (use Rotate to
// start the next epoch of a key).
func NewOwn(group GroupID, sender protocol.DeviceID, epoch uint32, r io.Reader) (*Own, error) {
	return newOwn(group, sender, epoch, 0, r)
}

func newOwn(group GroupID, sender protocol.DeviceID, epoch, prevEnd uint32, r io.Reader) (*Own, error) {
	if r == nil {
		r = rand.Reader
	}
	o := &Own{group: group, sender: sender, epoch: epoch, prevEnd: prevEnd, rand: r}
	if _, err := io.ReadFull(r, o.ck[:]); err != nil {
		return nil, ErrRandom
	}
	if _, err := io.ReadFull(r, o.seed[:]); err != nil {
		return nil, ErrRandom
	}
	o.priv = ed25519.NewKeyFromSeed(o.seed[:])
	return o, nil
}

// Rotate returns the sender key of the next epoch: a fresh chain key and
// signing key from r (nil: crypto/rand), iteration 0, and the end of this
// epoch (its next iteration) as the previous epoch's end, so receivers
// accept this epoch's stragglers below it and nothing beyond. The caller
// then deletes o and sends the new key's Distribution only to the devices
// that stay in the group.
func (o *Own) Rotate(r io.Reader) (*Own, error) {
	if o.epoch == ^uint32(0) {
		return nil, ErrExhausted
	}
	return newOwn(o.group, o.sender, o.epoch+1, o.next, r)
}

// GroupID, Sender, Epoch and Iteration describe the key; Iteration is the
// next message's.
func (o *Own) GroupID() GroupID             { return o.group }
func (o *Own) Sender() protocol.DeviceID    { return o.sender }
func (o *Own) Epoch() uint32                { return o.epoch }
func (o *Own) Iteration() uint32            { return o.next }
func (o *Own) PublicKey() ed25519.PublicKey { return o.priv.Public().(ed25519.PublicKey) }

// Distribution returns the SECRET distribution message of this key at its
// next iteration (SPEC.md 15.1): whoever holds it reads every message the
// key seals from now on. Send it only inside pairwise sessions, to the
// group's current member devices.
func (o *Own) Distribution() []byte {
	d := Distribution{group: o.group, epoch: o.epoch, iteration: o.next, ck: o.ck, prevEnd: o.prevEnd}
	copy(d.pub[:], o.PublicKey())
	return d.MarshalSecret()
}

// Seal encrypts plaintext as the next message of this key, to every
// member holding its distribution and the group header key hk. It
// advances the chain and forgets the message key; on error nothing
// changed. The caller stores the advanced key before sending, so that a
// crash never seals two messages with one iteration.
//
// The message is MessageOverhead bytes longer than plaintext; a caller
// that pads to an envelope bucket pads the plaintext.
func (o *Own) Seal(hk *HeaderKey, plaintext []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintextSize {
		return nil, ErrTooLarge
	}
	if o.next > MaxIteration {
		return nil, ErrExhausted
	}
	out := make([]byte, 1+HeaderNonceSize, MessageOverhead+len(plaintext))
	out[0] = messageVersion
	nonce := out[1 : 1+HeaderNonceSize]
	if _, err := io.ReadFull(o.rand, nonce); err != nil {
		return nil, ErrRandom
	}
	next, mk := chainStep(&o.ck)
	body, bnonce := bodyAEAD(&mk)
	clear(mk[:])

	ad := appendAD(make([]byte, 0, adSize), &o.group, &o.sender, o.epoch, o.next)
	inner := len(out)
	out = append(out, ad[GroupIDSize:]...) // sender || epoch || iteration
	bodyStart := len(out)
	out = body.Seal(out, bnonce[:], plaintext, ad)
	out = append(out, ed25519.Sign(o.priv, signedMessage(ad, out[bodyStart:]))...)
	// In place: the header ciphertext overwrites its plaintext.
	out = hk.aead.Seal(out[:inner], nonce, out[inner:], out[:1])

	o.ck = next
	clear(next[:])
	o.next++
	return out, nil
}

// String, GoString and Format redact the key.
func (o Own) String() string {
	return fmt.Sprintf("senderkey.Own{sender %s, epoch %d, iteration %d, redacted}", o.sender.Short(), o.epoch, o.next)
}
func (o Own) GoString() string           { return o.String() }
func (o Own) Format(f fmt.State, _ rune) { fmt.Fprint(f, o.String()) }
