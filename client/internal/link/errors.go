package link

import (
	"errors"
	"fmt"
)

// Sentinel errors. Test with errors.Is. No error of this package carries
// the link secret, a key or a capability.
var (
	// ErrMalformed is every link code that cannot be read: no
	// "postern-link:" prefix, bad base64url, a wrong length, trailing
	// bytes, a relay URL that is invalid, insecure or not canonical, an
	// all-zero secret, an expiry too far ahead. ErrChecksum also matches it.
	ErrMalformed = errors.New("link: malformed link code")

	// ErrChecksum is a code whose checksum does not match: almost always a
	// typing error or a code that was cut short when copied.
	ErrChecksum = fmt.Errorf("%w: checksum mismatch (mistyped or incomplete; copy the code again)", ErrMalformed)

	// ErrUnsupportedVersion is a code of another format version
	// ("postern-link:N:" with N other than 1): made by another release.
	ErrUnsupportedVersion = errors.New("link: link code of an unsupported version (made by another release of Postern)")

	// ErrExpired is a code whose expiry has passed (codes live at most
	// MaxLifetime). Ask the other device for a new code.
	ErrExpired = errors.New("link: link code expired (make a new one on the other device)")

	// ErrDecrypt is the one error for a request or response that does not
	// authenticate under the code's keys: made with another code, for
	// another request, or changed in transit.
	ErrDecrypt = errors.New("link: message does not authenticate under this link code")

	// ErrInvalidMessage is a request or response that authenticates but
	// whose content breaks a rule of SPEC section 13 (a size limit, a name
	// that is not printable UTF-8, a certificate that is not for the
	// requesting device, ...). Only the holder of the code can cause it.
	ErrInvalidMessage = errors.New("link: invalid link message")

	// ErrInvalidName is a device or person name that breaks the naming
	// rule (1..MaxNameSize bytes of printable UTF-8), refused before
	// anything is sealed.
	ErrInvalidName = errors.New("link: invalid name")
)

func malformedf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
}

func invalidf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidMessage}, a...)...)
}
func nameErrorf(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidName}, a...)...)
}
