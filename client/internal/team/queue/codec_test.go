package queue

import (
	"bytes"
	"errors"
	"testing"
)

func sampleChange(t testing.TB, s *Space, n int) Change {
	ch := make(Change, n)
	for i := range ch {
		c := ConversationID{byte(i >> 8), byte(i)}
		ch[i] = Entry{c, uint64(i + 1), mustSeal(t, s, c, sampleValues()[i%len(sampleValues())])}
	}
	return ch
}

func TestChangeRoundTrip(t *testing.T) {
	s := newTestSpace(t)
	for _, n := range []int{1, 2, MaxChanges} {
		ch := sampleChange(t, s, n)
		b, err := ch.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) != 4+n*changeEntrySize || len(b) > MaxChangeSize {
			t.Fatalf("%d entries: %d bytes", n, len(b))
		}
		got, err := ParseChange(b)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := got.MarshalBinary()
		if !bytes.Equal(again, b) || len(got) != n {
			t.Fatal("round trip changed the change")
		}
		v := NewView()
		if k, err := s.Receive(v, got); err != nil || k != n {
			t.Fatalf("Receive: %d, %v", k, err)
		}
	}
}

func TestChangeRefused(t *testing.T) {
	s := newTestSpace(t)
	e := sampleChange(t, s, 3)
	for _, tc := range []struct {
		name string
		ch   Change
	}{
		{"empty", Change{}},
		{"too many", sampleChange(t, s, MaxChanges+1)},
		{"version 0", Change{{conv(1), 0, e[0].Sealed}}},
		{"short value", Change{{conv(1), 1, e[0].Sealed[:10]}}},
		{"unknown value format", Change{{conv(1), 1, append([]byte{2}, e[0].Sealed[1:]...)}}},
		{"unordered", Change{e[1], e[0]}},
		{"repeated", Change{e[0], e[0]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.ch.MarshalBinary(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("MarshalBinary: %v, want ErrInvalid", err)
			}
		})
	}
	good, _ := e.MarshalBinary()
	one, _ := e[:1].MarshalBinary()
	swapped := bytes.Clone(good)
	copy(swapped[4:], good[4+changeEntrySize:4+2*changeEntrySize])
	copy(swapped[4+changeEntrySize:], good[4:4+changeEntrySize])
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"header only", good[:4]},
		{"tag", append([]byte{tagReceipt}, good[1:]...)},
		{"version", append([]byte{tagChange, 2}, good[2:]...)},
		{"count 0", append([]byte{tagChange, encodingVersion, 0, 0}, good[4:]...)},
		{"count above", append([]byte{tagChange, encodingVersion, 0, 4}, good[4:]...)},
		{"count below", append([]byte{tagChange, encodingVersion, 0, 2}, good[4:]...)},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"unordered", swapped},
		{"version 0", func() []byte {
			b := bytes.Clone(one)
			copy(b[4+ConversationIDSize:], make([]byte, 8))
			return b
		}()},
		{"value format", func() []byte { b := bytes.Clone(one); b[4+ConversationIDSize+8] = 9; return b }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseChange(tc.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseChange: %v, want ErrMalformed", err)
			}
		})
	}
}

func sampleReceipts() []Receipt {
	ids := make([]MessageID, MaxReceiptMessages)
	for i := range ids {
		ids[i] = MessageID{byte(i), 0xee}
	}
	return []Receipt{
		{Messages: ids[:1]},
		{Messages: ids},
		{ForStaff: true, Conversation: conv(7), Reader: ident(3), Messages: ids[:3]},
		{ForStaff: true, Conversation: ConversationID{}, Reader: ident(3), Messages: ids},
	}
}

func TestReceiptRoundTrip(t *testing.T) {
	for _, r := range sampleReceipts() {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > MaxReceiptSize {
			t.Fatalf("%d bytes", len(b))
		}
		got, err := ParseReceipt(b)
		if err != nil {
			t.Fatal(err)
		}
		again, _ := got.MarshalBinary()
		if !bytes.Equal(again, b) || got.ForStaff != r.ForStaff || got.Reader != r.Reader || len(got.Messages) != len(r.Messages) {
			t.Fatalf("round trip: %+v", got)
		}
	}
	// The patient's form names neither the conversation nor the reader.
	b, _ := sampleReceipts()[0].MarshalBinary()
	if len(b) != 2+1+1+MessageIDSize {
		t.Fatalf("patient's receipt of one id: %d bytes", len(b))
	}
}

func TestReceiptRefused(t *testing.T) {
	ids := sampleReceipts()[1].Messages
	for _, tc := range []struct {
		name string
		r    Receipt
	}{
		{"no ids", Receipt{}},
		{"too many ids", Receipt{Messages: append(append([]MessageID(nil), ids...), MessageID{0xff})}},
		{"repeated id", Receipt{Messages: []MessageID{ids[0], ids[1], ids[0]}}},
		{"patient's naming a reader", Receipt{Reader: ident(1), Messages: ids[:1]}},
		{"patient's naming a conversation", Receipt{Conversation: conv(1), Messages: ids[:1]}},
		{"staff's without reader", Receipt{ForStaff: true, Conversation: conv(1), Messages: ids[:1]}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.r.MarshalBinary(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("MarshalBinary: %v, want ErrInvalid", err)
			}
		})
	}
	staffB, _ := sampleReceipts()[2].MarshalBinary()
	teamB, _ := sampleReceipts()[0].MarshalBinary()
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"tag", append([]byte{tagChange}, teamB[1:]...)},
		{"version", append([]byte{tagReceipt, 0}, teamB[2:]...)},
		{"kind 0", append([]byte{tagReceipt, encodingVersion, 0}, teamB[3:]...)},
		{"kind 3", append([]byte{tagReceipt, encodingVersion, 3}, teamB[3:]...)},
		{"count 0", []byte{tagReceipt, encodingVersion, receiptTeam, 0}},
		{"count above", append([]byte{tagReceipt, encodingVersion, receiptTeam, 2}, teamB[4:]...)},
		{"truncated", staffB[:len(staffB)-1]},
		{"trailing byte", append(bytes.Clone(staffB), 0)},
		{"staff kind too short", staffB[:20]},
		{"staff's zero reader", func() []byte {
			b := bytes.Clone(staffB)
			copy(b[3+ConversationIDSize:], make([]byte, IdentitySize))
			return b
		}()},
		{"repeated id", func() []byte {
			b := bytes.Clone(staffB)
			copy(b[len(b)-MessageIDSize:], b[len(b)-2*MessageIDSize:])
			return b
		}()},
		{"team kind as long as the staff kind", append([]byte{tagReceipt, encodingVersion, receiptTeam}, staffB[3:]...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseReceipt(tc.b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseReceipt: %v, want ErrMalformed", err)
			}
		})
	}
}
