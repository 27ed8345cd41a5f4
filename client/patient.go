package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/fhir"
	"github.com/postern/postern/client/internal/store"
)

// Patient context (protocol/SPEC.md section 9 "Patient context"): a
// clinician marks a conversation as being about a patient, with the FHIR
// identifiers a record system knows them by. The context is kept in the
// encrypted store, goes to this person's other devices (an inbox sync
// operation), never to the contact, and travels with the conversation's
// record export (export.go).

// ErrPatientContext: a patient or encounter identifier that is not
// "system|value" with an absolute URI as its system (SPEC section 15.3's
// rules). Nothing was changed.
var ErrPatientContext = errors.New("client: invalid patient context")

// PatientContext is a conversation's patient context: the FHIR identifier
// of the Patient and, optionally, of the Encounter, each written
// "system|value", for example
// "https://hospital.example/fhir/sid/mrn|MRN-0042".
type PatientContext struct {
	Patient   string `json:"patient"`
	Encounter string `json:"encounter,omitempty"`
}

// checkPatientContext checks both identifiers as an export will.
func checkPatientContext(patient, encounter string) error {
	if _, err := fhir.ParseIdentifier(patient); err != nil {
		return fmt.Errorf("%w: patient: %v", ErrPatientContext, err)
	}
	if encounter == "" {
		return nil
	}
	if _, err := fhir.ParseIdentifier(encounter); err != nil {
		return fmt.Errorf("%w: encounter: %v", ErrPatientContext, err)
	}
	return nil
}

// SetPatientContext sets the patient context of the conversation with
// contact (nil clears it), on this device and then on this person's other
// devices; the contact is never told. A device of this person that cannot
// be reached now gets it from the outbox later; the change stands here
// either way. The newest change made on any of the person's devices wins.
func (c *Client) SetPatientContext(ctx context.Context, contact string, pc *PatientContext) error {
	op := syncOp{Kind: syncPatient}
	if pc != nil {
		if err := checkPatientContext(pc.Patient, pc.Encounter); err != nil {
			return err
		}
		op.HasPatient, op.Patient, op.Encounter = true, pc.Patient, pc.Encounter
	}
	r, err := c.lookupContact(contact)
	if err != nil {
		return err
	}
	copy(op.Person[:], r.Person.Identity)
	now := c.now()
	err = c.st.update(func(t *tx) error {
		conv, err := t.DirectConversation(r.Person.ID, now.UTC())
		if err != nil {
			return err
		}
		op.MS = stampMS(now, conv.PatientStamp)
		return t.applySyncOp(&op, c.devID, now, c.log.Warn)
	})
	if err != nil {
		return err
	}
	c.contactChanged(r.Person.Name, ContactPatientContext)
	c.syncToSiblings(ctx, []syncOp{op})
	return nil
}

// PatientContext returns the patient context of the conversation with
// contact, nil if it has none.
func (c *Client) PatientContext(contact string) (*PatientContext, error) {
	r, err := c.lookupContact(contact)
	if err != nil {
		return nil, err
	}
	var out *PatientContext
	err = c.st.view(func(t *tx) error {
		conv, err := t.Conversation(t.DirectConversationID(r.Person.ID))
		if err == nil && conv != nil && conv.Patient != nil {
			out = &PatientContext{Patient: conv.Patient.Patient, Encounter: conv.Patient.Encounter}
		}
		return err
	})
	return out, err
}

// applyPatient applies a patient-context operation stamped stamp: to the
// conversation with the person it names, if this device knows them, and
// only if the stamp is later than the conversation's. A stamp far in the
// future is ignored, as for disappearing timers: it would win over every
// later change.
func (t *tx) applyPatient(op *syncOp, stamp store.Stamp, now time.Time, warn func(string, ...any)) error {
	if op.MS > uint64(now.Add(maxTimerSkew).UnixMilli()) {
		warn("ignored a patient context stamped far in the future")
		return nil
	}
	ps, err := t.Persons()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ps, func(p *store.Person) bool { return bytes.Equal(p.Identity, op.Person[:]) && !p.Self })
	if i < 0 {
		warn("ignored a patient context for a person this device does not know")
		return nil
	}
	conv, err := t.DirectConversation(ps[i].ID, now.UTC())
	if err != nil {
		return err
	}
	if !stamp.After(conv.PatientStamp) {
		return nil
	}
	conv.Patient, conv.PatientStamp = nil, stamp
	if op.HasPatient {
		conv.Patient = &store.PatientRef{Patient: op.Patient, Encounter: op.Encounter}
	}
	return t.PutConversation(conv)
}

// patientReference is the export's form of a conversation's context.
func patientReference(p *store.PatientRef) (*fhir.PatientReference, error) {
	if p == nil {
		return nil, nil
	}
	pid, err := fhir.ParseIdentifier(p.Patient)
	if err != nil {
		return nil, errStoreCorrupt
	}
	out := &fhir.PatientReference{Patient: pid}
	if p.Encounter != "" {
		eid, err := fhir.ParseIdentifier(p.Encounter)
		if err != nil {
			return nil, errStoreCorrupt
		}
		out.Encounter = &eid
	}
	return out, nil
}
