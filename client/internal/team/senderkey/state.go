package senderkey

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/postern/postern/protocol"
)

// State is what a member device holds to read one group's messages: for
// each sender device, the sender key of its current epoch and at most the
// previous one, with their skipped message keys. It is SECRET. The zero
// value is not usable; make one with NewState or UnmarshalState. A State
// is not safe for concurrent use.
type State struct {
	group   GroupID
	senders map[protocol.DeviceID]*senderKeys
}

// senderKeys are one sender device's keys: cur, and prev (epoch
// cur.epoch-1) if held. prevEnd is the end cur's distribution declared
// for epoch cur.epoch-1: prev reads iterations below it only.
type senderKeys struct {
	cur     chain
	prevEnd uint32
	prev    *chain
}

// chain is a received sender key at iteration next.
type chain struct {
	epoch   uint32
	pub     [PublicKeySize]byte
	ck      [ChainKeySize]byte
	next    uint32
	skipped []skippedKey // ascending by iteration, each below next
}

type skippedKey struct {
	iter uint32
	mk   [ChainKeySize]byte
}

// NewState returns an empty state for a group.
func NewState(group GroupID) *State {
	return &State{group: group, senders: map[protocol.DeviceID]*senderKeys{}}
}

// GroupID is the group the state reads.
func (s *State) GroupID() GroupID { return s.group }

// Senders returns the number of sender devices held.
func (s *State) Senders() int { return len(s.senders) }

// Epochs returns the epochs held for a sender: the current one, and the
// previous one if held (ok false: none held).
func (s *State) Epochs(sender protocol.DeviceID) (cur uint32, prev uint32, hasPrev, ok bool) {
	k := s.senders[sender]
	if k == nil {
		return 0, 0, false, false
	}
	if k.prev != nil {
		return k.cur.epoch, k.prev.epoch, true, true
	}
	return k.cur.epoch, 0, false, true
}

// SkippedKeys returns the number of skipped message keys stored.
func (s *State) SkippedKeys() int {
	n := 0
	for _, k := range s.senders {
		n += len(k.cur.skipped)
		if k.prev != nil {
			n += len(k.prev.skipped)
		}
	}
	return n
}

func newChain(d *Distribution) chain {
	return chain{epoch: d.epoch, pub: d.pub, ck: d.ck, next: d.iteration}
}

// Add takes a sender's distribution, received from that sender device over
// a pairwise session (the caller authenticates the sender). For a sender
// already held:
//   - the same epoch with the same public key changes nothing (a repeat);
//   - the next epoch becomes current, and the current one becomes the
//     previous, reading only iterations below the new distribution's
//     PrevEnd (its skipped keys at or above it are deleted); the epoch
//     before it is dropped;
//   - a later epoch (one or more were missed) becomes current and drops
//     both held epochs, since the end of the one before it is unknown;
//   - the epoch just before the current, when no previous is held (the
//     distributions arrived out of order), becomes the previous, up to the
//     end the current one declared.
//
// Anything else is ErrStaleDistribution and changes nothing.
func (s *State) Add(sender protocol.DeviceID, d *Distribution) error {
	if d.group != s.group {
		return ErrWrongGroup
	}
	k := s.senders[sender]
	if k == nil {
		if len(s.senders) >= MaxSenders {
			return ErrTooManySenders
		}
		s.senders[sender] = &senderKeys{cur: newChain(d), prevEnd: d.prevEnd}
		return nil
	}
	e, cur := uint64(d.epoch), uint64(k.cur.epoch)
	switch {
	case e == cur:
		return same(&k.cur, d)
	case e == cur+1:
		old := k.cur
		old.skipped = slices.DeleteFunc(old.skipped, func(sk skippedKey) bool { return sk.iter >= d.prevEnd })
		k.prev = &old
		k.cur, k.prevEnd = newChain(d), d.prevEnd
	case e > cur+1:
		k.cur, k.prevEnd, k.prev = newChain(d), d.prevEnd, nil
	case e+1 == cur && k.prev == nil:
		c := newChain(d)
		k.prev = &c
	case e+1 == cur:
		return same(k.prev, d)
	default:
		return ErrStaleDistribution
	}
	return nil
}

// same accepts a repeat of the distribution of a held epoch.
func same(c *chain, d *Distribution) error {
	if c.pub != d.pub {
		return ErrStaleDistribution
	}
	return nil
}

// Remove drops every key of a sender device (a device that left the
// group).
func (s *State) Remove(sender protocol.DeviceID) { delete(s.senders, sender) }

// Open reads a group message (SPEC.md 15.1) under the group header key
// hk. It returns the sender device and the plaintext (on error, a zero
// sender; the sender is in a *MissingKeyError). Every failure that
// depends on the message's authenticity is ErrDecrypt; a message that
// authenticated under hk but needs a sender key not held yet is a
// *MissingKeyError (ErrNoSenderKey); one more than MaxSkip ahead is
// ErrSkipLimit. On any error the state is unchanged.
//
// Messages sealed before the header key was rotated need the previous
// header key: a caller tries the current key, then the previous one.
func (s *State) Open(hk *HeaderKey, msg []byte) (protocol.DeviceID, []byte, error) {
	var sender protocol.DeviceID
	if len(msg) < MessageOverhead || len(msg) > MaxMessageSize || msg[0] != messageVersion {
		return protocol.DeviceID{}, nil, ErrDecrypt
	}
	nonce := msg[1 : 1+HeaderNonceSize]
	inner, err := hk.aead.Open(nil, nonce, msg[1+HeaderNonceSize:], msg[:1])
	if err != nil {
		return protocol.DeviceID{}, nil, ErrDecrypt
	}
	copy(sender[:], inner)
	epoch := binary.BigEndian.Uint32(inner[SenderIDSize:])
	iter := binary.BigEndian.Uint32(inner[SenderIDSize+4:])
	body := inner[SenderIDSize+8 : len(inner)-SignatureSize]
	sig := inner[len(inner)-SignatureSize:]

	k := s.senders[sender]
	var c *chain
	end := uint32(openEnd)
	switch {
	case k == nil:
		return protocol.DeviceID{}, nil, &MissingKeyError{Sender: sender, Epoch: epoch}
	case epoch == k.cur.epoch:
		c = &k.cur
	case k.prev != nil && epoch == k.prev.epoch:
		c, end = k.prev, k.prevEnd
	case epoch > k.cur.epoch || (k.prev == nil && uint64(epoch)+1 == uint64(k.cur.epoch)):
		// A newer epoch, or the previous one whose distribution has not
		// arrived: it may come.
		return protocol.DeviceID{}, nil, &MissingKeyError{Sender: sender, Epoch: epoch}
	default:
		return protocol.DeviceID{}, nil, ErrDecrypt
	}

	// Find or derive the message key without changing the state.
	var mk [ChainKeySize]byte
	var derived []skippedKey // keys of the iterations skipped over
	var nextCK [ChainKeySize]byte
	skippedAt := -1
	if iter < c.next {
		i, found := slices.BinarySearchFunc(c.skipped, iter, func(sk skippedKey, it uint32) int {
			return cmpU32(sk.iter, it)
		})
		if !found {
			return protocol.DeviceID{}, nil, ErrDecrypt // read already, evicted, or never held
		}
		mk, skippedAt = c.skipped[i].mk, i
	} else {
		if iter >= end {
			return protocol.DeviceID{}, nil, ErrDecrypt
		}
		if iter-c.next > MaxSkip {
			return protocol.DeviceID{}, nil, ErrSkipLimit
		}
		ck := c.ck
		for i := c.next; i < iter; i++ {
			var sk skippedKey
			sk.iter = i
			ck, sk.mk = chainStep(&ck)
			derived = append(derived, sk)
		}
		nextCK, mk = chainStep(&ck)
		clear(ck[:])
	}
	defer clear(mk[:])

	ad := appendAD(make([]byte, 0, adSize), &s.group, &sender, epoch, iter)
	if !ed25519.Verify(c.pub[:], signedMessage(ad, body), sig) {
		wipe(derived)
		return protocol.DeviceID{}, nil, ErrDecrypt
	}
	aead, bnonce := bodyAEAD(&mk)
	pt, err := aead.Open(body[:0], bnonce[:], body, ad)
	if err != nil {
		wipe(derived)
		return protocol.DeviceID{}, nil, ErrDecrypt
	}

	// Commit.
	if skippedAt >= 0 {
		clear(c.skipped[skippedAt].mk[:])
		c.skipped = slices.Delete(c.skipped, skippedAt, skippedAt+1)
		return sender, pt, nil
	}
	c.skipped = append(c.skipped, derived...)
	c.ck, c.next = nextCK, iter+1
	if n := len(c.skipped) - MaxSkip; n > 0 {
		wipe(c.skipped[:n])
		c.skipped = slices.Delete(c.skipped, 0, n)
	}
	s.evict()
	return sender, pt, nil
}

func cmpU32(a, b uint32) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func wipe(ks []skippedKey) {
	for i := range ks {
		clear(ks[i].mk[:])
	}
}

// evict deletes skipped keys beyond MaxSkippedKeys, each from the sender
// key holding the most (ties: the lowest sender ID, the previous epoch
// before the current), its lowest iteration first.
func (s *State) evict() {
	total := s.SkippedKeys()
	if total <= MaxSkippedKeys {
		return
	}
	chains := s.chains()
	for ; total > MaxSkippedKeys; total-- {
		var most *chain
		for _, c := range chains {
			if most == nil || len(c.skipped) > len(most.skipped) {
				most = c
			}
		}
		clear(most.skipped[0].mk[:])
		most.skipped = slices.Delete(most.skipped, 0, 1)
	}
}

// chains lists every held chain in the canonical order: senders ascending,
// each one's previous epoch before its current.
func (s *State) chains() []*chain {
	ids := s.sortedSenders()
	out := make([]*chain, 0, 2*len(ids))
	for _, id := range ids {
		k := s.senders[id]
		if k.prev != nil {
			out = append(out, k.prev)
		}
		out = append(out, &k.cur)
	}
	return out
}

func (s *State) sortedSenders() []protocol.DeviceID {
	ids := make([]protocol.DeviceID, 0, len(s.senders))
	for id := range s.senders {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b protocol.DeviceID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// String, GoString and Format redact the keys.
func (s State) String() string {
	return fmt.Sprintf("senderkey.State{%d senders, redacted}", len(s.senders))
}
func (s State) GoString() string           { return s.String() }
func (s State) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }
