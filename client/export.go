package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/postern/postern/client/internal/fhir"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
)

// Record export (protocol/SPEC.md section 15.3): a conversation, or one
// message of it, written for the medical record as a FHIR R4 bundle signed
// with this person's identity key, so that a record system (or anyone
// holding the person's identity fingerprint) can check where it came from
// and that not one byte changed. The conversation's patient context
// (patient.go) goes with it.

// Errors of record exports.
var (
	// ErrRecordInvalid: a file is not a record export, or was changed
	// after it was signed, or its signature does not verify. The error
	// says which check failed, never what the file holds.
	ErrRecordInvalid = errors.New("client: not a valid record export")
	// ErrRecordSigner: a record export names a signer who is neither
	// this person nor a contact, so there is no key to check it with.
	ErrRecordSigner = errors.New("client: the record export's signer is not a contact")
	// ErrRecordTooLarge: the conversation does not fit one export (SPEC
	// section 15.3's limits: 10 000 messages, 100 files, 32 MiB a file,
	// 64 MiB in all). Nothing was written.
	ErrRecordTooLarge = errors.New("client: too large for one record export")
)

// ExportOptions says what ExportRecord writes: the whole conversation
// with Contact, or the one message MessageID (exactly one of them).
type ExportOptions struct {
	Contact   string
	MessageID string
}

// ExportInfo describes a written export.
type ExportInfo struct {
	Messages int              // messages in it (recalled ones as notes)
	Files    int              // files embedded in it
	Bytes    int              // the file's size
	Signer   keys.Fingerprint // this person's identity
	Patient  *PatientContext  // the patient context it carries, nil if none
}

// RecordSigner is who signed a verified record export.
type RecordSigner struct {
	Name     string // "me", or the contact's name
	Identity keys.Fingerprint
}

// ExportRecord writes a record export of a conversation, or of one
// message, to w. Messages are in the order they were stored; notices are
// left out; a recalled message is exported as a note saying who recalled
// it and when, without its content. Files are fetched from the relay and
// embedded: a file the relay no longer has fails the export (a record
// must not miss what the conversation held), with nothing written to w.
func (c *Client) ExportRecord(ctx context.Context, w io.Writer, opts ExportOptions) (ExportInfo, error) {
	if (opts.Contact == "") == (opts.MessageID == "") {
		return ExportInfo{}, fmt.Errorf("%w: give a contact or a message, not both", ErrRecordInvalid)
	}
	conv, msgs, err := c.exportMessages(opts)
	if err != nil {
		return ExportInfo{}, err
	}
	out, info, err := c.signRecord(ctx, conv, msgs)
	if err != nil {
		return ExportInfo{}, err
	}
	n, err := w.Write(out)
	info.Bytes = n
	return info, err
}

// signRecord fetches the files of msgs into conv (whose messages are
// msgs, in order) and makes the signed export.
func (c *Client) signRecord(ctx context.Context, conv *fhir.Conversation, msgs []*messageRecord) ([]byte, ExportInfo, error) {
	info := ExportInfo{Messages: len(conv.Messages), Signer: c.idFP}
	if conv.Patient != nil {
		info.Patient = &PatientContext{Patient: conv.Patient.Patient.String()}
		if conv.Patient.Encounter != nil {
			info.Patient.Encounter = conv.Patient.Encounter.String()
		}
	}
	for i, m := range msgs {
		if !m.Recalled.IsZero() {
			continue
		}
		for j := range m.Attachments {
			a := &m.Attachments[j]
			if a.PlainSize > fhir.MaxAttachmentSize {
				return nil, ExportInfo{}, fmt.Errorf("%w: file %d of message %s is %d bytes, at most %d", ErrRecordTooLarge, j+1, m.ID, a.PlainSize, fhir.MaxAttachmentSize)
			}
			if info.Files++; info.Files > fhir.MaxAttachments {
				return nil, ExportInfo{}, fmt.Errorf("%w: more than %d files", ErrRecordTooLarge, fhir.MaxAttachments)
			}
			var buf bytes.Buffer
			if err := c.ReadAttachment(ctx, m.ID, j, 0, &buf); err != nil {
				return nil, ExportInfo{}, fmt.Errorf("client: file %d of message %s: %w", j+1, m.ID, err)
			}
			conv.Messages[i].Attachments = append(conv.Messages[i].Attachments, fhir.Attachment{Name: a.Name, MediaType: a.MediaType, Data: buf.Bytes()})
		}
	}
	out, err := fhir.Export(conv, c.id, &fhir.Options{Now: c.now})
	switch {
	case errors.Is(err, fhir.ErrTooLarge):
		return nil, ExportInfo{}, fmt.Errorf("%w: %v", ErrRecordTooLarge, err)
	case err != nil:
		return nil, ExportInfo{}, err
	}
	return out, info, nil
}

// exportMessages gathers what ExportRecord exports, without the files.
func (c *Client) exportMessages(opts ExportOptions) (*fhir.Conversation, []*messageRecord, error) {
	var conv fhir.Conversation
	var msgs []*messageRecord
	err := c.st.view(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		me := fhir.Party{Name: self.Name, Identity: fpOf(self.Identity)}
		conv.ExportedBy = self.Name
		var convID []byte
		if opts.MessageID != "" {
			m, err := t.MessageByID(opts.MessageID)
			if err != nil {
				return err
			}
			if m == nil || m.Notice {
				return fmt.Errorf("%w: %q", ErrNoMessage, opts.MessageID)
			}
			msgs, convID = []*messageRecord{m}, m.Conversation
		} else {
			var p *store.Person
			cs, err := t.contacts()
			if err != nil {
				return err
			}
			for _, r := range cs {
				if r.Person.Name == opts.Contact {
					p = r.Person
				}
			}
			if p == nil {
				return fmt.Errorf("%w: %q", ErrUnknownContact, opts.Contact)
			}
			convID = t.DirectConversationID(p.ID)
			err = t.Messages(func(m *messageRecord) error {
				if bytes.Equal(m.Conversation, convID) && !m.Notice {
					msgs = append(msgs, m)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if len(msgs) == 0 {
				return fmt.Errorf("%w: no messages with %s to export", ErrNoMessage, opts.Contact)
			}
		}
		if len(msgs) > fhir.MaxMessages {
			return fmt.Errorf("%w: %d messages, at most %d", ErrRecordTooLarge, len(msgs), fhir.MaxMessages)
		}
		cv, err := t.Conversation(convID)
		if err != nil {
			return err
		}
		if cv == nil {
			return errStoreCorrupt
		}
		if cv.Type != store.Direct {
			return fmt.Errorf("%w: only conversations with one person are exported by this version", ErrRecordInvalid)
		}
		peer, err := t.Person(cv.Person)
		if err != nil {
			return err
		}
		if peer == nil {
			return errStoreCorrupt
		}
		them := fhir.Party{Name: peer.Name, Identity: fpOf(peer.Identity)}
		if conv.Patient, err = patientReference(cv.Patient); err != nil {
			return err
		}
		for _, m := range msgs {
			fm := fhir.Message{ID: m.ID, Sent: m.Time, Text: m.Text, Urgent: m.Urgent}
			if m.Outgoing {
				fm.Sender, fm.Recipients = me, []fhir.Party{them}
			} else {
				fm.Sender, fm.Recipients, fm.Received = them, []fhir.Party{me}, m.Received
			}
			recallFields(&fm, m, self.Name)
			conv.Messages = append(conv.Messages, fm)
		}
		return nil
	})
	return &conv, msgs, err
}

// recallFields empties a recalled message's text in its export and says
// who recalled it (this person, by name, when it was this device or
// another of ours) and when.
func recallFields(fm *fhir.Message, m *messageRecord, self string) {
	if m.Recalled.IsZero() {
		return
	}
	by := m.RecalledBy
	if by == "me" || by == "" {
		by = self
	}
	fm.Text, fm.Recalled = "", &fhir.Recall{By: by, At: m.Recalled}
}

// VerifyRecord checks a record export: that it is signed by the identity
// it names, that this is this person or one of its contacts, and that
// not one byte changed since it was signed. It returns who signed it.
func (c *Client) VerifyRecord(data []byte) (RecordSigner, error) {
	fp, err := fhir.SignerOf(data)
	if err != nil {
		return RecordSigner{}, fmt.Errorf("%w: %v", ErrRecordInvalid, err)
	}
	signer := RecordSigner{Identity: fp}
	var pub *keys.SigningPublicKey
	if fp == c.idFP {
		signer.Name, pub = "me", c.id.Public()
	} else {
		err := c.st.view(func(t *tx) error {
			cs, err := t.contacts()
			if err != nil {
				return err
			}
			for _, r := range cs {
				if fpOf(r.Person.Identity) != fp || len(r.Cert) == 0 {
					continue
				}
				cert, err := c.certificate(r)
				if err != nil || cert.Identity.Fingerprint() != fp {
					continue
				}
				signer.Name, pub = r.Person.Name, cert.Identity
				return nil
			}
			return nil
		})
		if err != nil {
			return RecordSigner{}, err
		}
		if pub == nil {
			return RecordSigner{}, fmt.Errorf("%w: identity %s", ErrRecordSigner, fp.Short())
		}
	}
	if err := fhir.Verify(data, pub); err != nil {
		return RecordSigner{}, fmt.Errorf("%w: %v", ErrRecordInvalid, err)
	}
	return signer, nil
}
