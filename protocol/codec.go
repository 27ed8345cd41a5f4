package protocol

import "encoding/binary"

// reader decodes big-endian fields and remembers the first failure, so that
// a frame's decoder reads straight through and checks once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = errorf(ErrMalformed, format, args...)
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b) < n {
		r.fail("%s: need %d bytes, have %d", what, n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8(what string) uint8 {
	b := r.take(1, what)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16(what string) uint16 {
	b := r.take(2, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) u32(what string) uint32 {
	b := r.take(4, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) u64(what string) uint64 {
	b := r.take(8, what)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// bytes16 reads a u16 length prefix and that many bytes, refusing lengths
// above max before touching the data.
func (r *reader) bytes16(max int, what string) []byte {
	n := int(r.u16(what + " length"))
	if r.err != nil {
		return nil
	}
	if n > max {
		if r.err == nil {
			r.err = errorf(ErrTooLarge, "%s: %d bytes, limit %d", what, n, max)
		}
		return nil
	}
	return clone(r.take(n, what))
}

// rest returns everything left; the field must be the frame's last.
func (r *reader) rest() []byte {
	if r.err != nil {
		return nil
	}
	out := clone(r.b)
	r.b = nil
	return out
}

func (r *reader) array(dst []byte, what string) {
	copy(dst, r.take(len(dst), what))
}

// done reports the first error, or trailing bytes if everything parsed.
func (r *reader) done(t FrameType) error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("frame 0x%02x: %d trailing bytes", uint8(t), len(r.b))
	}
	return r.err
}

func clone(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append(make([]byte, 0, len(b)), b...)
}

func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// appendBytes16 writes a u16 length prefix and the bytes. Callers keep
// lengths within the limits (Marshal is for well-formed frames); a longer
// value is truncated in the prefix and will fail to parse, never panic.
func appendBytes16(b, v []byte) []byte {
	return append(appendU16(b, uint16(len(v))), v...)
}
