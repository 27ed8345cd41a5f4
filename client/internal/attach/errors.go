package attach

import "errors"

// Sentinel errors. Test with errors.Is. No error of this package carries
// key material, plaintext or ciphertext.
var (
	// ErrDecrypt is the one error for every chunk that does not
	// authenticate: a flipped bit, a chunk of another file or at another
	// index, a chunk whose final flag is wrong (the last chunk dropped or
	// moved), a chunk of the wrong length, the wrong key.
	ErrDecrypt = errors.New("attach: decryption failed")

	// ErrTruncated reports a ciphertext stream that ended before every
	// padded chunk arrived (Decryptor.Close), or a plaintext source that is
	// shorter than the size given to NewEncryptor.
	ErrTruncated = errors.New("attach: truncated")

	// ErrTooLarge reports a plaintext size above MaxPlainSize.
	ErrTooLarge = errors.New("attach: file too large")

	// ErrMalformed reports input that does not follow protocol/SPEC.md
	// section 12.2 and does not depend on the key: a negative size, a key
	// of the wrong length, a chunk index out of range, ciphertext beyond
	// the last chunk, or an authenticated chunk whose padding bytes are not
	// zero (a sender that does not follow the format).
	ErrMalformed = errors.New("attach: malformed")
)
