package fhir

import (
	"bytes"
	"crypto/sha256"
	"io"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/hybrid"
)

// testSigner is a hybrid key from fixed seeds, so that its fingerprint
// (and the signed bytes of a fixed export) are the same in every run; its
// signatures are still randomized (ML-DSA-65 hedged), as in production.
func testSigner(t testing.TB, name string) *hybrid.Signer {
	t.Helper()
	ed := sha256.Sum256([]byte("fhir test ed25519 " + name))
	ml := sha256.Sum256([]byte("fhir test ml-dsa-65 " + name))
	s, err := hybrid.FromSeeds(ed[:], ml[:])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fp(name string) keys.Fingerprint { return sha256.Sum256([]byte("person " + name)) }

var t0 = time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)

// pngBytes is a small file of every byte value, standing in for an image.
func pngBytes() []byte {
	b := []byte("\x89PNG\r\n\x1a\n")
	for i := 0; i < 512; i++ {
		b = append(b, byte(i*7))
	}
	return b
}

// sampleConversation is three messages in the Pharmacy queue about one
// patient: the patient's question, a reply with a file (read from a
// reader), and an urgent follow-up.
func sampleConversation() *Conversation {
	patient := Party{Name: "Dana Patient", Identity: fp("dana")}
	staff := Party{Name: "Robin Pharmacist", Identity: fp("robin")}
	team := Party{Name: "Pharmacy"}
	return &Conversation{
		Team: "Pharmacy",
		Patient: &PatientReference{
			Patient:   Identifier{System: "https://hospital.example/fhir/sid/mrn", Value: "MRN-0042"},
			Encounter: &Identifier{System: "https://hospital.example/fhir/sid/encounter", Value: "ENC-7"},
		},
		ExportedBy: "Robin Pharmacist",
		Messages: []Message{
			{
				ID: "3f2a9c1e0b7d4a55", Sender: patient, Recipients: []Party{team},
				Sent: t0, Received: t0.Add(2 * time.Second),
				Text: "Can I take ibuprofen with my new prescription? Dose <5 mg & \"twice\" daily.\n\tThanks",
			},
			{
				ID: "8b1d2e3f4a5b6c7d", Sender: staff, Recipients: []Party{patient},
				Sent: t0.Add(time.Hour), Received: t0.Add(time.Hour + time.Second),
				Text:        "Please avoid it; see the leaflet attached.",
				Attachments: []Attachment{{Name: "leaflet.png", MediaType: "image/png", Reader: bytes.NewReader(pngBytes())}},
			},
			{
				ID: "c0ffee0011223344", Sender: patient, Recipients: []Party{team, staff},
				Sent: t0.Add(2 * time.Hour), Text: "Thank you — and the rash is worse today.", Urgent: true,
			},
		},
	}
}

func fixedClock() time.Time { return t0.Add(3*time.Hour + 123*time.Millisecond) }

func exportSample(t testing.TB, s Signer) []byte {
	t.Helper()
	out, err := Export(sampleConversation(), s, &Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// failingReader returns err after n bytes.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, r.err
	}
	if len(p) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = 'x'
	}
	r.n -= len(p)
	return len(p), nil
}

var _ io.Reader = (*failingReader)(nil)
