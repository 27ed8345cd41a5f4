package fhir_test

import (
	"fmt"
	"time"

	"github.com/postern/postern/client/internal/fhir"
	"github.com/postern/postern/keys/identity"
)

func Example() {
	id, err := identity.GenerateIdentity() // the person exporting
	if err != nil {
		panic(err)
	}
	mrn, err := fhir.ParseIdentifier("https://hospital.example/fhir/sid/mrn|MRN-0042")
	if err != nil {
		panic(err)
	}
	sent := time.Date(2026, 12, 7, 9, 30, 0, 0, time.UTC)
	out, err := fhir.Export(&fhir.Conversation{
		Team:       "Pharmacy",
		Patient:    &fhir.PatientReference{Patient: mrn},
		ExportedBy: "Robin Pharmacist",
		Messages: []fhir.Message{{
			ID:         "3f2a9c1e0b7d4a55",
			Sender:     fhir.Party{Name: "Dana Patient"},
			Recipients: []fhir.Party{{Name: "Pharmacy"}},
			Sent:       sent,
			Text:       "Can I take ibuprofen with my new prescription?",
		}},
	}, id, nil)
	if err != nil {
		panic(err)
	}
	fmt.Println("verifies:", fhir.Verify(out, id.Public()) == nil)
	out[len(out)/2] ^= 1
	fmt.Println("changed byte verifies:", fhir.Verify(out, id.Public()) == nil)
	// Output:
	// verifies: true
	// changed byte verifies: false
}
