package backup

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"strings"
)

// Recovery key text (SPEC section 14.1).
const (
	// KeySize is the size of a recovery key: 256 random bits.
	KeySize = 32
	// Groups is the number of digit groups in the text form; each holds
	// two bytes of the key as 5 digits (00000..65535) and a check digit.
	Groups = KeySize / 2
	// GroupDigits is the number of digits per group.
	GroupDigits = 6
)

// RecoveryKey is the key a backup is encrypted under: 32 bytes from
// crypto/rand, shown to the user once. It is not comparable with ==
// (use Equal), and fmt prints it redacted; SecretText is the only way to
// its text.
type RecoveryKey struct {
	_ [0]func() // not comparable
	b [KeySize]byte
}

// NewRecoveryKey returns a fresh key from crypto/rand.
func NewRecoveryKey() RecoveryKey {
	var k RecoveryKey
	rand.Read(k.b[:]) // never fails (Go 1.24+)
	return k
}

// Equal compares in constant time.
func (k RecoveryKey) Equal(o RecoveryKey) bool {
	return subtle.ConstantTimeCompare(k.b[:], o.b[:]) == 1
}

// String redacts.
func (k RecoveryKey) String() string { return "backup.RecoveryKey(REDACTED)" }

// GoString redacts (%#v must not dump the bytes).
func (k RecoveryKey) GoString() string { return k.String() }

// Format prints String for every verb.
func (k RecoveryKey) Format(f fmt.State, _ rune) { fmt.Fprint(f, k.String()) }

// SecretText returns the key's SECRET text form: 16 groups of 6 digits,
// four groups to a line separated by spaces, lines separated by "\n".
// Whoever holds it can read the backup. Show it once; never log it.
func (k RecoveryKey) SecretText() string {
	var b strings.Builder
	for g := range Groups {
		switch {
		case g == 0:
		case g%4 == 0:
			b.WriteByte('\n')
		default:
			b.WriteByte(' ')
		}
		b.WriteString(group(g+1, binary.BigEndian.Uint16(k.b[2*g:])))
	}
	return b.String()
}

// group is the 6-digit text of group number n (1-based) holding v: five
// digits of v and the Damm check digit of n (two digits) and those five.
func group(n int, v uint16) string {
	d := fmt.Sprintf("%05d", v)
	return d + string(rune('0'+damm(fmt.Sprintf("%02d", n)+d)))
}

// ParseRecoveryKey reads a key written by SecretText. Groups may be
// separated by any white space or '-', or not at all (96 digits in a
// row). Errors are *RecoveryKeyError (matching ErrRecoveryKey) naming the
// group at fault: a wrong count of digits, a character that is not a
// digit, or a check digit that does not match (a typing error in that
// group: the check catches every single wrong digit and every swap of two
// neighbouring digits, and most groups typed in the wrong place).
func ParseRecoveryKey(s string) (RecoveryKey, error) {
	var k RecoveryKey
	fields := strings.FieldsFunc(s, func(r rune) bool {
		return r == '-' || r == ' ' || r == '\t' || r == '\n' || r == '\r'
	})
	if len(fields) == 1 && len(fields[0]) == Groups*GroupDigits {
		one := fields[0]
		fields = make([]string, Groups)
		for i := range fields {
			fields[i] = one[i*GroupDigits : (i+1)*GroupDigits]
		}
	}
	if len(fields) != Groups {
		return k, &RecoveryKeyError{Reason: fmt.Sprintf("%d groups, want %d groups of %d digits", len(fields), Groups, GroupDigits)}
	}
	for i, f := range fields {
		n := i + 1
		for _, r := range f {
			if r < '0' || r > '9' {
				return k, &RecoveryKeyError{Group: n, Reason: "has a character that is not a digit"}
			}
		}
		if len(f) != GroupDigits {
			return k, &RecoveryKeyError{Group: n, Reason: fmt.Sprintf("has %d digits, want %d", len(f), GroupDigits)}
		}
		if damm(fmt.Sprintf("%02d", n)+f) != 0 {
			return k, &RecoveryKeyError{Group: n, Reason: "is mistyped (its check digit does not match)"}
		}
		var v uint32
		for _, r := range f[:5] {
			v = v*10 + uint32(r-'0')
		}
		if v > 0xffff {
			// Only a typing error that the check digit missed gets here.
			return k, &RecoveryKeyError{Group: n, Reason: "is mistyped (its value is out of range)"}
		}
		binary.BigEndian.PutUint16(k.b[2*i:], uint16(v))
	}
	return k, nil
}

// dammTable is the quasigroup of order 10 of H. M. Damm's check digit
// algorithm (2004), as published: it detects every single-digit error and
// every transposition of adjacent digits.
var dammTable = [10][10]byte{
	{0, 3, 1, 7, 5, 9, 8, 6, 4, 2},
	{7, 0, 9, 2, 1, 5, 4, 8, 6, 3},
	{4, 2, 0, 6, 8, 7, 1, 3, 5, 9},
	{1, 7, 5, 0, 9, 8, 3, 4, 2, 6},
	{6, 1, 2, 3, 0, 4, 5, 9, 7, 8},
	{3, 6, 7, 4, 2, 0, 9, 5, 8, 1},
	{5, 8, 6, 9, 7, 2, 0, 1, 3, 4},
	{8, 9, 4, 5, 3, 6, 2, 0, 1, 7},
	{9, 4, 3, 8, 6, 1, 7, 2, 0, 5},
	{2, 5, 8, 1, 4, 3, 6, 7, 9, 0},
}

// damm returns the interim digit after the digits of s (ASCII '0'..'9'):
// the check digit of s, or 0 when s ends with its valid check digit.
func damm(s string) byte {
	var c byte
	for i := 0; i < len(s); i++ {
		c = dammTable[c][s[i]-'0']
	}
	return c
}

// KeyFromBytes returns the key whose 32 bytes are b: for a backup-format
// file whose key travels inside another encrypted channel instead of
// being shown to a user (the history of a device link, SPEC section
// 13.3). b must come from crypto/rand or a KDF over such bytes.
func KeyFromBytes(b []byte) (RecoveryKey, error) {
	var k RecoveryKey
	if len(b) != KeySize {
		return k, fmt.Errorf("backup: a key of %d bytes, want %d", len(b), KeySize)
	}
	copy(k.b[:], b)
	return k, nil
}
