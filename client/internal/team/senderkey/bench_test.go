package senderkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// The figures of SPEC.md 15.1: sealing and opening a 1 KiB plaintext as a
// group message, against a bare ChaCha20-Poly1305 seal of 1 KiB (the
// floor of any AEAD message) and a bare XChaCha20-Poly1305 seal.
//
//	go test -run '^$' -bench . -benchtime 2s ./client/internal/team/senderkey/

var plain1K = make([]byte, 1024)

func BenchmarkSeal1K(b *testing.B) {
	hk := mustHeaderKey(b)
	o := mustOwn(b, deviceID(1), 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(plain1K)))
	for b.Loop() {
		if _, err := o.Seal(hk, plain1K); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen1K(b *testing.B) {
	hk := mustHeaderKey(b)
	o := mustOwn(b, deviceID(1), 0)
	s := NewState(testGroup)
	mustAdd(b, s, o.Sender(), o.Distribution())
	ms := make([][]byte, b.N)
	for i := range ms {
		ms[i] = mustSeal(b, o, hk, string(plain1K))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(plain1K)))
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := s.Open(hk, ms[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen1KOutOfOrder opens messages in reverse order of ten: each
// group of ten derives nine skipped keys, then reads them.
func BenchmarkOpen1KOutOfOrder(b *testing.B) {
	hk := mustHeaderKey(b)
	o := mustOwn(b, deviceID(1), 0)
	s := NewState(testGroup)
	mustAdd(b, s, o.Sender(), o.Distribution())
	n := (b.N + 9) / 10 * 10
	ms := make([][]byte, n)
	for i := range ms {
		ms[i] = mustSeal(b, o, hk, string(plain1K))
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(plain1K)))
	b.ResetTimer()
	for i := range b.N {
		j := i/10*10 + 9 - i%10
		if _, _, err := s.Open(hk, ms[j]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBareChaCha20Poly1305Seal1K(b *testing.B) {
	key := make([]byte, chacha20poly1305.KeySize)
	rand.Read(key)
	a, _ := chacha20poly1305.New(key)
	nonce := make([]byte, chacha20poly1305.NonceSize)
	b.ReportAllocs()
	b.SetBytes(int64(len(plain1K)))
	for b.Loop() {
		a.Seal(nil, nonce, plain1K, nil)
	}
}

func BenchmarkBareXChaCha20Poly1305Seal1K(b *testing.B) {
	key := make([]byte, chacha20poly1305.KeySize)
	rand.Read(key)
	a, _ := chacha20poly1305.NewX(key)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	b.ReportAllocs()
	b.SetBytes(int64(len(plain1K)))
	for b.Loop() {
		a.Seal(nil, nonce, plain1K, nil)
	}
}

// The parts of a message's cost, to say where it goes.
func BenchmarkPartsChainStep(b *testing.B) {
	var ck [ChainKeySize]byte
	for b.Loop() {
		ck, _ = chainStep(&ck)
	}
}

func BenchmarkPartsBodyAEAD(b *testing.B) {
	var mk [ChainKeySize]byte
	for b.Loop() {
		bodyAEAD(&mk)
	}
}

func BenchmarkPartsSign(b *testing.B) {
	o := mustOwn(b, deviceID(1), 0)
	m := signedMessage(make([]byte, adSize), make([]byte, 1024+TagSize))
	for b.Loop() {
		ed25519.Sign(o.priv, m)
	}
}

func BenchmarkPartsVerify(b *testing.B) {
	o := mustOwn(b, deviceID(1), 0)
	m := signedMessage(make([]byte, adSize), make([]byte, 1024+TagSize))
	sig := ed25519.Sign(o.priv, m)
	pub := o.PublicKey()
	for b.Loop() {
		if !ed25519.Verify(pub, m, sig) {
			b.Fatal("verify")
		}
	}
}
