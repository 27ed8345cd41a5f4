package fhir

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/export-v1.json and the fuzz seed corpora")

// goldenPath is a fixed export (sampleConversation at fixedClock, signed by
// testSigner("robin")). Signatures are randomized (ML-DSA-65 in hedged
// mode), so the known answer is the signed bytes (the export without
// signature.data), which must not change, and a signature over them that
// must keep verifying.
const goldenPath = "testdata/export-v1.json"

// signedBytes returns the canonical bytes an export's signature covers.
func signedBytes(t testing.TB, export []byte) []byte {
	t.Helper()
	b, err := decode(export)
	if err != nil {
		t.Fatal(err)
	}
	if b.Signature == nil || b.Signature.Data == "" {
		t.Fatal("export not signed")
	}
	b.Signature.Data = ""
	out, err := encode(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKnownAnswer(t *testing.T) {
	s := testSigner(t, "robin")
	fresh := exportSample(t, s)
	if *update {
		if err := os.WriteFile(goldenPath, fresh, 0o644); err != nil {
			t.Fatal(err)
		}
		writeFuzzSeeds(t, fresh)
	}
	golden, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatalf("%v (go test -run TestKnownAnswer -update writes it)", err)
	}
	if err := Verify(golden, s.Public()); err != nil {
		t.Fatalf("the committed export no longer verifies: %v", err)
	}
	if got, want := signedBytes(t, fresh), signedBytes(t, golden); !bytes.Equal(got, want) {
		i := 0
		for i < len(got) && i < len(want) && got[i] == want[i] {
			i++
		}
		t.Fatalf("the signed bytes of the same export changed at byte %d: the format (SPEC section 15.3) changed; if on purpose, bump the format and run with -update", i)
	}
	// The signature is the only difference between two exports of the
	// same conversation at the same time.
	if !*update && bytes.Equal(fresh, golden) {
		t.Fatal("two signatures over the same bytes are equal: the ML-DSA-65 half is not randomized")
	}
}

// writeFuzzSeeds writes the seed corpus of FuzzVerify: the export, and
// near misses that reach each check.
func writeFuzzSeeds(t *testing.T, export []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", "FuzzVerify")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seeds := map[string][]byte{
		"valid":          export,
		"text-changed":   bytes.Replace(export, []byte("ibuprofen"), []byte("Ibuprofen"), 1),
		"trailing-space": append(bytes.Clone(export), ' '),
		"no-signature":   signedBytes(t, export),
		"empty-object":   []byte("{}"),
	}
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
