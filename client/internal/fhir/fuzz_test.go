package fhir

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

// FuzzVerify feeds Verify untrusted bytes. It must never panic, and since
// the fuzzer cannot sign, the only input it may accept is the committed
// export itself: anything else accepted is a malleability of the format.
func FuzzVerify(f *testing.F) {
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add(bytes.Replace(golden, []byte(`"priority":"urgent"`), []byte(`"priority":"routine"`), 1))
	pub := testSigner(f, "robin").Public()
	f.Fuzz(func(t *testing.T, data []byte) {
		err := Verify(data, pub)
		if err == nil && !bytes.Equal(data, golden) {
			t.Fatalf("accepted %d bytes that were never signed", len(data))
		}
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) &&
			!errors.Is(err, ErrWrongSigner) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("error of no documented kind: %v", err)
		}
	})
}

// FuzzExportText exports arbitrary text, names and file names: every
// export must verify, so cleaning and the canonical encoding agree on any
// string.
func FuzzExportText(f *testing.F) {
	f.Add("Dose <5 mg & \"twice\"\n", "Dana", "leaflet.png", "image/png", "Pharmacy")
	f.Add("a\x00\xff\u2028\u2029\\", "\x7f", "", "text/plain; charset=\"utf-8\"", "")
	s := testSigner(f, "robin")
	f.Fuzz(func(t *testing.T, text, name, file, mediaType, team string) {
		c := &Conversation{Team: team, ExportedBy: name, Messages: []Message{{
			ID: "m1", Sender: Party{Name: name, Identity: fp("dana")}, Sent: t0, Text: text,
			Attachments: []Attachment{{Name: file, MediaType: mediaType, Data: []byte(text)}},
		}}}
		out, err := Export(c, s, &Options{Now: func() time.Time { return t0 }})
		if err != nil {
			if errors.Is(err, ErrInvalid) || errors.Is(err, ErrTooLarge) {
				return
			}
			t.Fatal(err)
		}
		if err := Verify(out, s.Public()); err != nil {
			t.Fatalf("an export does not verify: %v", err)
		}
	})
}
