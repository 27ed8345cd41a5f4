package protocol

import "encoding/binary"

// Reader decodes big-endian fields from a byte string and remembers the
// first failure, so that a decoder reads straight through and checks once
// at the end (Err or Finish). After a failure every method returns zero
// values and reads nothing. It is the one byte reader of the project's
// decoders: frames here, and the client's stored and sealed records.
//
// Failures wrap ErrMalformed (short input, trailing bytes, Failf) or
// ErrTooLarge (a length prefix above its limit) and name the field, given
// as what. Fixed-size fields (Take, Array) alias the input; Bytes16 and
// Rest return copies. The zero value reads an empty string.
type Reader struct {
	b   []byte
	err error
}

// NewReader returns a Reader over b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first failure, or nil.
func (r *Reader) Err() error { return r.err }

// Len is the number of bytes not yet read.
func (r *Reader) Len() int { return len(r.b) }

// SetErr records err as the failure unless one is recorded already.
func (r *Reader) SetErr(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Failf records an ErrMalformed failure unless one is recorded already.
func (r *Reader) Failf(format string, args ...any) {
	if r.err == nil {
		r.err = errorf(ErrMalformed, format, args...)
	}
}

// Take returns the next n bytes (aliasing the input, capacity n), or nil
// when fewer are left or a failure came before.
func (r *Reader) Take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.Failf("%s: need %d bytes, have %d", what, n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

// U8 reads one byte.
func (r *Reader) U8(what string) uint8 {
	b := r.Take(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

// U16 reads a big-endian uint16.
func (r *Reader) U16(what string) uint16 {
	b := r.Take(2, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

// U32 reads a big-endian uint32.
func (r *Reader) U32(what string) uint32 {
	b := r.Take(4, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// U64 reads a big-endian uint64.
func (r *Reader) U64(what string) uint64 {
	b := r.Take(8, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// Array fills dst with the next len(dst) bytes; on a failure dst is left
// as it was.
func (r *Reader) Array(dst []byte, what string) {
	copy(dst, r.Take(len(dst), what))
}

// Bytes16 reads a u16 length prefix and that many bytes, refusing lengths
// above max (ErrTooLarge) before touching the data. It returns a copy.
func (r *Reader) Bytes16(max int, what string) []byte {
	n := int(r.U16(what + " length"))
	if r.err != nil {
		return nil
	}
	if n > max {
		r.SetErr(errorf(ErrTooLarge, "%s: %d bytes, limit %d", what, n, max))
		return nil
	}
	return clone(r.Take(n, what))
}

// Rest returns a copy of everything left; the field must be the last.
func (r *Reader) Rest() []byte {
	if r.err != nil {
		return nil
	}
	out := clone(r.b)
	r.b = nil
	return out
}

// Finish returns the first failure, or an ErrMalformed naming what when
// bytes are left over after a clean read.
func (r *Reader) Finish(what string) error {
	if r.err == nil && len(r.b) != 0 {
		r.Failf("%s: %d trailing bytes", what, len(r.b))
	}
	return r.err
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}
