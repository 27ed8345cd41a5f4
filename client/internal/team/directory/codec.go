package directory

import (
	"encoding/binary"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/postern/postern/keys"
)

// reader reads fields from b in order. The first short read sets bad; every
// later read returns zero values, so a decoder checks bad once per entry.
type reader struct {
	b   []byte
	off int
	bad bool
}

func (r *reader) next(n int) []byte {
	if r.bad || n < 0 || len(r.b)-r.off < n {
		r.bad = true
		return make([]byte, max(n, 0)) // zeros; n is a length field (at most 65535) or a fixed size
	}
	f := r.b[r.off : r.off+n]
	r.off += n
	return f
}

func (r *reader) u8() int     { return int(r.next(1)[0]) }
func (r *reader) u16() int    { return int(binary.BigEndian.Uint16(r.next(2))) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.next(8)) }

func (r *reader) fingerprint() (f keys.Fingerprint) {
	copy(f[:], r.next(keys.FingerprintSize))
	return f
}

func (r *reader) id16() (id [16]byte) {
	copy(id[:], r.next(16))
	return id
}

// str reads u8(len) || bytes.
func (r *reader) str() string { return string(r.next(r.u8())) }

// time reads a u64 unix time, refusing one after 9999-12-31.
func (r *reader) time() (time.Time, bool) {
	u := r.u64()
	if u > maxUnixTime {
		return time.Time{}, false
	}
	return time.Unix(int64(u), 0).UTC(), true
}

func appendStr(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// unixTime is t in unix seconds, or false outside 0..9999-12-31 or with a
// fraction of a second (it would not round-trip).
func unixTime(t time.Time) (uint64, bool) {
	s := t.Unix()
	if s < 0 || s > maxUnixTime || t.Nanosecond() != 0 {
		return 0, false
	}
	return uint64(s), true
}

// checkName reports whether s may be a name or a role title: at most
// MaxNameSize bytes of valid UTF-8 with no control or format characters,
// no line or paragraph separators, no space at either end and (if
// required) at least one byte.
func checkName(s string, required bool) bool {
	if len(s) > MaxNameSize || (required && s == "") || !utf8.ValidString(s) {
		return false
	}
	if s != strings.TrimSpace(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) || c == '\u2028' || c == '\u2029' {
			return false
		}
	}
	return true
}

// readTrailer reads the signer key and signature after signedEnd and
// requires that they end the input exactly.
func readTrailer(r *reader, obj string) (*keys.SigningPublicKey, []byte, error) {
	raw := r.next(keys.SigningPublicKeySize)
	sl := r.u16()
	if r.bad {
		return nil, nil, fail(ErrMalformed, "%s: truncated signer key or signature length", obj)
	}
	if sl != keys.SignatureSize {
		return nil, nil, fail(ErrMalformed, "%s: signature length %d, want %d", obj, sl, keys.SignatureSize)
	}
	if len(r.b)-r.off != keys.SignatureSize {
		return nil, nil, fail(ErrMalformed, "%s: %d bytes after the signature length, want %d", obj, len(r.b)-r.off, keys.SignatureSize)
	}
	sig := append([]byte(nil), r.next(keys.SignatureSize)...)
	k, err := parseSigner(raw)
	if err != nil {
		return nil, nil, fail(ErrMalformed, "%s: signer key rejected", obj)
	}
	return k, sig, nil
}

// parseSigner parses a signer's key. The fuzz targets replace it with a
// memoizing wrapper of the same function: expanding an ML-DSA-65 key costs
// far more than everything else a decoder does, and under the fuzzer's
// coverage instrumentation it would leave a few executions per second.
var parseSigner = keys.ParseSigningPublicKey

// appendTrailer appends signer key || u16 len(sig) || sig; a signature of
// the wrong length is written as zeros (the result does not verify).
func appendTrailer(b []byte, k *keys.SigningPublicKey, sig []byte) []byte {
	b = append(b, k.Bytes()...)
	b = binary.BigEndian.AppendUint16(b, keys.SignatureSize)
	if len(sig) != keys.SignatureSize {
		return append(b, make([]byte, keys.SignatureSize)...)
	}
	return append(b, sig...)
}

// Signer is an identity key that signs: *identity.Identity satisfies it.
// The package signs through it so that it never holds a private key.
type Signer interface {
	// Public returns the verification key.
	Public() *keys.SigningPublicKey
	// Sign returns a hybrid signature over msg in the given context
	// (protocol/SPEC.md section 8, "Hybrid signatures").
	Sign(context string, msg []byte) ([]byte, error)
}

// verify checks sig by k over msg in context, mapping every failure to
// ErrBadSignature.
func verify(k *keys.SigningPublicKey, context string, msg, sig []byte, obj string) error {
	if k.Verify(context, msg, sig) != nil {
		return fail(ErrBadSignature, "%s", obj)
	}
	return nil
}
