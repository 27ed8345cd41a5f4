package fhir

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
)

// An identity signs exports as it is.
var _ Signer = (*identity.Identity)(nil)

func TestExportVerifies(t *testing.T) {
	s := testSigner(t, "robin")
	out := exportSample(t, s)
	if err := Verify(out, s.Public()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !json.Valid(out) || len(out) == 0 || out[len(out)-1] != '}' {
		t.Fatal("export is not one JSON object without a trailing newline")
	}
	// The text, the file and the patient context are in it.
	for _, want := range []string{
		`"contentString":"Can I take ibuprofen with my new prescription? Dose <5 mg & \"twice\" daily.\n\tThanks"`,
		`"data":"` + base64.StdEncoding.EncodeToString(pngBytes()) + `"`,
		`"subject":{"type":"Patient","identifier":{"system":"https://hospital.example/fhir/sid/mrn","value":"MRN-0042"}}`,
		`"encounter":{"type":"Encounter","identifier":{"system":"https://hospital.example/fhir/sid/encounter","value":"ENC-7"}}`,
		`"priority":"urgent"`,
		`"who":{"identifier":{"system":"urn:postern:v1:identity","value":"` + s.Public().Fingerprint().String() + `"},"display":"Robin Pharmacist"}`,
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("export lacks %s", want)
		}
	}
}

// TestIdentitySigns exports with a real identity key, as the client will.
func TestIdentitySigns(t *testing.T) {
	id, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	out, err := Export(sampleConversation(), id, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(out, id.Public()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := Verify(out, testSigner(t, "robin").Public()); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("Verify with another key: %v, want ErrWrongSigner", err)
	}
}

// TestEveryChangedByteFails changes each byte of an export in turn (two
// ways) and checks that Verify refuses every one. Inside the signature's
// base64 value, whose every change reaches the same check (the signature
// itself, a full ML-DSA verification each: half of this test's time, ten
// times that under the race detector), it changes the first and last 64
// characters and every 16th between them.
func TestEveryChangedByteFails(t *testing.T) {
	s := testSigner(t, "robin")
	out := exportSample(t, s)
	pub := s.Public()
	sigStart := bytes.LastIndex(out, []byte(`"data":"`)) + len(`"data":"`)
	sigEnd := sigStart + base64.StdEncoding.EncodedLen(keys.SignatureSize)
	if sigStart < len(`"data":"`) || sigEnd > len(out) {
		t.Fatal("no signature value in the export")
	}
	counts := map[string]int{}
	for i := range out {
		if i >= sigStart+64 && i < sigEnd-64 && (i-sigStart)%16 != 0 {
			continue
		}
		for _, x := range []byte{0x01, 0x20} {
			b := bytes.Clone(out)
			b[i] ^= x
			err := Verify(b, pub)
			if err == nil {
				t.Fatalf("byte %d changed (^%#x): export still verifies", i, x)
			}
			switch {
			case errors.Is(err, ErrBadSignature):
				counts["bad signature"]++
			case errors.Is(err, ErrNotCanonical):
				counts["not canonical"]++
			case errors.Is(err, ErrWrongSigner):
				counts["wrong signer"]++
			case errors.Is(err, ErrMalformed):
				counts["malformed"]++
			default:
				t.Fatalf("byte %d: unexpected error %v", i, err)
			}
		}
	}
	// Each way of failing is reached, so none of the checks is dead.
	for _, k := range []string{"bad signature", "not canonical", "wrong signer", "malformed"} {
		if counts[k] == 0 {
			t.Errorf("no change was refused as %s", k)
		}
	}
	n := 0
	for _, c := range counts {
		n += c
	}
	t.Logf("%d changes to an export of %d bytes refused: %v", n, len(out), counts)
}

// TestChangedByteErrors: a change in the text, in an attachment (with its
// hash and size made to match) or in the signature gives the error that
// says what happened.
func TestChangedByteErrors(t *testing.T) {
	s := testSigner(t, "robin")
	out := exportSample(t, s)
	data := base64.StdEncoding.EncodeToString(pngBytes())
	tampered := pngBytes()
	tampered[100] ^= 0xff
	h1 := sha1.Sum(pngBytes())
	h2 := sha1.Sum(tampered)
	tests := []struct {
		name string
		edit func([]byte) []byte
		want error
	}{
		{"text", func(b []byte) []byte {
			return bytes.Replace(b, []byte("ibuprofen"), []byte("Ibuprofen"), 1)
		}, ErrBadSignature},
		{"attachment data", func(b []byte) []byte {
			return bytes.Replace(b, []byte(data), []byte(base64.StdEncoding.EncodeToString(tampered)), 1)
		}, ErrMalformed},
		{"attachment data with its hash", func(b []byte) []byte {
			b = bytes.Replace(b, []byte(data), []byte(base64.StdEncoding.EncodeToString(tampered)), 1)
			return bytes.Replace(b, []byte(base64.StdEncoding.EncodeToString(h1[:])), []byte(base64.StdEncoding.EncodeToString(h2[:])), 1)
		}, ErrBadSignature},
		{"signature", func(b []byte) []byte {
			i := bytes.LastIndex(b, []byte(`"data":"`)) + len(`"data":"`) + 100
			b[i] = map[bool]byte{true: 'A', false: 'B'}[b[i] != 'A']
			return b
		}, ErrBadSignature},
		{"patient", func(b []byte) []byte {
			return bytes.ReplaceAll(b, []byte("MRN-0042"), []byte("MRN-0043"))
		}, ErrBadSignature},
		{"reformatted", func(b []byte) []byte {
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			o, _ := json.MarshalIndent(v, "", " ")
			return o
		}, ErrNotCanonical},
		{"trailing newline", func(b []byte) []byte { return append(b, '\n') }, ErrNotCanonical},
		{"member added", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"status":"completed"`), []byte(`"status":"completed","language":"en"`), 1)
		}, ErrMalformed},
		{"duplicate member", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"priority":"routine"`), []byte(`"priority":"urgent","priority":"routine"`), 1)
		}, ErrNotCanonical},
		{"escaped letter", func(b []byte) []byte {
			return bytes.Replace(b, []byte("ibuprofen"), []byte(`\u0069buprofen`), 1)
		}, ErrNotCanonical},
		{"truncated", func(b []byte) []byte { return b[:len(b)/2] }, ErrMalformed},
		{"empty", func([]byte) []byte { return nil }, ErrMalformed},
		{"not JSON", func([]byte) []byte { return []byte("%PDF-1.7") }, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.edit(bytes.Clone(out))
			if bytes.Equal(b, out) {
				t.Fatal("the edit changed nothing")
			}
			err := Verify(b, s.Public())
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), "ibuprofen") || strings.Contains(err.Error(), "MRN") {
				t.Fatalf("error repeats content: %v", err)
			}
		})
	}
}

// TestResignedByAnother: a signature made with another key over the same
// bytes, with the signer's identity put in, is refused.
func TestResignedByAnother(t *testing.T) {
	robin, mallory := testSigner(t, "robin"), testSigner(t, "mallory")
	out := exportSample(t, mallory)
	if err := Verify(out, robin.Public()); !errors.Is(err, ErrWrongSigner) {
		t.Fatalf("Verify: %v, want ErrWrongSigner", err)
	}
	forged := bytes.Replace(out, []byte(mallory.Public().Fingerprint().String()), []byte(robin.Public().Fingerprint().String()), 1)
	if err := Verify(forged, robin.Public()); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify of another's signature under robin's name: %v, want ErrBadSignature", err)
	}
}

// TestSignerOf reads the claimed signer, which Verify then checks: a
// forged name is read as written and refused by Verify.
func TestSignerOf(t *testing.T) {
	robin, mallory := testSigner(t, "robin"), testSigner(t, "mallory")
	out := exportSample(t, robin)
	got, err := SignerOf(out)
	if err != nil || got != robin.Public().Fingerprint() {
		t.Fatalf("SignerOf = %v, %v; want robin's fingerprint", got, err)
	}
	forged := bytes.Replace(exportSample(t, mallory), []byte(mallory.Public().Fingerprint().String()), []byte(robin.Public().Fingerprint().String()), 1)
	if got, err := SignerOf(forged); err != nil || got != robin.Public().Fingerprint() {
		t.Fatalf("SignerOf(forged) = %v, %v", got, err)
	}
	for name, data := range map[string][]byte{
		"not JSON":     []byte("not json"),
		"no signature": []byte(`{"resourceType":"Bundle"}`),
		"bad identity": bytes.Replace(out, []byte(robin.Public().Fingerprint().String()), []byte("zz"), 1),
		"other system": bytes.Replace(out, []byte(`"system":"urn:postern:v1:identity","value":"`+robin.Public().Fingerprint().String()), []byte(`"system":"urn:other","value":"`+robin.Public().Fingerprint().String()), 1),
	} {
		if _, err := SignerOf(data); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: SignerOf: %v, want ErrMalformed", name, err)
		}
	}
}

func TestRecalledMessage(t *testing.T) {
	s := testSigner(t, "robin")
	c := sampleConversation()
	m := &c.Messages[1]
	secret := "Please avoid it; see the leaflet attached."
	untouched := &failingReader{n: 1 << 20, err: io.EOF}
	m.Attachments[0].Reader = untouched
	m.Recalled = &Recall{By: "Robin Pharmacist", At: t0.Add(90 * time.Minute)}
	out, err := Export(c, s, &Options{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(out, s.Public()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if bytes.Contains(out, []byte(secret)) || bytes.Contains(out, []byte("leaflet")) {
		t.Fatal("a recalled message's text or file name is in the export")
	}
	if untouched.n != 1<<20 {
		t.Fatal("a recalled message's attachment was read")
	}
	want := `"note":[{"authorString":"Robin Pharmacist","time":"2026-12-07T11:00:00.000Z","text":"` + recalledNote + `"}]`
	if !bytes.Contains(out, []byte(want)) {
		t.Fatalf("export lacks the recall note %s", want)
	}
	// Still there: who sent it to whom and when.
	if !bytes.Contains(out, []byte(`"sent":"2026-12-07T10:30:00.000Z"`)) {
		t.Fatal("a recalled message's sent time is missing")
	}
}

// TestOneMessage: exporting one message of a conversation, without
// patient context or team, is an export like any other.
func TestOneMessage(t *testing.T) {
	s := testSigner(t, "robin")
	c := sampleConversation()
	c.Team, c.Patient, c.ExportedBy = "", nil, ""
	c.Messages = c.Messages[2:]
	out, err := Export(c, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(out, s.Public()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if bytes.Contains(out, []byte(`"subject"`)) || bytes.Contains(out, []byte(`"topic"`)) {
		t.Fatal("empty context exported")
	}
}

// TestTextCleaned: control characters and invalid UTF-8 in names and text
// become U+FFFD, so that the export is a valid FHIR string everywhere and
// still verifies; everything else, U+2028 and emoji included, stays.
func TestTextCleaned(t *testing.T) {
	s := testSigner(t, "robin")
	c := sampleConversation()
	c.Messages[0].Text = "a\x00b\x1bc\fd\ve\xffg\u2028h\u00a0i 😀\r\n\t"
	c.Messages[0].Sender.Name = "Dana\x07"
	out, err := Export(c, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Verify(out, s.Public()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !bytes.Contains(out, []byte(`"contentString":"a�b�c�d�e�g\u2028h`+"\u00a0"+`i 😀\r\n\t"`)) {
		t.Fatalf("text not cleaned as specified")
	}
	if !bytes.Contains(out, []byte(`"display":"Dana�"`)) {
		t.Fatal("name not cleaned")
	}
}

func TestMediaType(t *testing.T) {
	for in, want := range map[string]string{
		"image/png":                 "image/png",
		"Text/Plain; Charset=UTF-8": "text/plain; charset=UTF-8",
		"":                          octetStream,
		"not a type":                octetStream,
		"image/png\x00":             octetStream,
		strings.Repeat("a", 300):    octetStream,
	} {
		if got := mediaType(in); got != want {
			t.Errorf("mediaType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInvalidInput(t *testing.T) {
	s := testSigner(t, "robin")
	tests := []struct {
		name string
		edit func(*Conversation)
		want error
	}{
		{"no messages", func(c *Conversation) { c.Messages = nil }, ErrInvalid},
		{"empty ID", func(c *Conversation) { c.Messages[0].ID = "" }, ErrInvalid},
		{"ID with space", func(c *Conversation) { c.Messages[0].ID = "a b" }, ErrInvalid},
		{"ID too long", func(c *Conversation) { c.Messages[0].ID = strings.Repeat("a", MaxMessageIDSize+1) }, ErrInvalid},
		{"duplicate ID", func(c *Conversation) { c.Messages[1].ID = c.Messages[0].ID }, ErrInvalid},
		{"no sent time", func(c *Conversation) { c.Messages[0].Sent = time.Time{} }, ErrInvalid},
		{"year 10000", func(c *Conversation) { c.Messages[0].Received = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, ErrInvalid},
		{"nobody", func(c *Conversation) { c.Messages[0].Recipients[0] = Party{} }, ErrInvalid},
		{"name too long", func(c *Conversation) { c.Messages[0].Sender.Name = strings.Repeat("n", MaxNameSize+1) }, ErrInvalid},
		{"team too long", func(c *Conversation) { c.Team = strings.Repeat("n", MaxNameSize+1) }, ErrInvalid},
		{"patient system not a URI", func(c *Conversation) { c.Patient.Patient.System = "mrn" }, ErrInvalid},
		{"patient value empty", func(c *Conversation) { c.Patient.Patient.Value = "" }, ErrInvalid},
		{"patient value with a newline", func(c *Conversation) { c.Patient.Patient.Value = "a\nb" }, ErrInvalid},
		{"encounter system with a space", func(c *Conversation) { c.Patient.Encounter.System = "urn:a b" }, ErrInvalid},
		{"text too long", func(c *Conversation) { c.Messages[0].Text = strings.Repeat("x", MaxTextSize+1) }, ErrTooLarge},
		{"too many recipients", func(c *Conversation) {
			c.Messages[0].Recipients = make([]Party, MaxRecipients+1)
		}, ErrTooLarge},
		{"too many messages", func(c *Conversation) {
			c.Messages = make([]Message, MaxMessages+1)
		}, ErrTooLarge},
		{"too many attachments", func(c *Conversation) {
			for i := range MaxAttachments {
				c.Messages[0].Attachments = append(c.Messages[0].Attachments, Attachment{Name: "f", Data: []byte{byte(i)}})
			}
		}, ErrTooLarge},
		{"attachment too large", func(c *Conversation) {
			c.Messages[1].Attachments[0].Reader = io.LimitReader(zeros{}, MaxAttachmentSize+1)
		}, ErrTooLarge},
		{"export too large", func(c *Conversation) {
			// Each file is within its limit, the three are not.
			for i := 0; i < 3; i++ {
				c.Messages[i].Attachments = []Attachment{{Name: "scan.pdf", Reader: io.LimitReader(zeros{}, 25<<20)}}
			}
		}, ErrTooLarge},
		{"attachment read fails", func(c *Conversation) {
			c.Messages[1].Attachments[0].Reader = &failingReader{n: 10, err: errors.New("disk error")}
		}, ErrAttachment},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleConversation()
			tc.edit(c)
			out, err := Export(c, s, nil)
			if !errors.Is(err, tc.want) || out != nil {
				t.Fatalf("Export: %v (%d bytes), want %v", err, len(out), tc.want)
			}
			if !strings.HasPrefix(err.Error(), tc.want.Error()+": ") {
				t.Fatalf("error %q does not start with its sentinel's message", err)
			}
		})
	}
	if _, err := Export(sampleConversation(), nil, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no signer: %v", err)
	}
	if _, err := Export(sampleConversation(), failingSigner{s}, nil); !errors.Is(err, ErrSign) || !errors.Is(err, errNoRandomness) {
		t.Fatalf("failing signer: %v", err)
	}
	diskErr := errors.New("disk error")
	c := sampleConversation()
	c.Messages[1].Attachments[0].Reader = &failingReader{n: 10, err: diskErr}
	_, err := Export(c, s, nil)
	if !errors.Is(err, ErrAttachment) || !errors.Is(err, diskErr) || err.Error() != "fhir: attachment could not be read: message 2: attachment 1: disk error" {
		t.Fatalf("reader error: %v", err)
	}
	c = sampleConversation()
	c.Messages[2].Recipients[1].Name = strings.Repeat("n", MaxNameSize+1)
	_, err = Export(c, s, nil)
	if err == nil || err.Error() != "fhir: invalid export input: message 3: recipient 2: name: 257 bytes, at most 256" {
		t.Fatalf("error names the place: %v", err)
	}
}

func TestVerifyLimits(t *testing.T) {
	pub := testSigner(t, "robin").Public()
	big := make([]byte, MaxExportSize+1)
	if err := Verify(big, pub); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Verify of %d bytes: %v, want ErrTooLarge", len(big), err)
	}
	if err := Verify([]byte("{}"), nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Verify without a key: %v", err)
	}
}

func TestParseIdentifier(t *testing.T) {
	id, err := ParseIdentifier("https://hospital.example/fhir/sid/mrn|MRN|7")
	if err != nil || id.System != "https://hospital.example/fhir/sid/mrn" || id.Value != "MRN|7" {
		t.Fatalf("ParseIdentifier: %+v, %v", id, err)
	}
	if id.String() != "https://hospital.example/fhir/sid/mrn|MRN|7" {
		t.Fatal(id.String())
	}
	for _, bad := range []string{"", "MRN-1", "|MRN-1", "urn:x|", "mrn|1", "urn:x| 1"} {
		if _, err := ParseIdentifier(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseIdentifier(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func TestEntryURL(t *testing.T) {
	u := entryURL("3f2a9c1e0b7d4a55")
	if u != entryURL("3f2a9c1e0b7d4a55") || u == entryURL("3f2a9c1e0b7d4a56") {
		t.Fatal("entryURL is not a function of the message ID")
	}
	// urn:uuid:xxxxxxxx-xxxx-8xxx-[89ab]xxx-xxxxxxxxxxxx
	if len(u) != len("urn:uuid:")+36 || u[len("urn:uuid:")+14] != '8' || !strings.ContainsRune("89ab", rune(u[len("urn:uuid:")+19])) {
		t.Fatalf("entryURL %s is not a version 8 UUID", u)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type failingSigner struct{ Signer }

var errNoRandomness = errors.New("no randomness")

func (failingSigner) Sign(string, []byte) ([]byte, error) { return nil, errNoRandomness }
