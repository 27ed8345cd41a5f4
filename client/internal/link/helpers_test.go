package link

import "crypto/sha256"

// withSum appends the 4-byte checksum of SPEC section 13.1.
func withSum(b []byte) []byte {
	s := sha256.Sum256(b)
	return append(b, s[:checksumSize]...)
}
