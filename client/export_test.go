package client

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

const (
	testMRN       = "https://hospital.example/fhir/sid/mrn|MRN-0042"
	testEncounter = "https://hospital.example/fhir/sid/encounter|ENC-7"
)

// TestPatientSyncOp: the patient-context operation round-trips, set and
// cleared, and a bad identifier or flag refuses the whole content.
func TestPatientSyncOp(t *testing.T) {
	t.Parallel()
	ops := []syncOp{
		{Kind: syncPatient, MS: 1764100000000, Person: keys.Fingerprint{7}, HasPatient: true, Patient: testMRN, Encounter: testEncounter},
		{Kind: syncPatient, MS: 1764100000001, Person: keys.Fingerprint{7}, HasPatient: true, Patient: testMRN},
		{Kind: syncPatient, MS: 1764100000002, Person: keys.Fingerprint{7}},
	}
	ct := &content{Type: contentSync, SentMS: 1764100000000, Ops: ops}
	b, err := ct.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	if *updateCorpus {
		writeFuzzSeeds(t, "FuzzParseSessionContent", "valid-patient", [][]byte{b})
	}
	got, err := parseSessionContent(b)
	if err != nil || len(got.Ops) != 3 {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for i := range ops {
		if got.Ops[i] != ops[i] {
			t.Errorf("op %d: %+v, want %+v", i, got.Ops[i], ops[i])
		}
	}
	for name, edit := range map[string]func([]byte) []byte{
		"patient without a system": func(p []byte) []byte {
			return bytes.Replace(p, []byte("https://hospital.example/fhir/sid/mrn|"), []byte("no-system-here-at-all-xxxxxxxxxxxx|"), 1)
		},
		"flag 2": func(p []byte) []byte {
			p[len(p)-1] = 2 // the last operation's flag: it clears, so nothing follows
			return p
		},
	} {
		if _, err := parseSessionContent(edit(bytes.Clone(b))); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", name, err)
		}
	}
	bad := &content{Type: contentSync, SentMS: 1, Ops: []syncOp{{Kind: syncPatient, MS: 1, HasPatient: true, Patient: "MRN-0042"}}}
	if _, err := bad.marshalSession(); err == nil {
		t.Error("marshalled a patient without a system")
	}
}

// TestRecordExport: alice (two devices) sets the patient context of her
// conversation with bob on one device and the other learns it; she
// exports the conversation with a file and a recalled message, and the
// one message; bob verifies it came from alice, a changed byte fails, and
// an export by someone who is not a contact cannot be checked.
func TestRecordExport(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	office, _ := linkNew(t, alice, "OFFICE-PC")
	syncAll(t, 3, office, bob, alice)

	if err := alice.SetPatientContext(ctx, "bob", &PatientContext{Patient: "MRN-0042"}); !errors.Is(err, ErrPatientContext) {
		t.Fatalf("a patient without a system: %v, want ErrPatientContext", err)
	}
	if err := alice.SetPatientContext(ctx, "bob", &PatientContext{Patient: testMRN, Encounter: "https://x.example/enc| ENC-7"}); !errors.Is(err, ErrPatientContext) {
		t.Fatalf("an encounter with a leading space: %v, want ErrPatientContext", err)
	}
	if err := alice.SetPatientContext(ctx, "nobody", &PatientContext{Patient: testMRN}); !errors.Is(err, ErrUnknownContact) {
		t.Fatalf("an unknown contact: %v", err)
	}
	if pc, err := alice.PatientContext("bob"); err != nil || pc != nil {
		t.Fatalf("before: %+v, %v", pc, err)
	}
	want := &PatientContext{Patient: testMRN, Encounter: testEncounter}
	if err := alice.SetPatientContext(ctx, "bob", want); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, office, alice)
	for _, c := range []*Client{alice, office} {
		if pc, err := c.PatientContext("bob"); err != nil || pc == nil || *pc != *want {
			t.Fatalf("%s: patient context %+v, %v", c.Whoami().Name, pc, err)
		}
	}
	if pc, err := bob.PatientContext("alice"); err != nil || pc != nil {
		t.Fatalf("bob was told the patient context: %+v, %v", pc, err)
	}

	file := filepath.Join(t.TempDir(), "labs.txt")
	if err := os.WriteFile(file, []byte("K 6.1 mmol/L"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Send(ctx, "alice", "Can I take ibuprofen with it?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, alice)
	withFile, err := alice.SendFiles(ctx, "bob", "Your results are attached.", []string{file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := alice.Send(ctx, "bob", "This was for another patient.")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Recall(ctx, wrong.ID); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, bob, alice)

	var buf bytes.Buffer
	info, err := alice.ExportRecord(ctx, &buf, ExportOptions{Contact: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if info.Messages != 3 || info.Files != 1 || info.Bytes != len(out) || info.Signer != alice.Whoami().Identity || info.Patient == nil || *info.Patient != *want {
		t.Fatalf("export info %+v", info)
	}
	for _, s := range []string{
		"Can I take ibuprofen with it?",
		"Your results are attached.",
		base64.StdEncoding.EncodeToString([]byte("K 6.1 mmol/L")),
		`"value":"MRN-0042"`,
		`"value":"ENC-7"`,
		"recalled by its sender",
	} {
		if !bytes.Contains(out, []byte(s)) {
			t.Errorf("the export lacks %q", s)
		}
	}
	if bytes.Contains(out, []byte("another patient")) {
		t.Error("the export holds the recalled message's text")
	}

	if s, err := bob.VerifyRecord(out); err != nil || s.Name != "alice" || s.Identity != alice.Whoami().Identity {
		t.Fatalf("bob verifies: %+v, %v", s, err)
	}
	if s, err := alice.VerifyRecord(out); err != nil || s.Name != Me {
		t.Fatalf("alice verifies: %+v, %v", s, err)
	}
	changed := bytes.Replace(out, []byte("K 6.1"), []byte("K 4.1"), 1)
	changed = bytes.Replace(changed, []byte("ibuprofen"), []byte("ibuprofEn"), 1)
	if _, err := bob.VerifyRecord(changed); !errors.Is(err, ErrRecordInvalid) {
		t.Fatalf("a changed export: %v, want ErrRecordInvalid", err)
	}
	if _, err := bob.VerifyRecord([]byte("{}")); !errors.Is(err, ErrRecordInvalid) {
		t.Fatalf("not an export: %v, want ErrRecordInvalid", err)
	}

	// One message only.
	buf.Reset()
	info, err = office.ExportRecord(ctx, &buf, ExportOptions{MessageID: withFile.ID})
	if err != nil {
		t.Fatal(err)
	}
	if info.Messages != 1 || info.Files != 1 || strings.Contains(buf.String(), "ibuprofen") {
		t.Fatalf("one-message export %+v", info)
	}
	if _, err := bob.VerifyRecord(buf.Bytes()); err != nil {
		t.Fatalf("bob verifies the one-message export by alice's other device: %v", err)
	}

	// Someone who is not bob's contact (another pair's alice, with its own
	// contact): bob has no key to check it with.
	stranger, friend, _, _ := pair(t, srv)
	if _, err := friend.Send(ctx, "alice", "hello"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, stranger)
	buf.Reset()
	if _, err := stranger.ExportRecord(ctx, &buf, ExportOptions{Contact: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.VerifyRecord(buf.Bytes()); !errors.Is(err, ErrRecordSigner) {
		t.Fatalf("an export by a stranger: %v, want ErrRecordSigner", err)
	}

	if _, err := alice.ExportRecord(ctx, &buf, ExportOptions{Contact: "bob", MessageID: withFile.ID}); err == nil {
		t.Fatal("exported with both a contact and a message")
	}
	if _, err := alice.ExportRecord(ctx, &buf, ExportOptions{MessageID: "0011223344556677"}); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("an unknown message: %v", err)
	}

	// Cleared on one device, cleared on the other.
	if err := office.SetPatientContext(ctx, "bob", nil); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, alice, office)
	if pc, err := alice.PatientContext("bob"); err != nil || pc != nil {
		t.Fatalf("after clearing: %+v, %v", pc, err)
	}
}
