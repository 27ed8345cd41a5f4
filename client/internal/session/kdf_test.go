package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

// TestKDFCK: the state-reusing chain KDF is HMAC-SHA256 as SPEC.md 11.4
// writes it, for many keys.
func TestKDFCK(t *testing.T) {
	for range 200 {
		var ck [keySize]byte
		rand.Read(ck[:])
		next, mk := kdfCK(&ck)
		m := hmac.New(sha256.New, ck[:])
		m.Write([]byte("postern.v1 session message-key"))
		wantMK := m.Sum(nil)
		m = hmac.New(sha256.New, ck[:])
		m.Write([]byte("postern.v1 session chain-key"))
		wantNext := m.Sum(nil)
		if string(mk[:]) != string(wantMK) || string(next[:]) != string(wantNext) {
			t.Fatal("kdfCK differs from HMAC-SHA256")
		}
		if n2, m2 := kdfCKSlow(&ck); n2 != next || m2 != mk {
			t.Fatal("kdfCKSlow differs")
		}
	}
}

func BenchmarkKDFCK(b *testing.B) {
	var ck [keySize]byte
	b.ReportAllocs()
	for b.Loop() {
		ck, _ = kdfCK(&ck)
	}
}
