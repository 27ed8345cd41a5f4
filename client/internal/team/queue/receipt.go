package queue

import (
	"fmt"
	"slices"
)

// MessageID is a content's message id (section 9: the 16-byte `message
// id` of the content received).
type MessageID [MessageIDSize]byte

// Receipt is the body of a queue read receipt: that the team read the
// patient's messages it names and, in the form sent to staff, which
// conversation and which staff member read them.
type Receipt struct {
	// ForStaff selects the form: false for the receipt to the patient,
	// which says only that the team read the messages; true for the one
	// to the team's other staff devices, with Conversation and Reader.
	ForStaff     bool
	Conversation ConversationID
	Reader       Identity
	// Messages are 1..MaxReceiptMessages distinct message ids.
	Messages []MessageID
}

// Receipt kinds (the byte after the version).
const (
	receiptTeam  = 1 // to the patient: the team read them
	receiptStaff = 2 // to staff: which conversation, who read them
)

// MarshalBinary encodes the receipt:
//
//	0x61 || 0x01 || u8(kind) || [kind 2: conversation ID [16] || reader identity [32]] ||
//	u8(n) || n × message id [16]
//
// kind 1 is the patient's form, kind 2 the staff's. It refuses 0 or more
// than MaxReceiptMessages ids, a repeated id, and in the patient's form a
// conversation or reader (they must be zero: the patient learns neither);
// in the staff form a zero reader.
func (r Receipt) MarshalBinary() ([]byte, error) {
	if err := r.check(ErrInvalid); err != nil {
		return nil, err
	}
	b := make([]byte, 0, MaxReceiptSize)
	b = append(b, tagReceipt, encodingVersion)
	if r.ForStaff {
		b = append(b, receiptStaff)
		b = append(b, r.Conversation[:]...)
		b = append(b, r.Reader[:]...)
	} else {
		b = append(b, receiptTeam)
	}
	b = append(b, byte(len(r.Messages)))
	for _, m := range r.Messages {
		b = append(b, m[:]...)
	}
	return b, nil
}

func (r Receipt) check(kind error) error {
	var zeroID Identity
	switch {
	case len(r.Messages) == 0 || len(r.Messages) > MaxReceiptMessages:
		return fmt.Errorf("%w: %d message ids in a receipt", kind, len(r.Messages))
	case r.ForStaff && r.Reader == zeroID:
		return fmt.Errorf("%w: staff receipt without its reader", kind)
	case !r.ForStaff && (r.Reader != zeroID || r.Conversation != ConversationID{}):
		return fmt.Errorf("%w: patient receipt naming a conversation or reader", kind)
	}
	for i := 1; i < len(r.Messages); i++ {
		if slices.Contains(r.Messages[:i], r.Messages[i]) {
			return fmt.Errorf("%w: a message id repeated in a receipt", kind)
		}
	}
	return nil
}

// ParseReceipt decodes a receipt body. It accepts only what MarshalBinary
// writes (ErrMalformed otherwise).
func ParseReceipt(b []byte) (Receipt, error) {
	if len(b) < 4 || len(b) > MaxReceiptSize || b[0] != tagReceipt || b[1] != encodingVersion {
		return Receipt{}, fmt.Errorf("%w: receipt header", ErrMalformed)
	}
	var r Receipt
	p := 3
	switch b[2] {
	case receiptTeam:
	case receiptStaff:
		if len(b) < p+ConversationIDSize+IdentitySize+1 {
			return Receipt{}, fmt.Errorf("%w: receipt too short", ErrMalformed)
		}
		r.ForStaff = true
		p += copy(r.Conversation[:], b[p:])
		p += copy(r.Reader[:], b[p:])
	default:
		return Receipt{}, fmt.Errorf("%w: receipt kind %d", ErrMalformed, b[2])
	}
	n := int(b[p])
	p++
	if len(b) != p+n*MessageIDSize {
		return Receipt{}, fmt.Errorf("%w: receipt of %d bytes with %d ids", ErrMalformed, len(b), n)
	}
	r.Messages = make([]MessageID, n)
	for i := range r.Messages {
		p += copy(r.Messages[i][:], b[p:])
	}
	if err := r.check(ErrMalformed); err != nil {
		return Receipt{}, err
	}
	return r, nil
}
