package directory

import (
	"encoding/binary"
	"slices"
	"time"

	"github.com/postern/postern/keys"
)

// ContextStatus is the signature context of a status record (SPEC.md
// section 15.7, "Availability").
const ContextStatus = "availability"

// Availability is what a person says of themselves.
type Availability uint8

const (
	Available Availability = 1
	Busy      Availability = 2
	OffDuty   Availability = 3
)

func (a Availability) String() string {
	switch a {
	case Available:
		return "available"
	case Busy:
		return "busy"
	case OffDuty:
		return "off duty"
	}
	return "unknown"
}

// Status is a person's signed availability, do-not-disturb and
// forwarding. A newer one (by Time) replaces the one held.
type Status struct {
	Org     OrgID
	Subject keys.Fingerprint // whose status; the signer's identity
	Time    time.Time        // when it was set, unix seconds, >= 1
	State   Availability
	// DNDUntil is when do-not-disturb ends (zero time: none).
	DNDUntil time.Time
	// Forward is the colleague who receives for the subject while
	// do-not-disturb runs or the subject is off duty (zero: nobody).
	Forward keys.Fingerprint

	Signer    *keys.SigningPublicKey
	Signature []byte
}

func (s *Status) check() error {
	if t, ok := unixTime(s.Time); !ok || t == 0 {
		return fail(ErrMalformed, "status: time out of range")
	}
	if s.State < Available || s.State > OffDuty {
		return fail(ErrMalformed, "status: availability %d", s.State)
	}
	if !s.DNDUntil.IsZero() {
		if t, ok := unixTime(s.DNDUntil); !ok || t == 0 {
			return fail(ErrMalformed, "status: do-not-disturb end out of range")
		}
	}
	if s.Subject == (keys.Fingerprint{}) || s.Forward == s.Subject {
		return fail(ErrMalformed, "status: zero subject, or forwarding to the subject")
	}
	if s.Signer == nil {
		return fail(ErrMalformed, "status: no signer key")
	}
	if s.Signer.Fingerprint() != s.Subject {
		return fail(ErrNotEntitled, "status: signed by another identity than its subject")
	}
	return nil
}

func (s *Status) signedPart() ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	t, _ := unixTime(s.Time)
	var dnd uint64
	if !s.DNDUntil.IsZero() {
		dnd, _ = unixTime(s.DNDUntil)
	}
	b := make([]byte, 0, StatusSize)
	b = append(b, tagStatus, encodingVersion)
	b = append(b, s.Org[:]...)
	b = append(b, s.Subject[:]...)
	b = binary.BigEndian.AppendUint64(b, t)
	b = append(b, byte(s.State))
	b = binary.BigEndian.AppendUint64(b, dnd)
	b = append(b, s.Forward[:]...)
	return append(b, s.Signer.Bytes()...), nil
}

// Bytes returns the encoding (StatusSize bytes).
func (s *Status) Bytes() ([]byte, error) {
	b, err := s.signedPart()
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, keys.SignatureSize)
	if len(s.Signature) != keys.SignatureSize {
		return append(b, make([]byte, keys.SignatureSize)...), nil
	}
	return append(b, s.Signature...), nil
}

// Sign signs s with the subject's identity key (s.Signer and s.Subject
// become its key and fingerprint) and returns the encoding, parsed back
// and verified.
func (s *Status) Sign(id Signer) ([]byte, error) {
	s.Signer = id.Public()
	s.Subject = s.Signer.Fingerprint()
	part, err := s.signedPart()
	if err != nil {
		return nil, err
	}
	if s.Signature, err = id.Sign(ContextStatus, part); err != nil {
		return nil, err
	}
	b, err := s.Bytes()
	if err != nil {
		return nil, err
	}
	if _, err := ParseStatus(b); err != nil {
		return nil, err
	}
	return b, nil
}

func decodeStatus(b []byte) (*Status, error) {
	if len(b) != StatusSize {
		return nil, fail(ErrMalformed, "status: length %d, want %d", len(b), StatusSize)
	}
	if b[0] != tagStatus || b[1] != encodingVersion {
		return nil, fail(ErrMalformed, "status: tag 0x%02x version 0x%02x", b[0], b[1])
	}
	r := &reader{b: b, off: 2}
	s := &Status{Org: OrgID(r.id16()), Subject: r.fingerprint()}
	var ok bool
	if s.Time, ok = r.time(); !ok {
		return nil, fail(ErrMalformed, "status: time after 9999-12-31")
	}
	s.State = Availability(r.u8())
	dnd, ok := r.time()
	if !ok {
		return nil, fail(ErrMalformed, "status: do-not-disturb end after 9999-12-31")
	}
	if dnd.Unix() != 0 {
		s.DNDUntil = dnd
	}
	s.Forward = r.fingerprint()
	k, sig, err := readTrailer(r, "status")
	if err != nil {
		return nil, err
	}
	s.Signer, s.Signature = k, sig
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// ParseStatus parses a status and verifies its signature by its subject's
// identity key (the signer key it carries, whose fingerprint must be the
// subject: ErrNotEntitled otherwise).
func ParseStatus(b []byte) (*Status, error) {
	s, err := decodeStatus(b)
	if err != nil {
		return nil, err
	}
	end := StatusSize - 2 - keys.SignatureSize
	if err := verify(s.Signer, ContextStatus, b[:end], s.Signature, "status"); err != nil {
		return nil, err
	}
	return s, nil
}

// AcceptStatus parses b and accepts it as the subject's status under d,
// replacing held (nil: none held for that subject): ErrMalformed,
// ErrBadSignature, ErrNotEntitled (signed by another than its subject),
// ErrWrongOrganisation, ErrUnknown (the subject is not staff of d),
// ErrFuture (dated more than MaxClockSkew after now), ErrRollback (not
// later than held).
func (d *Directory) AcceptStatus(held *Status, b []byte, now time.Time) (*Status, error) {
	s, err := ParseStatus(b)
	if err != nil {
		return nil, err
	}
	if s.Org != d.Org {
		return nil, ErrWrongOrganisation
	}
	if d.Person(s.Subject) == nil {
		return nil, fail(ErrUnknown, "the status's subject is not staff")
	}
	if s.Time.After(now.Add(MaxClockSkew)) {
		return nil, ErrFuture
	}
	if held != nil {
		if held.Subject != s.Subject {
			return nil, fail(ErrUnknown, "the held status is another person's")
		}
		if !s.Time.After(held.Time) {
			return nil, fail(ErrRollback, "status not later than the one held")
		}
	}
	return s, nil
}

// Forwarding reports whether s sends its subject's messages on at now:
// a colleague is named and do-not-disturb runs (now before DNDUntil) or
// the subject is off duty.
func (s *Status) Forwarding(now time.Time) bool {
	if s == nil || s.Forward == (keys.Fingerprint{}) {
		return false
	}
	return s.State == OffDuty || now.Before(s.DNDUntil)
}

// DoNotDisturb reports whether do-not-disturb runs at now.
func (s *Status) DoNotDisturb(now time.Time) bool { return s != nil && now.Before(s.DNDUntil) }

// Delivery is where a message for a person goes now.
type Delivery struct {
	To  keys.Fingerprint   // who receives it
	Via []keys.Fingerprint // the people it was forwarded from, the addressee first (empty: not forwarded)
}

// Route answers "who should receive a message for to, now": it follows
// each status that forwards (Forwarding) to the colleague it names, at
// most MaxForwardHops times. status gives the status held for a person
// (nil: none). A chain that returns to someone already on it is
// ErrForwardLoop; one longer than MaxForwardHops, or to someone who is not
// staff of d, is ErrForwardChain. On an error the returned Delivery is the
// addressee alone: the message still reaches them.
func (d *Directory) Route(to keys.Fingerprint, now time.Time, status func(keys.Fingerprint) *Status) (Delivery, error) {
	cur := to
	var via []keys.Fingerprint
	for {
		s := status(cur)
		if s == nil || s.Subject != cur || s.Org != d.Org || !s.Forwarding(now) {
			return Delivery{To: cur, Via: via}, nil
		}
		next := s.Forward
		via = append(via, cur)
		switch {
		case next == to || slices.Contains(via, next):
			return Delivery{To: to}, ErrForwardLoop
		case len(via) > MaxForwardHops:
			return Delivery{To: to}, fail(ErrForwardChain, "more than %d hops", MaxForwardHops)
		case d.Person(next) == nil:
			return Delivery{To: to}, fail(ErrForwardChain, "forwarded to someone not in the directory")
		}
		cur = next
	}
}
