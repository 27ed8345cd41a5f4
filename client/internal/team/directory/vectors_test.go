package directory

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/keys"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors/groups/directory-v1.json")

const vectorFile = "../../../../testdata/vectors/groups/directory-v1.json"

type vectorIdentity struct {
	Name        string `json:"name"`
	Ed25519Seed string `json:"ed25519_seed"`
	MLDSA65Seed string `json:"mldsa65_seed"`
	Fingerprint string `json:"fingerprint"`
}

type vectorTeam struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Group string `json:"group"`
}

type vectorStaff struct {
	Identity string   `json:"identity"`
	Name     string   `json:"name"`
	Title    string   `json:"title"`
	Teams    []string `json:"teams"`
}

type vectorRole struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Team      string `json:"team"`
	Holder    string `json:"holder"`
	HolderSeq uint64 `json:"holder_seq"`
}

type vectorDirectory struct {
	Org        string        `json:"org"`
	Version    uint64        `json:"version"`
	Issued     int64         `json:"issued"`
	Admins     []string      `json:"admins"`
	Teams      []vectorTeam  `json:"teams"`
	Staff      []vectorStaff `json:"staff"`
	Roles      []vectorRole  `json:"roles"`
	Signer     string        `json:"signer"`
	SignedPart string        `json:"signed_part"`
	Encoding   string        `json:"encoding"`
	Hash       string        `json:"hash"`
	LogKey     string        `json:"log_key"`
}

type vectorRecord struct {
	Fields     map[string]string `json:"fields"`
	Signer     string            `json:"signer"`
	SignedPart string            `json:"signed_part"`
	Encoding   string            `json:"encoding"`
	Tiebreak   string            `json:"tiebreak,omitempty"`
}

type vectorChange struct {
	Name   string `json:"name"`
	Object string `json:"object"` // directory, role_record, status
	Offset int    `json:"offset"` // byte XORed with 0x01; -1: the last byte removed
	Error  string `json:"error"`
}

type vectorFileT struct {
	Comment    string           `json:"comment"`
	Identities []vectorIdentity `json:"identities"`
	Directory  vectorDirectory  `json:"directory"`
	RoleRecord vectorRecord     `json:"role_record"`
	Status     vectorRecord     `json:"status"`
	Changes    []vectorChange   `json:"changes"`
}

func hx(b []byte) string { return hex.EncodeToString(b) }

// TestVectors rebuilds every deterministic field of the vector file from
// the fixed inputs (identities from their seeds, the sample directory, a
// role record, a status) and compares the whole file byte for byte, with
// the signed encodings taken from the file: ML-DSA-65 signs hedged, so
// those must verify, not repeat. Each change must give its error. With
// -update the encodings are signed afresh and the file is written.
func TestVectors(t *testing.T) {
	var file vectorFileT
	if !*update {
		b, err := os.ReadFile(vectorFile)
		if err != nil || len(b) == 0 {
			t.Fatalf("vector file %s missing or empty: %v", vectorFile, err)
		}
		if err := json.Unmarshal(b, &file); err != nil {
			t.Fatal(err)
		}
	}
	d := sampleDirectory(t)
	d.Signer = who(t, "admin").Public()
	dirPart, err := d.signedPart()
	if err != nil {
		t.Fatal(err)
	}
	rr := &RoleRecord{Org: testOrg, Role: onCall, Seq: 1, Time: issued.Add(time.Hour), Holder: fp(t, "bob"), Signer: who(t, "bob").Public()}
	rrPart, err := rr.signedPart()
	if err != nil {
		t.Fatal(err)
	}
	st := &Status{Org: testOrg, Subject: fp(t, "alice"), Time: issued.Add(2 * time.Hour), State: Available,
		DNDUntil: issued.Add(3 * time.Hour), Forward: fp(t, "bob"), Signer: who(t, "alice").Public()}
	stPart, err := st.signedPart()
	if err != nil {
		t.Fatal(err)
	}

	var dirEnc, rrEnc, stEnc []byte
	if *update {
		dirEnc = signed(t, d, "admin")
		if rrEnc, err = rr.Sign(who(t, "bob")); err != nil {
			t.Fatal(err)
		}
		if stEnc, err = st.Sign(who(t, "alice")); err != nil {
			t.Fatal(err)
		}
	} else {
		dirEnc, _ = hex.DecodeString(file.Directory.Encoding)
		rrEnc, _ = hex.DecodeString(file.RoleRecord.Encoding)
		stEnc, _ = hex.DecodeString(file.Status.Encoding)
	}

	// The stored encodings: signed parts as rebuilt, signatures verify.
	pd, err := Accept(anchor0(t), dirEnc)
	if err != nil || !bytes.HasPrefix(dirEnc, dirPart) || len(dirEnc) != len(dirPart)+2+keys.SignatureSize {
		t.Fatalf("directory encoding: %v", err)
	}
	prr, err := ParseRoleRecord(rrEnc)
	if err != nil || !bytes.HasPrefix(rrEnc, rrPart) {
		t.Fatalf("role record encoding: %v", err)
	}
	if _, err := pd.ApplyRoleRecord(func() RoleHolding { h, _ := pd.Holding(onCall); return h }(), prr); err != nil {
		t.Fatalf("role record: %v", err)
	}
	if _, err := ParseStatus(stEnc); err != nil || !bytes.HasPrefix(stEnc, stPart) {
		t.Fatalf("status encoding: %v", err)
	}
	if _, err := pd.AcceptStatus(nil, stEnc, issued.Add(2*time.Hour)); err != nil {
		t.Fatalf("status: %v", err)
	}

	got := vectorFileT{
		Comment: "Postern organisation directory, role record and status v1 (protocol/SPEC.md section 15.7), known-answer vectors. " +
			"Generated by client/internal/team/directory TestVectors -update. Identities are hybrid keys from their two seeds (section 8). " +
			"Signatures are ML-DSA-65 hedged, so an implementation checks that each encoding is signed_part || u16 3373 || a signature that verifies " +
			"under the signer key (the last 1984 bytes of signed_part), context org-directory, role-holder or availability. " +
			"Each change XORs 0x01 into the byte at offset (or removes the last byte, offset -1) of the named encoding; error is what Accept (directory, on the enrolment anchor of org and the two admins), " +
			"ParseRoleRecord or ParseStatus must give.",
	}
	for _, n := range []string{"admin", "it", "alice", "bob", "carol", "dan"} {
		ed := sha256.Sum256([]byte(n))
		ml := sha256.Sum256([]byte(n + " ml-dsa"))
		f := fp(t, n)
		got.Identities = append(got.Identities, vectorIdentity{n, hx(ed[:]), hx(ml[:]), hx(f[:])})
	}
	vd := vectorDirectory{Org: hx(d.Org[:]), Version: d.Version, Issued: d.Issued.Unix(), Signer: "admin",
		SignedPart: hx(dirPart), Encoding: hx(dirEnc)}
	for _, a := range d.Admins {
		vd.Admins = append(vd.Admins, hx(a[:]))
	}
	for _, tm := range d.Teams {
		vd.Teams = append(vd.Teams, vectorTeam{hx(tm.ID[:]), tm.Name, hx(tm.Group[:])})
	}
	for _, s := range d.Staff {
		vs := vectorStaff{Identity: hx(s.Identity[:]), Name: s.Name, Title: s.Title}
		for _, tm := range s.Teams {
			vs.Teams = append(vs.Teams, hx(tm[:]))
		}
		vd.Staff = append(vd.Staff, vs)
	}
	for _, r := range d.Roles {
		vd.Roles = append(vd.Roles, vectorRole{hx(r.ID[:]), r.Name, hx(r.Team[:]), hx(r.Holder[:]), r.HolderSeq})
	}
	h, lk := Hash(dirEnc), LogKey(d.Org)
	vd.Hash, vd.LogKey = hx(h[:]), hx(lk[:])
	got.Directory = vd
	tb := prr.Holding().Tiebreak
	got.RoleRecord = vectorRecord{
		Fields: map[string]string{"org": hx(rr.Org[:]), "role": hx(rr.Role[:]), "seq": "1",
			"time": rr.Time.Format(time.RFC3339), "holder": hx(rr.Holder[:])},
		Signer: "bob", SignedPart: hx(rrPart), Encoding: hx(rrEnc), Tiebreak: hx(tb[:]),
	}
	got.Status = vectorRecord{
		Fields: map[string]string{"org": hx(st.Org[:]), "subject": hx(st.Subject[:]), "time": st.Time.Format(time.RFC3339),
			"state": "1 (available)", "dnd_until": st.DNDUntil.Format(time.RFC3339), "forward": hx(st.Forward[:])},
		Signer: "alice", SignedPart: hx(stPart), Encoding: hx(stEnc),
	}
	sigAt := func(b []byte) int { return len(b) - keys.SignatureSize }
	got.Changes = []vectorChange{
		{"directory: tag", "directory", 0, "malformed"},
		{"directory: version byte", "directory", 1, "malformed"},
		{"directory: organisation", "directory", 2, "record of another organisation"},
		{"directory: version 1 to 257", "directory", 24, "bad signature"},
		{"directory: a staff name", "directory", bytes.Index(dirEnc, []byte("Alice Martin")), "bad signature"},
		{"directory: signer key", "directory", len(dirPart) - keys.SigningPublicKeySize, "not an administrator"},
		{"directory: signature length", "directory", len(dirPart) + 1, "malformed"},
		{"directory: Ed25519 half", "directory", sigAt(dirEnc), "bad signature"},
		{"directory: ML-DSA-65 half", "directory", sigAt(dirEnc) + 64, "bad signature"},
		{"directory: truncated", "directory", -1, "malformed"},
		{"role record: holder", "role_record", 50, "bad signature"},
		{"role record: truncated", "role_record", -1, "malformed"},
		{"status: availability 1 to 0", "status", 58, "malformed"},
		{"status: forward", "status", 67, "bad signature"},
		{"status: subject", "status", 18, "another identity than its subject"},
	}
	for _, c := range got.Changes {
		var src []byte
		switch c.Object {
		case "directory":
			src = dirEnc
		case "role_record":
			src = rrEnc
		case "status":
			src = stEnc
		}
		b := bytes.Clone(src)
		if c.Offset < 0 {
			b = b[:len(b)-1]
		} else {
			b[c.Offset] ^= 1
		}
		var err error
		switch c.Object {
		case "directory":
			_, err = Accept(anchor0(t), b)
		case "role_record":
			_, err = ParseRoleRecord(b)
		case "status":
			_, err = ParseStatus(b)
		}
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(c.Error)) {
			t.Errorf("change %q: got %v, want an error with %q", c.Name, err, c.Error)
		}
		if errors.Is(err, ErrMalformed) != (c.Error == "malformed") {
			t.Errorf("change %q: %v", c.Name, err)
		}
	}

	out, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	if *update {
		if err := os.MkdirAll(filepath.Dir(vectorFile), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorFile, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, _ := os.ReadFile(vectorFile)
	if !bytes.Equal(out, want) {
		t.Fatalf("vectors differ from %s; if the change is intended, run with -update and review the diff", vectorFile)
	}
}
