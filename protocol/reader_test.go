package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// The Reader's contract, which every decoder (frames here, the client's
// records) relies on: the first failure sticks and names its field, later
// reads return zero values, lengths are checked before data is touched.
func TestReader(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		read    func(r *Reader)
		wantErr error  // nil: Finish succeeds
		wantMsg string // a part of the error
	}{
		{"fields", []byte{1, 0, 2, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4, 0, 2, 'h', 'i', 'x'}, func(r *Reader) {
			if r.U8("a") != 1 || r.U16("b") != 2 || r.U32("c") != 3 || r.U64("d") != 4 {
				t.Error("wrong values")
			}
			if got := r.Bytes16(2, "e"); string(got) != "hi" {
				t.Errorf("Bytes16 = %q", got)
			}
			if got := r.Rest(); string(got) != "x" {
				t.Errorf("Rest = %q", got)
			}
		}, nil, ""},
		{"short", []byte{0, 1, 2}, func(r *Reader) {
			r.U16("first")
			if v := r.U16("second"); v != 0 {
				t.Errorf("U16 after a short read = %d, want 0", v)
			}
			if b := r.Take(0, "third"); b != nil {
				t.Error("Take after a failure returned bytes")
			}
		}, ErrMalformed, "second: need 2 bytes, have 1"},
		{"over limit", []byte{0, 9, 1, 2}, func(r *Reader) {
			if r.Bytes16(8, "blob") != nil {
				t.Error("Bytes16 over its limit returned bytes")
			}
		}, ErrTooLarge, "blob: 9 bytes, limit 8"},
		{"trailing", []byte{7, 8}, func(r *Reader) { r.U8("one") }, ErrMalformed, "record: 1 trailing bytes"},
		{"first failure sticks", []byte{5}, func(r *Reader) {
			r.Failf("field %d is odd", 5)
			r.SetErr(ErrVersion)
			r.U8("next")
		}, ErrMalformed, "field 5 is odd"},
		{"negative take", []byte{1}, func(r *Reader) { r.Take(-1, "len") }, ErrMalformed, "len: need -1 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReader(tc.in)
			tc.read(r)
			err := r.Finish("record")
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Finish = %v", err)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Finish = %v, want %v with %q", err, tc.wantErr, tc.wantMsg)
			}
		})
	}
}

// Bytes16 and Rest copy: a decoded frame must not change when the buffer
// it came from is reused.
func TestReaderCopies(t *testing.T) {
	in := []byte{0, 2, 'a', 'b', 'c'}
	r := NewReader(in)
	b, rest := r.Bytes16(2, "b"), r.Rest()
	copy(in, bytes.Repeat([]byte{'z'}, len(in)))
	if string(b) != "ab" || string(rest) != "c" {
		t.Fatalf("values changed with their input: %q %q", b, rest)
	}
}
