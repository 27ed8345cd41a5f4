package fhir

import (
	"crypto/sha1" // FHIR R4 defines Attachment.hash as SHA-1; it is not relied on for integrity here
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Limits (SPEC section 15.3). An export over one of them is refused with
// ErrTooLarge before anything is signed; Verify refuses a file over
// MaxExportSize before parsing it.
const (
	// MaxExportSize is the largest export file, in bytes of JSON.
	MaxExportSize = 64 << 20
	// MaxMessages is the largest number of messages in one export.
	MaxMessages = 10000
	// MaxAttachments is the largest number of files in one export.
	MaxAttachments = 100
	// MaxAttachmentSize is the largest file, in bytes (before base64).
	MaxAttachmentSize = 32 << 20
	// MaxTextSize is the largest message text, in bytes of UTF-8: the
	// client's limit on a message (client.MaxTextSize).
	MaxTextSize = 16 << 10
	// MaxRecipients is the largest number of recipients of one message.
	MaxRecipients = 256
	// MaxNameSize is the largest display name, team name, file name or
	// media type, in bytes.
	MaxNameSize = 256
	// MaxMessageIDSize is the largest message ID, in bytes.
	MaxMessageIDSize = 128
	// MaxSystemSize and MaxValueSize bound a patient or encounter
	// identifier's system (a URI) and value.
	MaxSystemSize = 1024
	MaxValueSize  = 256
)

// Names and codes of the format (SPEC section 15.3).
const (
	// SignatureContext is the hybrid signature context (SPEC section 8
	// "Hybrid signatures") of an export's signature.
	SignatureContext = "record-export"

	// SystemIdentity is the identifier system of a person's Postern
	// identity: the value is the identity key's fingerprint in hex.
	SystemIdentity = "urn:postern:v1:identity"
	// SystemMessage is the identifier system of a message ID.
	SystemMessage = "urn:postern:v1:message"

	// SigFormat is Signature.sigFormat: a Postern hybrid signature
	// (Ed25519 || ML-DSA-65, SPEC section 8), base64 in Signature.data.
	SigFormat = "application/vnd.postern.hybrid-signature"
	// TargetFormat is Signature.targetFormat: what is signed is FHIR JSON.
	TargetFormat = "application/fhir+json"

	// entryLabel derives an entry's fullUrl from its message ID.
	entryLabel = protocol.LabelPrefix + "record-export-entry"

	// signatureTypeSystem and signatureTypeCode are the Signature.type
	// coding: ASTM E1762-95 "Source Signature", the origin of the data.
	signatureTypeSystem  = "urn:iso-astm:E1762-95:2013"
	signatureTypeCode    = "1.2.840.10065.1.12.1.14"
	signatureTypeDisplay = "Source Signature"

	// recalledNote is the text of a recalled message's note.
	recalledNote = "This message was recalled by its sender (deleted for everyone); its content is not part of the record."

	// timeLayout is FHIR's instant, in UTC with milliseconds.
	timeLayout = "2006-01-02T15:04:05.000Z07:00"

	octetStream = "application/octet-stream"
)

// Identifier is a FHIR identifier: a naming system (a URI) and a value in
// it, written system|value in FHIR searches.
type Identifier struct {
	System string
	Value  string
}

// ParseIdentifier reads "system|value", splitting at the first "|".
func ParseIdentifier(s string) (Identifier, error) {
	sys, val, ok := strings.Cut(s, "|")
	if !ok {
		return Identifier{}, invalidf("identifier: want system|value")
	}
	id := Identifier{System: sys, Value: val}
	if err := id.check(); err != nil {
		return Identifier{}, err
	}
	return id, nil
}

// String returns system|value.
func (id Identifier) String() string { return id.System + "|" + id.Value }

// check: a system is an absolute URI without spaces or control
// characters, 1..MaxSystemSize bytes; a value 1..MaxValueSize bytes of
// UTF-8 without control characters and without space at either end.
func (id Identifier) check() error {
	if len(id.System) == 0 || len(id.System) > MaxSystemSize || !strings.Contains(id.System, ":") {
		return invalidf("identifier system: want an absolute URI of 1..%d bytes", MaxSystemSize)
	}
	for _, r := range id.System {
		if r <= ' ' || r == 0x7f || r == utf8.RuneError {
			return invalidf("identifier system: space or control character")
		}
	}
	if len(id.Value) == 0 || len(id.Value) > MaxValueSize || !utf8.ValidString(id.Value) ||
		strings.TrimSpace(id.Value) != id.Value || strings.IndexFunc(id.Value, isControl) >= 0 {
		return invalidf("identifier value: want 1..%d bytes of UTF-8, no control characters, no space at either end", MaxValueSize)
	}
	return nil
}

// PatientReference is a conversation's patient context: the FHIR Patient
// and, optionally, the Encounter it belongs to.
type PatientReference struct {
	Patient   Identifier
	Encounter *Identifier // nil: none
}

// Party is a sender or recipient: a display name and the fingerprint of
// the person's identity key. Either may be empty, not both.
type Party struct {
	Name     string
	Identity keys.Fingerprint // zero: not known (the identifier is left out)
}

// Attachment is a file of a message. Data holds its bytes, or, when Data
// is nil, Reader is read to its end (at most MaxAttachmentSize bytes).
type Attachment struct {
	Name      string
	MediaType string // e.g. "image/png"; unparsable or empty: application/octet-stream
	Data      []byte
	Reader    io.Reader
}

// Recall says who recalled a message (deleted it for everyone) and when.
type Recall struct {
	By string
	At time.Time
}

// Message is one message of a conversation.
type Message struct {
	ID          string // the message ID; 1..MaxMessageIDSize printable ASCII bytes, unique in the export
	Sender      Party
	Recipients  []Party
	Sent        time.Time // required
	Received    time.Time // zero: not received (left out)
	Text        string
	Attachments []Attachment
	Urgent      bool
	// Recalled, when set, exports the message as a note that it was
	// recalled, by whom and when: its text and attachments are left out
	// (and an attachment's Reader is not read).
	Recalled *Recall
}

// Conversation is what is exported: a whole conversation, or the one
// message of it the caller puts in Messages.
type Conversation struct {
	Team       string            // the team (queue) of the conversation; empty: none
	Patient    *PatientReference // nil: no patient context
	ExportedBy string            // display name of the person exporting (the signer)
	Messages   []Message
}

// Signer signs an export with a person's identity key.
// *identity.Identity implements it.
type Signer interface {
	// Sign returns a hybrid signature (SPEC section 8) over msg in the
	// given context.
	Sign(context string, msg []byte) ([]byte, error)
	// Public returns the identity's public signing key.
	Public() *keys.SigningPublicKey
}

// Options tunes Export. A nil *Options means the defaults.
type Options struct {
	// Now is the clock giving the export's timestamp; nil: time.Now.
	Now func() time.Time
}

// Export returns the FHIR R4 bundle (JSON) of c, signed by s. The bytes
// are the export: keep them as they are, since Verify refuses any other
// encoding of the same bundle.
func Export(c *Conversation, s Signer, opts *Options) ([]byte, error) {
	if s == nil || s.Public() == nil {
		return nil, invalidf("no signer")
	}
	if c == nil || len(c.Messages) == 0 {
		return nil, invalidf("no messages")
	}
	if len(c.Messages) > MaxMessages {
		return nil, tooLargef("%d messages, at most %d", len(c.Messages), MaxMessages)
	}
	now := time.Now
	if opts != nil && opts.Now != nil {
		now = opts.Now
	}
	if err := checkName("team name", c.Team); err != nil {
		return nil, err
	}
	if err := checkName("exporter's name", c.ExportedBy); err != nil {
		return nil, err
	}
	var subject, encounter *reference
	if p := c.Patient; p != nil {
		if err := p.Patient.check(); err != nil {
			return nil, in("patient", err)
		}
		subject = &reference{Type: "Patient", Identifier: &identifier{p.Patient.System, p.Patient.Value}}
		if e := p.Encounter; e != nil {
			if err := e.check(); err != nil {
				return nil, in("encounter", err)
			}
			encounter = &reference{Type: "Encounter", Identifier: &identifier{e.System, e.Value}}
		}
	}
	var topic *codeableConcept
	if c.Team != "" {
		topic = &codeableConcept{Text: cleanText(c.Team)}
	}

	b := &bundle{ResourceType: "Bundle", Type: "collection", Entry: make([]entry, 0, len(c.Messages))}
	// size is a running estimate of the encoding (the data and text it
	// carries), so that an export far over MaxExportSize stops before it
	// reads every file; the exact check is on the encoding.
	size := 0
	files := 0
	seen := make(map[string]bool, len(c.Messages))
	for i := range c.Messages {
		m := &c.Messages[i]
		if err := checkMessageID(m.ID); err != nil {
			return nil, in(fmt.Sprintf("message %d", i+1), err)
		}
		if seen[m.ID] {
			return nil, invalidf("message %d: ID used by an earlier message", i+1)
		}
		seen[m.ID] = true
		com, n, err := communicationOf(m, &files, MaxExportSize-size)
		if err != nil {
			return nil, in(fmt.Sprintf("message %d", i+1), err)
		}
		size += n
		com.Subject, com.Encounter, com.Topic = subject, encounter, topic
		b.Entry = append(b.Entry, entry{FullURL: entryURL(m.ID), Resource: com})
	}

	when, err := instant(now())
	if err != nil {
		return nil, in("clock", err)
	}
	b.Timestamp = when
	b.Signature = &signature{
		Type: []coding{{System: signatureTypeSystem, Code: signatureTypeCode, Display: signatureTypeDisplay}},
		When: when,
		Who: reference{
			Identifier: &identifier{System: SystemIdentity, Value: s.Public().Fingerprint().String()},
			Display:    cleanText(c.ExportedBy),
		},
		TargetFormat: TargetFormat,
		SigFormat:    SigFormat,
	}
	signed, err := encode(b)
	if err != nil {
		return nil, fmt.Errorf("fhir: encoding the bundle: %v", err)
	}
	if len(signed)+len(`,"data":""`)+base64.StdEncoding.EncodedLen(keys.SignatureSize) > MaxExportSize {
		return nil, tooLargef("the export would take more than %d bytes", MaxExportSize)
	}
	digest := sha256.Sum256(signed)
	sig, err := s.Sign(SignatureContext, digest[:])
	if err != nil {
		return nil, &detailError{sentinel: ErrSign, detail: "signer", cause: err}
	}
	if len(sig) != keys.SignatureSize {
		return nil, detailf(ErrSign, "signature of %d bytes, want %d", len(sig), keys.SignatureSize)
	}
	return withSignature(signed, sig), nil
}

// withSignature returns the export from its signed bytes: signature.data
// is the last member of signature, itself the last member of the bundle,
// so the canonical encoding with data is the one without it and the data
// inserted before the closing "}}". This spares a second encoding of a
// bundle of up to MaxExportSize bytes.
func withSignature(signed, sig []byte) []byte {
	tail := `,"data":"` + base64.StdEncoding.EncodeToString(sig) + `"}}`
	out := make([]byte, 0, len(signed)-2+len(tail))
	return append(append(out, signed[:len(signed)-2]...), tail...)
}

// communicationOf maps a message to a Communication. files counts the export's attachments so far; room is
// what is left of MaxExportSize. It returns the resource and an estimate
// of its encoded size.
func communicationOf(m *Message, files *int, room int) (*communication, int, error) {
	com := &communication{
		ResourceType: "Communication",
		Identifier:   []identifier{{System: SystemMessage, Value: m.ID}},
		Status:       "completed",
		Priority:     "routine",
	}
	if m.Urgent {
		com.Priority = "urgent"
	}
	if m.Sent.IsZero() {
		return nil, 0, invalidf("no sent time")
	}
	var err error
	if com.Sent, err = instant(m.Sent); err != nil {
		return nil, 0, in("sent", err)
	}
	if !m.Received.IsZero() {
		if com.Received, err = instant(m.Received); err != nil {
			return nil, 0, in("received", err)
		}
	}
	sender, err := referenceOf(m.Sender)
	if err != nil {
		return nil, 0, in("sender", err)
	}
	com.Sender = &sender
	if len(m.Recipients) > MaxRecipients {
		return nil, 0, tooLargef("%d recipients, at most %d", len(m.Recipients), MaxRecipients)
	}
	for j, p := range m.Recipients {
		r, err := referenceOf(p)
		if err != nil {
			return nil, 0, in(fmt.Sprintf("recipient %d", j+1), err)
		}
		com.Recipient = append(com.Recipient, r)
	}
	size := 512 + 256*len(m.Recipients)
	if r := m.Recalled; r != nil {
		if err := checkName("recalled by", r.By); err != nil {
			return nil, 0, err
		}
		n := annotation{AuthorString: cleanText(r.By), Text: recalledNote}
		if !r.At.IsZero() {
			if n.Time, err = instant(r.At); err != nil {
				return nil, 0, in("recalled", err)
			}
		}
		com.Note = []annotation{n}
		return com, size, nil
	}
	if len(m.Text) > MaxTextSize {
		return nil, 0, tooLargef("text of %d bytes, at most %d", len(m.Text), MaxTextSize)
	}
	if m.Text != "" {
		com.Payload = append(com.Payload, payload{ContentString: cleanText(m.Text)})
		size += len(m.Text)
	}
	for j := range m.Attachments {
		a := &m.Attachments[j]
		*files++
		if *files > MaxAttachments {
			return nil, 0, tooLargef("more than %d attachments", MaxAttachments)
		}
		if err := checkName("file name", a.Name); err != nil {
			return nil, 0, in(fmt.Sprintf("attachment %d", j+1), err)
		}
		data := a.Data
		if data == nil && a.Reader != nil {
			var err error
			data, err = io.ReadAll(io.LimitReader(a.Reader, MaxAttachmentSize+1))
			if err != nil {
				return nil, 0, &detailError{sentinel: ErrAttachment, detail: fmt.Sprintf("attachment %d", j+1), cause: err}
			}
		}
		if len(data) > MaxAttachmentSize {
			return nil, 0, tooLargef("attachment %d: more than %d bytes", j+1, MaxAttachmentSize)
		}
		size += base64.StdEncoding.EncodedLen(len(data)) + 256
		if size > room {
			return nil, 0, tooLargef("the export would take more than %d bytes", MaxExportSize)
		}
		h := sha1.Sum(data)
		com.Payload = append(com.Payload, payload{ContentAttachment: &attachment{
			ContentType: mediaType(a.MediaType),
			Data:        base64.StdEncoding.EncodeToString(data),
			Size:        uint32(len(data)),
			Hash:        base64.StdEncoding.EncodeToString(h[:]),
			Title:       cleanText(a.Name),
		}})
	}
	if size > room {
		return nil, 0, tooLargef("the export would take more than %d bytes", MaxExportSize)
	}
	return com, size, nil
}

func referenceOf(p Party) (reference, error) {
	if err := checkName("name", p.Name); err != nil {
		return reference{}, err
	}
	r := reference{Display: cleanText(p.Name)}
	if p.Identity != (keys.Fingerprint{}) {
		r.Identifier = &identifier{System: SystemIdentity, Value: p.Identity.String()}
	}
	if r.Display == "" && r.Identifier == nil {
		return reference{}, invalidf("neither a name nor an identity")
	}
	return r, nil
}

// entryURL is an entry's fullUrl: a UUID (RFC 9562 version 8) made of the
// first 16 bytes of SHA-256(entryLabel || 0x00 || message ID), so that the
// same message exported twice has the same fullUrl.
func entryURL(messageID string) string {
	h := sha256.New()
	h.Write([]byte(entryLabel))
	h.Write([]byte{0})
	h.Write([]byte(messageID))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x80 // version 8
	u[8] = u[8]&0x3f | 0x80 // variant 10
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// instant formats t as Export writes times: FHIR's instant, in UTC, with
// milliseconds. FHIR years are 0001..9999.
func instant(t time.Time) (string, error) {
	t = t.UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return "", invalidf("time outside the years 1..9999")
	}
	return t.Format(timeLayout), nil
}

func checkMessageID(id string) error {
	if len(id) == 0 || len(id) > MaxMessageIDSize {
		return invalidf("message ID: want 1..%d bytes", MaxMessageIDSize)
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] >= 0x7f {
			return invalidf("message ID: want printable ASCII without spaces")
		}
	}
	return nil
}

// checkName bounds a name; its characters are cleaned, not refused (a
// stray control character in someone's name must not stop an export).
func checkName(what, s string) error {
	if len(s) > MaxNameSize {
		return invalidf("%s: %d bytes, at most %d", what, len(s), MaxNameSize)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// cleanText makes s a FHIR string that any FHIR JSON or XML reader takes:
// invalid UTF-8 and the C0 control characters other than tab, line feed
// and carriage return (XML 1.0 cannot carry them; FHIR's string pattern
// refuses some) become U+FFFD. Nothing else is changed.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' {
			return utf8.RuneError
		}
		return r
	}, s)
}

// mediaType returns the canonical form of t (lower-case type, parameters
// in order, as mime.FormatMediaType writes them), or application/
// octet-stream for an empty, unparsable or overlong one: a wrong type on
// someone's file must not stop an export.
func mediaType(t string) string {
	if t == "" || len(t) > MaxNameSize {
		return octetStream
	}
	mt, params, err := mime.ParseMediaType(t)
	if err != nil {
		return octetStream
	}
	f := mime.FormatMediaType(mt, params)
	if f == "" || len(f) > MaxNameSize || strings.IndexFunc(f, isControl) >= 0 {
		return octetStream
	}
	return f
}
