package session

import (
	"bytes"
	"fmt"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/protocol"
)

var text100 = bytes.Repeat([]byte("x"), 100)

// steady returns a pair past the first PQ steps, with A mid-chain.
func steady(b testing.TB) (a, r *Session) {
	ps := fixtures()
	a, r = establish(b, ps[0], ps[1], false, newClock(), newClock())
	mustOpen(b, a, mustSeal(b, r, "r"), "r")
	mustOpen(b, r, mustSeal(b, a, "a"), "a")
	mustOpen(b, a, mustSeal(b, r, "r"), "r")
	mustOpen(b, r, mustSeal(b, a, "a"), "a")
	return a, r
}

func BenchmarkSealMessage(b *testing.B) {
	a, _ := steady(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Seal(text100, 0); err != nil {
			b.Fatal(err)
		}
		a.st.sincePQ = 0 // stay on one chain, no PQ step
	}
	b.ReportMetric(float64(MessageOverhead), "overhead-B/msg")
}

func BenchmarkOpenMessage(b *testing.B) {
	a, r := steady(b)
	ms := make([][]byte, b.N)
	for i := range ms {
		ms[i] = mustSeal(b, a, string(text100))
		a.st.sincePQ = 0 // stay on one chain, no PQ step
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := r.Open(ms[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// padTo1024 makes the session message fill a 1024-byte envelope, as a
// client pads a short text (SPEC 11.6).
const padTo1024 = 1024 - protocol.EnvelopeHeaderSize

// BenchmarkSealMessagePadded is the house performance case: a 100-byte text
// padded to a 1024-byte envelope, same chain (no DH or PQ step), sealed into
// a reused buffer as BenchmarkBareChaCha20Poly1305/1024 seals into one.
// Compare with that and with BenchmarkBareXChaCha20Poly1305/1024 (the AEAD
// of both the header and the body); the Alloc variants use Seal and Open,
// which allocate the message.
func BenchmarkSealMessagePadded(b *testing.B) {
	a, _ := steady(b)
	b.ReportAllocs()
	b.SetBytes(padTo1024)
	buf := make([]byte, 0, padTo1024)
	for b.Loop() {
		if _, err := a.SealAppend(buf[:0], text100, padTo1024); err != nil {
			b.Fatal(err)
		}
		a.st.sincePQ = 0
	}
}

func BenchmarkSealMessagePaddedAlloc(b *testing.B) {
	a, _ := steady(b)
	b.ReportAllocs()
	b.SetBytes(padTo1024)
	for b.Loop() {
		if _, err := a.Seal(text100, padTo1024); err != nil {
			b.Fatal(err)
		}
		a.st.sincePQ = 0
	}
}

func BenchmarkOpenMessagePadded(b *testing.B) {
	benchOpenPadded(b, func(r *Session, buf, m []byte) error {
		_, err := r.OpenAppend(buf[:0], m)
		return err
	})
}

func BenchmarkOpenMessagePaddedAlloc(b *testing.B) {
	benchOpenPadded(b, func(r *Session, _, m []byte) error {
		_, err := r.Open(m)
		return err
	})
}

func benchOpenPadded(b *testing.B, open func(r *Session, buf, m []byte) error) {
	a, r := steady(b)
	b.ReportAllocs()
	b.SetBytes(padTo1024)
	// Messages are sealed in rounds of openRound with the timer stopped,
	// so that what is timed is the open alone and the working set stays
	// that of a client (sealing all b.N up front would time the cache
	// misses and GC of a heap of hundreds of MB).
	const openRound = 256
	ms := make([][]byte, openRound)
	buf := make([]byte, 0, padTo1024)
	b.ResetTimer()
	for done := 0; done < b.N; {
		b.StopTimer()
		n := min(openRound, b.N-done)
		for i := range n {
			m, err := a.SealAppend(ms[i][:0], text100, padTo1024)
			if err != nil {
				b.Fatal(err)
			}
			ms[i] = m
			a.st.sincePQ = 0
		}
		b.StartTimer()
		for i := range n {
			if err := open(r, buf, ms[i]); err != nil {
				b.Fatal(err)
			}
		}
		done += n
	}
}

// BenchmarkTurn is one classical DH ratchet step in each direction:
// seal and open of a message that starts a new chain (per side: one X25519
// key generation and two X25519 operations).
func BenchmarkTurn(b *testing.B) {
	a, r := steady(b)
	b.ReportAllocs()
	for b.Loop() {
		a.st.sincePQ, r.st.sincePQ = 0, 0
		m, _ := r.Seal(text100, 0)
		if _, err := a.Open(m); err != nil {
			b.Fatal(err)
		}
		m, _ = a.Seal(text100, 0)
		if _, err := r.Open(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2, "turns/op")
}

// BenchmarkPQStep is a turn in each direction where both carry a PQ step
// (ML-KEM-768 keygen + encapsulation at the sender, decapsulation at the
// receiver, on top of the DH step).
func BenchmarkPQStep(b *testing.B) {
	a, r := steady(b)
	b.ReportAllocs()
	for b.Loop() {
		a.st.sincePQ, r.st.sincePQ = PQMessageInterval, PQMessageInterval
		m, _ := r.Seal(text100, 0)
		if m[0]&flagPQ == 0 {
			b.Fatal("no PQ step")
		}
		if _, err := a.Open(m); err != nil {
			b.Fatal(err)
		}
		m, _ = a.Seal(text100, 0)
		if m[0]&flagPQ == 0 {
			b.Fatal("no PQ step")
		}
		if _, err := r.Open(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(2, "steps/op")
}

// BenchmarkHandshake is Initiate + Respond with a one-time prekey (two
// X-Wing seals and opens, one hybrid signature and its verification, and a
// certificate verification each side).
func BenchmarkHandshake(b *testing.B) {
	ps := fixtures()
	bundle := PeerBundle{Cert: ps[1].dev.Certificate(), SignedPrekey: ps[1].spk.Public()}
	opk := firstOPK(ps[1])
	bundle.OneTime = opk.Public()
	b.ReportAllocs()
	for b.Loop() {
		_, init, err := Initiate(ps[0].dev, bundle, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Respond(ps[1].dev, ps[1].spk, opk, init, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareChaCha20Poly1305 is the reference: one AEAD seal with a fixed
// key and nonce into a reused buffer (no allocation, no key schedule, no
// KDF), of the 100-byte text and of 1024 bytes (the padded envelope).
// Overhead: 16-byte tag, plus a 12-byte nonce if sent.
func BenchmarkBareChaCha20Poly1305(b *testing.B) {
	key := make([]byte, 32)
	aead, _ := chacha20poly1305.New(key)
	nonce := make([]byte, 12)
	for _, n := range []int{len(text100), 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			pt := bytes.Repeat([]byte("x"), n)
			dst := make([]byte, 0, n+chacha20poly1305.Overhead)
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				dst = aead.Seal(dst[:0], nonce, pt, nil)
			}
			b.ReportMetric(float64(chacha20poly1305.Overhead+chacha20poly1305.NonceSize), "overhead-B/msg")
		})
	}
}

// BenchmarkBareXChaCha20Poly1305 is the reference for the AEAD the
// session now uses for both header and body: one seal with a fixed key and
// nonce into a reused buffer (one HChaCha20 more than ChaCha20-Poly1305).
func BenchmarkBareXChaCha20Poly1305(b *testing.B) {
	key := make([]byte, 32)
	aead, _ := chacha20poly1305.NewX(key)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	for _, n := range []int{len(text100), 1024} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			pt := bytes.Repeat([]byte("x"), n)
			dst := make([]byte, 0, n+chacha20poly1305.Overhead)
			b.ReportAllocs()
			b.SetBytes(int64(n))
			for b.Loop() {
				dst = aead.Seal(dst[:0], nonce, pt, nil)
			}
		})
	}
}

// TestOverheadFigures logs the per-message overhead over a realistic
// alternating conversation (turns of 1–3 messages, 200 messages, no clock
// change): header and tags on every message, PQ bytes amortised.
func TestOverheadFigures(t *testing.T) {
	ps := fixtures()
	a, r := establish(t, ps[0], ps[1], false, newClock(), newClock())
	mustOpen(t, a, mustSeal(t, r, "r"), "r")
	total, n, pq := 0, 0, 0
	sides := [2][2]*Session{{a, r}, {r, a}}
	for i := 0; n < 200; i++ {
		s := sides[i%2]
		for k := 0; k < 1+i%3; k++ {
			m := mustSeal(t, s[0], string(text100))
			mustOpen(t, s[1], m, string(text100))
			total += len(m) - len(text100)
			n++
			if m[0]&flagPQ != 0 {
				pq++
			}
		}
	}
	t.Logf("200 messages: mean overhead %.1f B/message (fixed %d B, %d messages carried PQ fields of %d B); bare ChaCha20-Poly1305: 16 B tag (+12 B nonce)",
		float64(total)/float64(n), MessageOverhead, pq, PQOverhead)
}
