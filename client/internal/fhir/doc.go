// Package fhir exports a conversation, or one message of it, for the
// medical record: a FHIR R4 Bundle (JSON) of Communication resources with
// the files inline, signed with the exporting person's identity key so that
// a record system can check where it came from (protocol/SPEC.md section
// 15.3).
//
// It is pure: it takes plain values (a Conversation of Messages, a Signer)
// and returns bytes; it reads no store and opens no connection. The caller
// collects the conversation, decides who may export it, writes the file
// and records the export in the team's log.
//
//	out, err := fhir.Export(&fhir.Conversation{
//		Team:       "Pharmacy",
//		Patient:    &fhir.PatientReference{Patient: mrn, Encounter: &enc},
//		ExportedBy: "Robin Pharmacist",
//		Messages:   msgs,
//	}, id, nil) // id is the *identity.Identity of the person exporting
//
// and, wherever the file is checked, with the exporter's public identity
// key (from their device list, whose fingerprint the file names):
//
//	err := fhir.Verify(out, pub)
//
// # Format
//
// A Bundle of type "collection", one Communication per message in the
// order given, with the Bundle's signature in Bundle.signature (FHIR R4's
// own place for it). A recalled message is exported as a note saying it
// was recalled, by whom and when: never its text or files. Times are
// written in UTC with milliseconds. The file is exactly the bytes Export
// returns, with no trailing newline: Verify refuses any other encoding of
// the same bundle (ErrNotCanonical), so keep the file as it is.
//
// # Security
//
// The signature is a Postern hybrid signature (Ed25519 and ML-DSA-65,
// both must verify) in the context "record-export" over the SHA-256 of the
// bundle's canonical bytes without Signature.data. Verify accepts only the
// canonical encoding, so any changed byte — in a text, a file, a time, a
// name, the whitespace, the signature — is refused. A signature says who
// exported the file and that it has not changed since; it does not say
// that the conversation is complete or that the exporter was entitled to
// export it.
//
// Attachment.hash is SHA-1 because FHIR R4 defines it so; it is checked
// against the data but integrity rests on the signature.
//
// Names and texts are written as given, except invalid UTF-8 and the C0
// control characters other than tab, line feed and carriage return, which
// become U+FFFD (FHIR strings carried as XML cannot hold them). An export
// holds health data: errors never repeat texts, names or identifiers.
//
// Limits (MaxExportSize, MaxMessages, MaxAttachments, MaxAttachmentSize,
// MaxTextSize, MaxRecipients) bound memory: an export is built in memory
// and is at most MaxExportSize bytes; a larger conversation is exported in
// parts.
package fhir
