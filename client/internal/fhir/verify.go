package fhir

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/postern/postern/keys"
)

// Verify checks that data is an export signed by the identity whose
// public key is pub, and that not one byte of it changed since: it must
// be the canonical encoding (ErrNotCanonical otherwise), follow the format
// of SPEC section 15.3 (ErrMalformed), name pub's identity as its signer
// (ErrWrongSigner) and carry a signature by pub over its canonical bytes
// (ErrBadSignature). data is untrusted: it is bounded by MaxExportSize and
// never panics the parser.
func Verify(data []byte, pub *keys.SigningPublicKey) error {
	if pub == nil {
		return invalidf("no public key to verify with")
	}
	if len(data) > MaxExportSize {
		return tooLargef("%d bytes, at most %d", len(data), MaxExportSize)
	}
	b, err := decode(data)
	if err != nil {
		return err
	}
	again, err := encode(b)
	if err != nil {
		return malformedf("%v", err)
	}
	if !bytes.Equal(again, data) {
		return ErrNotCanonical
	}
	if err := checkBundle(b); err != nil {
		return err
	}
	sig := b.Signature
	if sig.Who.Identifier.Value != pub.Fingerprint().String() {
		return detailf(ErrWrongSigner, "the export names identity %.16s…, the key is %s…", sig.Who.Identifier.Value, pub.Fingerprint().Short())
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(sig.Data)
	if err != nil || len(raw) != keys.SignatureSize {
		return malformedf("signature.data: want base64 of %d bytes", keys.SignatureSize)
	}
	// The file is canonical (checked above), so the signed bytes are the
	// file without the data member (see withSignature).
	tail := `,"data":"` + sig.Data + `"}}`
	if !bytes.HasSuffix(data, []byte(tail)) {
		return malformedf("signature.data is not the last member")
	}
	h := sha256.New()
	h.Write(data[:len(data)-len(tail)])
	h.Write([]byte("}}"))
	if err := pub.Verify(SignatureContext, h.Sum(nil), raw); err != nil {
		if errors.Is(err, keys.ErrBadSignature) {
			return ErrBadSignature
		}
		return detailf(ErrBadSignature, "%v", err)
	}
	return nil
}

// SignerOf returns the identity an export names as its signer, without
// verifying anything: the caller finds that identity's public key (its
// own, or a contact's) and passes it to Verify, which checks the claim
// and the signature. data is untrusted and bounded as for Verify.
func SignerOf(data []byte) (keys.Fingerprint, error) {
	if len(data) > MaxExportSize {
		return keys.Fingerprint{}, tooLargef("%d bytes, at most %d", len(data), MaxExportSize)
	}
	b, err := decode(data)
	if err != nil {
		return keys.Fingerprint{}, err
	}
	if b.Signature == nil || b.Signature.Who.Identifier == nil || b.Signature.Who.Identifier.System != SystemIdentity {
		return keys.Fingerprint{}, malformedf("signature.who: want an identifier of system %s", SystemIdentity)
	}
	fp, err := keys.ParseFingerprint(b.Signature.Who.Identifier.Value)
	if err != nil {
		return keys.Fingerprint{}, malformedf("signature.who: not an identity fingerprint")
	}
	return fp, nil
}

// checkBundle checks every rule of the format that the canonical encoding
// alone does not: fixed values, required members, sizes, and each
// attachment's size and hash against its data.
func checkBundle(b *bundle) error {
	if b.ResourceType != "Bundle" || b.Type != "collection" {
		return malformedf("not a collection Bundle")
	}
	if !isInstant(b.Timestamp) {
		return malformedf("timestamp: not an instant in UTC with milliseconds")
	}
	if len(b.Entry) == 0 || len(b.Entry) > MaxMessages {
		return malformedf("%d entries, want 1..%d", len(b.Entry), MaxMessages)
	}
	files := 0
	seen := make(map[string]bool, len(b.Entry))
	var subject, encounter *reference
	for i := range b.Entry {
		e := &b.Entry[i]
		c := e.Resource
		if c == nil || c.ResourceType != "Communication" {
			return malformedf("entry %d: not a Communication", i+1)
		}
		if len(c.Identifier) != 1 || c.Identifier[0].System != SystemMessage || checkMessageID(c.Identifier[0].Value) != nil {
			return malformedf("entry %d: identifier: want one message ID", i+1)
		}
		id := c.Identifier[0].Value
		if seen[id] {
			return malformedf("entry %d: message ID of an earlier entry", i+1)
		}
		seen[id] = true
		if e.FullURL != entryURL(id) {
			return malformedf("entry %d: fullUrl does not match the message ID", i+1)
		}
		if c.Status != "completed" || (c.Priority != "routine" && c.Priority != "urgent") {
			return malformedf("entry %d: status or priority", i+1)
		}
		// Every entry has the conversation's patient context.
		if i == 0 {
			subject, encounter = c.Subject, c.Encounter
		}
		if !sameRef(c.Subject, subject) || !sameRef(c.Encounter, encounter) {
			return malformedf("entry %d: patient context differs from the first entry's", i+1)
		}
		if err := checkContext(c); err != nil {
			return malformedf("entry %d: %v", i+1, err)
		}
		if !isInstant(c.Sent) || (c.Received != "" && !isInstant(c.Received)) {
			return malformedf("entry %d: sent or received: not an instant in UTC with milliseconds", i+1)
		}
		if c.Sender == nil {
			return malformedf("entry %d: no sender", i+1)
		}
		if len(c.Recipient) > MaxRecipients {
			return malformedf("entry %d: %d recipients, at most %d", i+1, len(c.Recipient), MaxRecipients)
		}
		for _, r := range append([]reference{*c.Sender}, c.Recipient...) {
			if !isParty(r) {
				return malformedf("entry %d: a sender or recipient is neither a name nor an identity", i+1)
			}
		}
		if err := checkContent(c, &files); err != nil {
			return malformedf("entry %d: %v", i+1, err)
		}
	}
	s := b.Signature
	switch {
	case s == nil:
		return malformedf("not signed")
	case len(s.Type) != 1 || s.Type[0] != (coding{signatureTypeSystem, signatureTypeCode, signatureTypeDisplay}):
		return malformedf("signature.type")
	case s.When != b.Timestamp:
		return malformedf("signature.when differs from the timestamp")
	case s.TargetFormat != TargetFormat || s.SigFormat != SigFormat:
		return malformedf("signature: not a Postern hybrid signature over FHIR JSON")
	case s.Who.Type != "" || s.Who.Identifier == nil || s.Who.Identifier.System != SystemIdentity || !isFingerprint(s.Who.Identifier.Value):
		return malformedf("signature.who: want the signer's identity")
	case len(s.Who.Display) > 4*MaxNameSize:
		return malformedf("signature.who: name too long")
	}
	return nil
}

func checkContext(c *communication) error {
	if s := c.Subject; s != nil {
		if s.Type != "Patient" || s.Identifier == nil || s.Display != "" || (Identifier{s.Identifier.System, s.Identifier.Value}).check() != nil {
			return errors.New("subject: want a Patient identifier")
		}
	}
	if e := c.Encounter; e != nil {
		if c.Subject == nil || e.Type != "Encounter" || e.Identifier == nil || e.Display != "" || (Identifier{e.Identifier.System, e.Identifier.Value}).check() != nil {
			return errors.New("encounter: want an Encounter identifier with a subject")
		}
	}
	if t := c.Topic; t != nil && (t.Text == "" || len(t.Text) > 4*MaxNameSize) {
		return errors.New("topic: want a team name")
	}
	return nil
}

// checkContent: a recalled message (one with a note) has no payload; each
// payload holds exactly one content; attachments match their data.
func checkContent(c *communication, files *int) error {
	if len(c.Note) > 0 {
		if len(c.Note) != 1 || c.Note[0].Text != recalledNote || len(c.Payload) != 0 ||
			(c.Note[0].Time != "" && !isInstant(c.Note[0].Time)) || len(c.Note[0].AuthorString) > 4*MaxNameSize {
			return errors.New("note: want only the note of a recalled message")
		}
		return nil
	}
	for j, p := range c.Payload {
		a := p.ContentAttachment
		if (p.ContentString == "") == (a == nil) {
			return fmt.Errorf("payload %d: want exactly one of contentString and contentAttachment", j+1)
		}
		if a == nil {
			if len(p.ContentString) > 4*MaxTextSize {
				return fmt.Errorf("payload %d: text too long", j+1)
			}
			continue
		}
		*files++
		if *files > MaxAttachments {
			return fmt.Errorf("more than %d attachments", MaxAttachments)
		}
		if a.Size > MaxAttachmentSize || a.ContentType == "" || len(a.ContentType) > MaxNameSize || len(a.Title) > 4*MaxNameSize {
			return fmt.Errorf("attachment %d: size, type or title out of range", j+1)
		}
		data, err := base64.StdEncoding.Strict().DecodeString(a.Data)
		if err != nil {
			return fmt.Errorf("attachment %d: data is not base64", j+1)
		}
		h := sha1.Sum(data)
		if uint32(len(data)) != a.Size || a.Hash != base64.StdEncoding.EncodeToString(h[:]) {
			return fmt.Errorf("attachment %d: size or hash does not match the data", j+1)
		}
	}
	return nil
}

func isParty(r reference) bool {
	if r.Type != "" || (r.Identifier == nil && r.Display == "") || len(r.Display) > 4*MaxNameSize {
		return false
	}
	return r.Identifier == nil || (r.Identifier.System == SystemIdentity && isFingerprint(r.Identifier.Value))
}

func sameRef(a, b *reference) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Type == b.Type && a.Display == b.Display && (a.Identifier == nil) == (b.Identifier == nil) &&
		(a.Identifier == nil || *a.Identifier == *b.Identifier)
}

// isFingerprint: 64 lower-case hex digits, as Fingerprint.String writes.
func isFingerprint(s string) bool {
	f, err := keys.ParseFingerprint(s)
	return err == nil && f.String() == s
}

// isInstant: the exact form Export writes (UTC, milliseconds).
func isInstant(s string) bool {
	t, err := time.Parse(timeLayout, s)
	return err == nil && t.UTC().Format(timeLayout) == s
}
