package store

import (
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxAccountLabel is the longest account label, in bytes.
const MaxAccountLabel = 64

// An account label names the person (or role) a device belongs to, as the
// relay's operator chose it: "dr.smith", an HR number. It comes from the
// operator only (with the invite that enrols the device, or assigned by
// an admin later), never from a client, and clients never see it.

// CheckAccountLabel returns nil if label can name an account: 1 to
// MaxAccountLabel bytes of UTF-8, every character printable (letters,
// marks, numbers, punctuation, symbols and the ASCII space; no control or
// format characters), no space at either end. Otherwise it returns an
// error matching ErrAccountLabel whose message says what is wrong without
// echoing the label ("account label: 70 bytes, want 1 to 64"). Labels
// compare byte for byte: case matters.
func CheckAccountLabel(label string) error {
	switch {
	case len(label) == 0 || len(label) > MaxAccountLabel:
		return labelError("%d bytes, want 1 to %d", len(label), MaxAccountLabel)
	case !utf8.ValidString(label):
		return labelError("not UTF-8")
	case label[0] == ' ' || label[len(label)-1] == ' ':
		return labelError("space at the start or end")
	}
	for _, r := range label {
		if !unicode.IsPrint(r) {
			return labelError("character %U is not allowed (printable characters and the ASCII space only)", r)
		}
	}
	return nil
}

// Account summarizes one account label: its devices by state and its
// pending invites. Nothing about mailboxes or counterparts.
type Account struct {
	Label                      string
	Active, Suspended, Revoked int       // devices in each state
	LastSeen                   time.Time // the latest last-seen day of its devices; zero if none recorded
	Invites                    int       // unused invite codes bound to it that have not expired
}
