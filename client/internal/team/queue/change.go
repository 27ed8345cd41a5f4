package queue

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// Entry is one conversation's register in a state change: its version
// (at least 1) and its sealed value as the relay holds it.
type Entry struct {
	Conversation ConversationID
	Version      uint64
	Sealed       []byte
}

// Change is the body of a team state-change message: what a staff device
// sends every other staff device after a SetClaim it won, after a lost
// answer whose register moved, and what an admin sends after reading the
// registers (staff removal, new staff). 1..MaxChanges entries, in strictly
// ascending order of conversation ID. It travels end-to-end encrypted
// among staff; the values in it are sealed again under the team key.
type Change []Entry

// MarshalBinary encodes the change:
//
//	0x60 || 0x01 || u16(n) || n × (conversation ID [16] || version u64 || sealed value [173])
//
// It refuses an empty or oversized change, an unordered or repeated
// conversation, version 0 and a sealed value of another size or format.
func (ch Change) MarshalBinary() ([]byte, error) {
	if len(ch) == 0 || len(ch) > MaxChanges {
		return nil, fmt.Errorf("%w: %d entries in a state change", ErrInvalid, len(ch))
	}
	b := make([]byte, 0, 4+len(ch)*changeEntrySize)
	b = append(b, tagChange, encodingVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ch)))
	for i, e := range ch {
		if err := e.check(); err != nil {
			return nil, err
		}
		if i > 0 && bytes.Compare(ch[i-1].Conversation[:], e.Conversation[:]) >= 0 {
			return nil, fmt.Errorf("%w: state change entries not in ascending order", ErrInvalid)
		}
		b = append(b, e.Conversation[:]...)
		b = binary.BigEndian.AppendUint64(b, e.Version)
		b = append(b, e.Sealed...)
	}
	return b, nil
}

func (e Entry) check() error {
	if e.Version == 0 {
		return fmt.Errorf("%w: version 0 in a state change", ErrInvalid)
	}
	if len(e.Sealed) != SealedValueSize || e.Sealed[0] != valueFormat {
		return fmt.Errorf("%w: sealed value in a state change", ErrInvalid)
	}
	return nil
}

// ParseChange decodes a state-change body. It accepts only what
// MarshalBinary writes (ErrMalformed otherwise); the values are not
// opened (Space.Receive opens them).
func ParseChange(b []byte) (Change, error) {
	if len(b) < 4 || len(b) > MaxChangeSize || b[0] != tagChange || b[1] != encodingVersion {
		return nil, fmt.Errorf("%w: state change header", ErrMalformed)
	}
	n := int(binary.BigEndian.Uint16(b[2:]))
	if n == 0 || n > MaxChanges || len(b) != 4+n*changeEntrySize {
		return nil, fmt.Errorf("%w: state change of %d bytes with %d entries", ErrMalformed, len(b), n)
	}
	ch := make(Change, n)
	p := 4
	for i := range ch {
		e := &ch[i]
		copy(e.Conversation[:], b[p:])
		e.Version = binary.BigEndian.Uint64(b[p+ConversationIDSize:])
		e.Sealed = slices.Clone(b[p+ConversationIDSize+8 : p+changeEntrySize])
		p += changeEntrySize
		if err := e.check(); err != nil {
			return nil, fmt.Errorf("%w: entry %d", ErrMalformed, i)
		}
		if i > 0 && bytes.Compare(ch[i-1].Conversation[:], e.Conversation[:]) >= 0 {
			return nil, fmt.Errorf("%w: state change entries not in ascending order", ErrMalformed)
		}
	}
	return ch, nil
}
