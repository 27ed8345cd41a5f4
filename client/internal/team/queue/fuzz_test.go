package queue

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// Fuzz targets for every decoder: any input accepted re-encodes to the
// same bytes; nothing panics. Seeds are the encodings of the tests'
// samples.

func FuzzParseChange(f *testing.F) {
	s := newTestSpace(f)
	var seeds [][]byte
	for _, n := range []int{1, 2, 3} {
		b, err := sampleChange(f, s, n).MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		seeds = append(seeds, b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ch, err := ParseChange(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := ch.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted input re-encodes differently (%v)", err)
		}
		// Only the genuine changes open; a forged one fails and changes
		// nothing.
		v := NewView()
		n, err := s.Receive(v, ch)
		switch {
		case err != nil && (n != 0 || v.Len() != 0):
			t.Fatalf("a refused change moved the view: %d, %v", n, err)
		case err == nil && !slices.ContainsFunc(seeds, func(s []byte) bool { return bytes.Equal(s, b) }):
			t.Fatal("a change that is not a seed opened")
		}
	})
}

func FuzzParseReceipt(f *testing.F) {
	for _, r := range sampleReceipts() {
		b, err := r.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReceipt(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		again, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted input re-encodes differently (%v)", err)
		}
	})
}

func FuzzUnmarshalValue(f *testing.F) {
	for _, v := range sampleValues() {
		b, err := v.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Value
		if err := v.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			if v != (Value{}) {
				t.Fatal("a failed decode changed the value")
			}
			return
		}
		again, err := v.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted input re-encodes differently (%v)", err)
		}
	})
}

// FuzzOpen: hostile sealed values never open and never panic; a value
// that opens (the seeds) seals again, with its own nonce, to the same
// bytes.
func FuzzOpen(f *testing.F) {
	ck, _ := ClaimKeyFromSecret(bytes.Repeat([]byte{7}, KeySize))
	tk, _ := TeamKeyFromSecret(3, bytes.Repeat([]byte{9}, KeySize))
	s := mustSpace(f, testSpaceID, ck, tk)
	for _, v := range sampleValues() {
		f.Add(mustSeal(f, s, conv(1), v))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := s.Open(conv(1), b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDecrypt) && !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		var nonce [nonceSize]byte
		copy(nonce[:], b[5:])
		if again := sealValue(tk, testSpaceID, ck.Token(conv(1)), nonce, v); !bytes.Equal(again, b) {
			t.Fatal("an opened value seals again to other bytes")
		}
	})
}

// FuzzTransitions runs an operation sequence drawn from the input and
// checks the model's rules on every accepted step (TestModelRules with
// the fuzzer's choices).
func FuzzTransitions(f *testing.F) {
	f.Add([]byte{1, 0, 0, 2, 0, 1, 3, 1, 0, 4, 2, 0, 5, 2, 0})
	f.Add([]byte{1, 1, 0, 8, 3, 1, 8, 3, 0, 6, 2, 1, 7, 0, 0})
	people := []Actor{alice, bob, carol, dana, olga, {Identity: ident(6), Role: Admin}, {}}
	f.Fuzz(func(t *testing.T, b []byte) {
		cur := Initial(t0, false)
		for len(b) >= 3 {
			x, y, z := b[0], b[1], b[2]
			b = b[3:]
			o := op{
				kind:    Op(x % (byte(OpRelease) + 1)),
				by:      people[int(y)%len(people)],
				to:      people[int(z)%len(people)],
				removed: people[int(y>>4)%len(people)].Identity,
				from:    people[int(z>>4)%len(people)].Identity,
				release: z&0x80 != 0,
				at:      t0 + uint64(z),
				flag:    x&0x80 != 0,
			}
			if o.kind == 0 {
				continue
			}
			next, err := o.apply(cur)
			if err != nil {
				if next != (Value{}) {
					t.Fatalf("a refused %s returned a value", o.kind)
				}
				continue
			}
			if err := next.Check(); err != nil {
				t.Fatalf("%s gave an invalid value: %v", o.kind, err)
			}
			if !checkWrite(cur, next, o) {
				t.Fatalf("%s from %+v to %+v breaks the model's rules", o.kind, cur, next)
			}
			cur = next
		}
	})
}
