// Package keys holds the public halves of Postern's keys and the
// primitives around them: X-Wing recipients (HPKE sealing), hybrid
// Ed25519 + ML-DSA-65 signature verification, fingerprints and safety
// numbers, device certificates and signed prekeys. The private halves
// (generation, signing, opening, key files) are in keys/identity, so that
// code which only verifies — the relay — cannot link private-key code.
//
// # Use
//
// To encrypt to a device, parse its X-Wing key and seal:
//
//	r, err := keys.ParseRecipient(b)          // exactly XWingPublicKeySize bytes
//	sealed, err := r.Seal(info, aad, plaintext) // enc || ciphertext
//
// info names the protocol step (it enters the HPKE key schedule), aad binds
// public data such as headers. The recipient opens with identity.Device.Open
// or identity.Prekey.Open, giving the same info and aad.
//
// To check who a device belongs to, parse its certificate, which verifies the
// identity's signature, then compare the identity fingerprint with the one
// the user confirmed (SafetyNumber):
//
//	c, err := keys.ParseDeviceCertificate(b)
//	if c.Identity.Fingerprint() != pinned { ... }
//
// Prekeys are verified against the device key from its certificate:
//
//	p, err := keys.ParseSignedPrekey(c.Signing, b)
//
// # Encodings
//
// Every encoded object starts with a type tag and a version byte, has fixed
// sizes, big-endian integers, and no trailing bytes; parsing then encoding
// gives back the same bytes. The layouts, labels and sizes are normative in
// protocol/SPEC.md (the keys section).
//
// # Security
//
//   - Hybrid everywhere: X-Wing combines ML-KEM-768 and X25519; a hybrid
//     signature is valid only if both its Ed25519 and ML-DSA-65 halves verify
//     over the same message M', which commits to the signer's whole hybrid
//     key (its fingerprint) and to a context string. Breaking one scheme
//     alone does not forge or decrypt.
//   - Contexts separate uses: a device-certificate signature never verifies
//     as a prekey signature, and a key's signature never verifies under
//     another key.
//   - Seal does not authenticate the sender: anyone may seal to a
//     Recipient. Authenticate inside the plaintext where it matters.
//   - Parsers check lengths before calling any library (circl panics on
//     wrong sizes), never panic on any input (fuzzed), and their errors
//     carry lengths and tags only, never input bytes.
//   - Signature failures are one sentinel, ErrBadSignature, whichever half
//     failed. ParseRecipient refuses a low-order X25519 half, which no
//     sender could use.
//   - Fingerprint.Short is for display and logs: 64 bits identify, they do
//     not authenticate. Compare full fingerprints or safety numbers.
//   - X-Wing operations use Go's crypto/hpke only; circl is used for
//     ML-DSA-65 (and, in tests, to cross-check X-Wing). Both libraries
//     derive the same X-Wing key from a seed (tested on the draft's vectors),
//     but production code never derives one key with two libraries.
//
// The package does no I/O and never logs. All types are immutable after
// parsing and safe for concurrent use.
package keys
