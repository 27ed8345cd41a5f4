package senderkey

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
)

// Distribution is a parsed distribution message: a sender key of some
// sender for one group and epoch, at the first iteration its receivers
// may read. It is SECRET (it holds the chain key). The sender is not in
// it: the caller knows it from the pairwise session the distribution
// arrived on, and gives it to State.Add.
type Distribution struct {
	group     GroupID
	epoch     uint32
	iteration uint32
	ck        [ChainKeySize]byte
	pub       [PublicKeySize]byte
	prevEnd   uint32
}

// ParseDistribution reads a distribution message (SPEC.md 15.1): exactly
// DistributionSize bytes, tag 0x50, version 0x01. Any other input is
// ErrMalformed. The public key is not checked here; a key that is not a
// valid Ed25519 point verifies nothing, so its messages fail to open.
func ParseDistribution(b []byte) (*Distribution, error) {
	if len(b) != DistributionSize || b[0] != tagDistribution || b[1] != encodingVersion {
		return nil, ErrMalformed
	}
	d := &Distribution{}
	b = b[2:]
	copy(d.group[:], b)
	b = b[GroupIDSize:]
	d.epoch = binary.BigEndian.Uint32(b)
	d.iteration = binary.BigEndian.Uint32(b[4:])
	b = b[8:]
	copy(d.ck[:], b)
	b = b[ChainKeySize:]
	copy(d.pub[:], b)
	d.prevEnd = binary.BigEndian.Uint32(b[PublicKeySize:])
	return d, nil
}

// MarshalSecret returns the distribution's SECRET encoding.
func (d *Distribution) MarshalSecret() []byte {
	b := make([]byte, 0, DistributionSize)
	b = append(b, tagDistribution, encodingVersion)
	b = append(b, d.group[:]...)
	b = binary.BigEndian.AppendUint32(b, d.epoch)
	b = binary.BigEndian.AppendUint32(b, d.iteration)
	b = append(b, d.ck[:]...)
	b = append(b, d.pub[:]...)
	return binary.BigEndian.AppendUint32(b, d.prevEnd)
}

// GroupID, Epoch and Iteration say which key this is and the first
// iteration it reads; PrevEnd is the end the sender declares for its
// previous epoch (stragglers below it are read, 0 for none).
func (d *Distribution) GroupID() GroupID  { return d.group }
func (d *Distribution) Epoch() uint32     { return d.epoch }
func (d *Distribution) Iteration() uint32 { return d.iteration }
func (d *Distribution) PrevEnd() uint32   { return d.prevEnd }
func (d *Distribution) PublicKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), d.pub[:]...)
}

// String, GoString and Format redact the chain key.
func (d Distribution) String() string {
	return fmt.Sprintf("senderkey.Distribution{epoch %d, iteration %d, redacted}", d.epoch, d.iteration)
}
func (d Distribution) GoString() string           { return d.String() }
func (d Distribution) Format(f fmt.State, _ rune) { fmt.Fprint(f, d.String()) }
