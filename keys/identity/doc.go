// Package identity holds the private halves of Postern's keys: a person's
// identity signing key, each device's signing and X-Wing keys with the
// certificate the identity signed for it, and X-Wing prekeys. It generates
// them, signs, opens what keys.Recipient.Seal sealed, and stores secrets in
// passphrase-protected key files.
//
// # Use
//
// Once per person, and once per device:
//
//	id, err := identity.GenerateIdentity()
//	dev, err := identity.NewDevice(id)         // certificate signed by id
//	pre, err := identity.NewPrekey(dev, 1, true) // one-time prekey
//	publish(dev.Certificate().Bytes(), pre.Public().Bytes())
//
// To store a key, seal its secret encoding under a passphrase and write it
// with WriteKeyFile, which never overwrites; use ReplaceKeyFile to rewrite
// one (e.g. a new passphrase):
//
//	file, err := identity.SealKeyFile(pass, dev.MarshalSecret(), identity.DefaultKDFParams)
//	err = identity.WriteKeyFile(path, file)
//	...
//	payload, err := identity.OpenKeyFile(pass, file)
//	dev, err := identity.ParseDeviceSecret(payload)
//
// # Security
//
//   - Secret types (Identity, Device, Prekey) have unexported fields, are
//     not comparable with ==, and print redacted under every fmt verb
//     (%v, %#v, %x, %d...). Their secret encodings are only produced by the
//     loudly named MarshalSecret methods.
//   - Only seeds are stored: Ed25519 and ML-DSA-65 seeds and the X-Wing
//     32-byte seed. Expanded keys are derived on load, and a device or
//     prekey secret is refused if its seeds do not derive the keys in its
//     stored certificate or signed prekey.
//   - Every failure of Device.Open and Prekey.Open is ErrDecrypt, the same
//     value with the same text, so errors are no decryption oracle.
//   - ML-DSA-65 signs in hedged (randomized) mode; new certificates and
//     prekeys are verified right after signing, before anyone sees them.
//   - Key files: Argon2id (parameters in the header, capped at 1 GiB and 16
//     passes so a hostile file cannot exhaust the machine; the caps are
//     checked before anything is allocated) and XChaCha20-Poly1305 with the
//     whole header as additional data. A wrong passphrase and a tampered
//     file give the same ErrWrongPassphrase. Files are written 0600, with
//     fsync of the file and its directory.
//   - All randomness comes from crypto/rand.
//   - Go cannot promise that secrets are wiped from memory (the garbage
//     collector copies and frees as it likes); this package does not try.
//     Protect the process instead.
//   - A one-time prekey gives forward secrecy only once it is deleted:
//     delete it (and its key file) after the handshake it served.
//
// The package never logs. Identity, Device and Prekey are safe for
// concurrent use.
package identity
