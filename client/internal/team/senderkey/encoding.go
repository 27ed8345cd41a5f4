package senderkey

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"

	"github.com/postern/postern/protocol"
)

const (
	// OwnStateSize is an encoded own sender key: tag, version, group ID,
	// sender, epoch, next iteration, previous epoch's end, chain key,
	// Ed25519 seed.
	OwnStateSize = 1 + 1 + GroupIDSize + SenderIDSize + 4 + 4 + 4 + ChainKeySize + ed25519.SeedSize

	chainFixedSize  = 4 + PublicKeySize + ChainKeySize + 4 + 2 // epoch, pub, ck, next, skipped count
	skippedSize     = 4 + ChainKeySize                         // iteration, message key
	senderFixedSize = SenderIDSize + 1 + 4                     // sender, flags, previous epoch's end
	stateFixedSize  = 1 + 1 + GroupIDSize + 2                  // tag, version, group ID, sender count

	// MaxStateSize bounds an encoded State: MaxSenders senders with both
	// epochs and MaxSkippedKeys skipped keys.
	MaxStateSize = stateFixedSize + MaxSenders*(senderFixedSize+2*chainFixedSize) + MaxSkippedKeys*skippedSize

	flagPrev = 0x01 // a sender entry holds the previous epoch
)

// MarshalSecret returns the SECRET encoding of the own sender key (SPEC.md
// 15.1): whoever holds it reads and signs as this sender in this epoch.
// Store it only encrypted.
func (o *Own) MarshalSecret() []byte {
	b := make([]byte, 0, OwnStateSize)
	b = append(b, tagOwn, encodingVersion)
	b = append(b, o.group[:]...)
	b = append(b, o.sender[:]...)
	b = binary.BigEndian.AppendUint32(b, o.epoch)
	b = binary.BigEndian.AppendUint32(b, o.next)
	b = binary.BigEndian.AppendUint32(b, o.prevEnd)
	b = append(b, o.ck[:]...)
	return append(b, o.seed[:]...)
}

// UnmarshalOwn reads an own sender key written by MarshalSecret. Its
// message nonces come from crypto/rand.
func UnmarshalOwn(b []byte) (*Own, error) {
	if len(b) != OwnStateSize || b[0] != tagOwn || b[1] != encodingVersion {
		return nil, ErrMalformed
	}
	o := &Own{rand: rand.Reader}
	r := reader{b: b[2:]}
	r.copy(o.group[:])
	r.copy(o.sender[:])
	o.epoch, o.next, o.prevEnd = r.u32(), r.u32(), r.u32()
	r.copy(o.ck[:])
	r.copy(o.seed[:])
	o.priv = ed25519.NewKeyFromSeed(o.seed[:])
	return o, nil
}

// MarshalSecret returns the SECRET encoding of the state (SPEC.md 15.1):
// every chain key and skipped message key held. Store it only encrypted.
// Senders are in ascending order of device ID, so a state has one
// encoding.
func (s *State) MarshalSecret() []byte {
	b := make([]byte, 0, stateFixedSize+len(s.senders)*(senderFixedSize+2*chainFixedSize)+s.SkippedKeys()*skippedSize)
	b = append(b, tagState, encodingVersion)
	b = append(b, s.group[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.senders)))
	for _, id := range s.sortedSenders() {
		k := s.senders[id]
		b = append(b, id[:]...)
		var fl byte
		if k.prev != nil {
			fl = flagPrev
		}
		b = append(b, fl)
		b = binary.BigEndian.AppendUint32(b, k.prevEnd)
		b = k.cur.appendTo(b)
		if k.prev != nil {
			b = k.prev.appendTo(b)
		}
	}
	return b
}

func (c *chain) appendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, c.epoch)
	b = append(b, c.pub[:]...)
	b = append(b, c.ck[:]...)
	b = binary.BigEndian.AppendUint32(b, c.next)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.skipped)))
	for _, sk := range c.skipped {
		b = binary.BigEndian.AppendUint32(b, sk.iter)
		b = append(b, sk.mk[:]...)
	}
	return b
}

// UnmarshalState reads a state written by MarshalSecret. It checks every
// count against its cap before reading on, the order of senders and of
// skipped keys, that a previous epoch is the one before the current and
// that its skipped keys are below its end, and that nothing trails.
func UnmarshalState(b []byte) (*State, error) {
	if len(b) < stateFixedSize || len(b) > MaxStateSize || b[0] != tagState || b[1] != encodingVersion {
		return nil, ErrMalformed
	}
	r := reader{b: b[2:]}
	var g GroupID
	r.copy(g[:])
	s := NewState(g)
	n := int(r.u16())
	if n > MaxSenders {
		return nil, ErrMalformed
	}
	var last protocol.DeviceID
	total := 0
	for i := range n {
		var id protocol.DeviceID
		r.copy(id[:])
		if r.bad || (i > 0 && bytes.Compare(last[:], id[:]) >= 0) {
			return nil, ErrMalformed
		}
		last = id
		k := &senderKeys{}
		fl := r.u8()
		k.prevEnd = r.u32()
		if fl&^flagPrev != 0 || !r.chain(&k.cur, openEnd) {
			return nil, ErrMalformed
		}
		total += len(k.cur.skipped)
		if fl&flagPrev != 0 {
			k.prev = &chain{}
			if !r.chain(k.prev, k.prevEnd) || k.cur.epoch == 0 || k.prev.epoch != k.cur.epoch-1 {
				return nil, ErrMalformed
			}
			total += len(k.prev.skipped)
		}
		if total > MaxSkippedKeys {
			return nil, ErrMalformed
		}
		s.senders[id] = k
	}
	if r.bad || len(r.b) != 0 {
		return nil, ErrMalformed
	}
	return s, nil
}

// reader reads big-endian fields; a short read sets bad and yields zeros.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) copy(dst []byte) { copy(dst, r.take(len(dst))) }
func (r *reader) u8() byte        { return r.take(1)[0] }
func (r *reader) u16() uint16     { return binary.BigEndian.Uint16(r.take(2)) }
func (r *reader) u32() uint32     { return binary.BigEndian.Uint32(r.take(4)) }

// chain reads a chain whose skipped keys must be ascending and below
// both its next iteration and end.
func (r *reader) chain(c *chain, end uint32) bool {
	c.epoch = r.u32()
	r.copy(c.pub[:])
	r.copy(c.ck[:])
	c.next = r.u32()
	m := int(r.u16())
	if r.bad || m > MaxSkip || m*skippedSize > len(r.b) {
		return false
	}
	limit := min(c.next, end)
	c.skipped = make([]skippedKey, m)
	for i := range c.skipped {
		sk := &c.skipped[i]
		sk.iter = r.u32()
		r.copy(sk.mk[:])
		if sk.iter >= limit || (i > 0 && sk.iter <= c.skipped[i-1].iter) {
			return false
		}
	}
	if m == 0 {
		c.skipped = nil
	}
	return !r.bad
}
