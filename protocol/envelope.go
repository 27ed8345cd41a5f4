package protocol

// EnvelopeKind is the envelope's second byte. The relay accepts any
// non-zero kind and treats the body as opaque; kinds are the client's.
type EnvelopeKind uint8

const (
	// KindSealed: HPKE (X-Wing) sealed to the recipient device, sender
	// signature inside (SPEC.md "Sealed envelopes").
	KindSealed EnvelopeKind = 0x01
	// KindSession: a ratchet session message (reserved for sessions).
	KindSession EnvelopeKind = 0x02
	// KindLink: a part of a device-link request or response (SPEC.md
	// section 13.3), sealed by the link code's keys.
	KindLink EnvelopeKind = 0x03
	// KindGroup: a group message sealed once with the sender's sender
	// key (SPEC.md section 15.5), fanned out by the relay to every
	// member device's group mailbox.
	KindGroup EnvelopeKind = 0x04
	// KindGroupIntro: a member device's introduction of itself to
	// another member device, through that device's group mailbox,
	// sealed under a key derived from the group's header key (SPEC.md
	// section 15.10).
	KindGroupIntro EnvelopeKind = 0x05
)

// EnvelopeHeaderSize is the version and kind bytes.
const EnvelopeHeaderSize = 2

// CheckEnvelope validates what the relay may check of an envelope: its
// size is exactly one of the Buckets, its first byte is Version and its
// kind is not zero. It wraps ErrTooLarge, ErrMalformed or ErrVersion.
func CheckEnvelope(b []byte) error {
	if len(b) > MaxEnvelopeSize {
		return errorf(ErrTooLarge, "envelope of %d bytes exceeds %d", len(b), MaxEnvelopeSize)
	}
	if BucketIndex(len(b)) < 0 {
		return errorf(ErrMalformed, "envelope of %d bytes is not a padding bucket", len(b))
	}
	if b[0] != Version {
		return errorf(ErrVersion, "envelope version %d, want %d", b[0], Version)
	}
	if b[1] == 0 {
		return errorf(ErrMalformed, "envelope kind 0")
	}
	return nil
}
