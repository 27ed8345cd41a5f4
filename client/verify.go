package client

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"

	"github.com/postern/postern/client/internal/store"
)

// Verification is what the user knows of a contact's identity key
// (protocol/SPEC.md section 9 "Local state", person records).
type Verification uint8

const (
	// Unverified: the key came with an invitation or an introduction;
	// nobody compared the safety number yet.
	Unverified = Verification(store.Unverified)
	// Verified: the user compared the safety number out of band and
	// confirmed it (VerifyContact).
	Verified = Verification(store.Verified)
	// Changed: the contact's identity key changed since it was seen.
	// Nothing is sent to the contact until the user compares the new
	// safety number and confirms it with VerifyContact.
	Changed = Verification(store.Changed)
)

func (v Verification) String() string {
	switch v {
	case Unverified:
		return "unverified"
	case Verified:
		return "verified"
	case Changed:
		return "changed"
	}
	return fmt.Sprintf("Verification(%d)", uint8(v))
}

var (
	// ErrSafetyNumberMismatch: VerifyContact was given a safety number
	// that is not the contact's. Nothing was changed: compare again, over
	// a channel the relay does not control.
	ErrSafetyNumberMismatch = errors.New("client: the safety number does not match this contact's")
	// ErrIdentityChanged: Send or SendFiles to a contact whose identity
	// key changed (Verification Changed). Nothing was sent.
	ErrIdentityChanged = errors.New("client: this contact's safety number changed")
)

// identityChangedError is ErrIdentityChanged naming the contact.
type identityChangedError struct{ name string }

func (e *identityChangedError) Error() string {
	return "client: " + e.name + "'s safety number changed; nothing was sent until you compare the new one and confirm it"
}
func (e *identityChangedError) Unwrap() error { return ErrIdentityChanged }

// SafetyQRPrefix begins the text of a safety number's QR code
// (protocol/SPEC.md section 8 "Safety number"): a versioned tag, so that a
// scanner tells it from a link code or an invitation.
const SafetyQRPrefix = "postern-safety:1:"

// SafetyNumberQR is the text a QR code of safetyNumber holds:
// SafetyQRPrefix and its 60 digits without spaces. VerifyContact takes it
// as well as the digits.
func SafetyNumberQR(safetyNumber string) string {
	return SafetyQRPrefix + digitsOnly(safetyNumber)
}

// VerifyContact records that the user compared the contact's safety
// number out of band (in person, on a call) and confirms it: the contact
// becomes Verified, and a contact whose identity key changed (Changed)
// can be written to again. With safetyNumber non-empty it must be the
// contact's (spaces are ignored; the text of its QR code, SafetyNumberQR,
// is taken too), otherwise ErrSafetyNumberMismatch and
// nothing changes; with it empty, the caller vouches that the user
// compared the number Contacts shows.
func (c *Client) VerifyContact(name, safetyNumber string) error {
	r, err := c.lookupContact(name)
	if err != nil {
		return err
	}
	safetyNumber = strings.TrimPrefix(strings.TrimSpace(safetyNumber), SafetyQRPrefix)
	if safetyNumber != "" {
		want := digitsOnly(c.contact(r).SafetyNumber)
		if subtle.ConstantTimeCompare([]byte(digitsOnly(safetyNumber)), []byte(want)) != 1 {
			return ErrSafetyNumberMismatch
		}
	}
	if r.Person.Verification == store.Verified {
		return nil
	}
	if _, err := c.updateContact(r.ID, func(rec *contactRecord) { rec.Person.Verification = store.Verified }); err != nil {
		return ignoreGone(err)
	}
	c.log.Info("contact verified")
	c.contactChanged(r.Person.Name, ContactVerified)
	return nil
}

func digitsOnly(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' {
			return -1
		}
		return r
	}, s)
}
