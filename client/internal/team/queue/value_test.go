package queue

import (
	"bytes"
	"errors"
	"testing"
)

func TestValueRoundTrip(t *testing.T) {
	for _, v := range sampleValues() {
		b, err := v.MarshalBinary()
		if err != nil {
			t.Fatalf("%+v: %v", v, err)
		}
		if len(b) != ValuePlaintextSize {
			t.Fatalf("%s value encodes to %d bytes, want %d", v.State, len(b), ValuePlaintextSize)
		}
		var got Value
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: %v", v.State, err)
		}
		if got != v {
			t.Fatalf("round trip: got %+v, want %+v", got, v)
		}
	}
}

func TestValueCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    Value
	}{
		{"zero value", Value{}},
		{"unknown state", Value{State: 6}},
		{"new with an owner", Value{State: New, Owner: ident(1)}},
		{"claimed without owner", Value{State: Claimed}},
		{"claimed with an assigner", Value{State: Claimed, Owner: ident(1), AssignedBy: ident(2)}},
		{"assigned without assigner", Value{State: Assigned, Owner: ident(1)}},
		{"assigned without owner", Value{State: Assigned, AssignedBy: ident(1)}},
		{"resolved with an owner", Value{State: Resolved, Owner: ident(1), Resolved: 5}},
		{"resolved without its time", Value{State: Resolved}},
		{"archived without its time", Value{State: Archived}},
		{"new with a resolved time", Value{State: New, Resolved: 5}},
		{"claimed with a resolved time", Value{State: Claimed, Owner: ident(1), Resolved: 5}},
		{"opened after MaxTime", Value{State: New, Opened: MaxTime + 1}},
		{"response after MaxTime", Value{State: New, FirstResponse: MaxTime + 1}},
		{"resolved after MaxTime", Value{State: Resolved, Resolved: MaxTime + 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.v.Check(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check: %v, want ErrMalformed", err)
			}
			if _, err := tc.v.MarshalBinary(); !errors.Is(err, ErrMalformed) {
				t.Fatalf("MarshalBinary: %v, want ErrMalformed", err)
			}
			// The same bytes written by hand do not decode either.
			b := tc.v.appendTo(nil)
			before := sampleValues()[2]
			got := before
			if err := got.UnmarshalBinary(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("UnmarshalBinary: %v, want ErrMalformed", err)
			}
			if got != before {
				t.Fatal("a failed UnmarshalBinary changed the value")
			}
		})
	}
}

func TestValueBytes(t *testing.T) {
	good, _ := sampleValues()[3].MarshalBinary()
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:len(b)-1] }},
		{"long", func(b []byte) []byte { return append(b, 0) }},
		{"empty", func([]byte) []byte { return nil }},
		{"unknown flag", func(b []byte) []byte { b[1] |= 2; return b }},
		{"padding not zero", func(b []byte) []byte { b[len(b)-1] = 1; return b }},
		{"first padding byte", func(b []byte) []byte { b[valueFieldsSize] = 0x80; return b }},
		{"state 0", func(b []byte) []byte { b[0] = 0; return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v Value
			if err := v.UnmarshalBinary(tc.edit(bytes.Clone(good))); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
}
