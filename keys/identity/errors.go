package identity

import "errors"

// Sentinel errors. Test with errors.Is. No error from this package contains
// secret material, passphrases, or the raw bytes it was given.
var (
	// ErrDecrypt is the one error of Device.Open and Prekey.Open, whatever
	// went wrong (wrong key, tampered enc or ciphertext, wrong info or aad,
	// truncation), so that a decryption oracle learns nothing from errors.
	ErrDecrypt = errors.New("identity: decryption failed")

	// ErrWrongPassphrase is the one error of OpenKeyFile when the
	// authenticated decryption fails: a wrong passphrase and a tampered file
	// (including its header, which is authenticated) look the same.
	ErrWrongPassphrase = errors.New("identity: wrong passphrase or corrupted key file")

	// ErrKeyFileFormat reports a key file that cannot be an intact file of
	// ours (unknown tag or version, truncated) or whose Argon2id parameters
	// are out of range, including parameters above the caps that protect
	// against a hostile file exhausting memory or time.
	ErrKeyFileFormat = errors.New("identity: unsupported or malformed key file")

	// ErrMalformedSecret reports a secret key encoding that does not follow
	// SPEC.md, or whose seeds do not derive the public keys stored with them.
	ErrMalformedSecret = errors.New("identity: malformed secret key")

	// ErrRandom reports a failure of crypto/rand.
	ErrRandom = errors.New("identity: random source failed")
)

// detailError carries a specific, non-secret message while matching a
// sentinel with errors.Is.
type detailError struct {
	msg      string
	sentinel error
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.sentinel }

func detail(sentinel error, msg string) error { return &detailError{msg: msg, sentinel: sentinel} }
