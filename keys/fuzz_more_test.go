package keys_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/postern/postern/keys"
)

// fingerprintSeeds are the committed seeds of FuzzParseFingerprint: real
// fingerprints (an identity's, a device's) in both cases, and near misses.
func fingerprintSeeds() map[string]string {
	id, d := fixture()
	a, b := id.Public().Fingerprint().String(), d.Certificate().DeviceID().String()
	return map[string]string{
		"valid-0":          a,
		"valid-1":          b,
		"valid-upper":      strings.ToUpper(a),
		"invalid-short":    a[:63],
		"invalid-long":     a + "0",
		"invalid-not-hex":  "g" + a[1:],
		"invalid-space":    " " + a[1:],
		"invalid-prefixed": "0x" + a[2:],
	}
}

// TestWriteFingerprintCorpus rewrites the FuzzParseFingerprint seeds with
// -update-corpus (see TestWriteFuzzCorpus).
func TestWriteFingerprintCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("corpus regeneration only with -update-corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzParseFingerprint")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range fingerprintSeeds() {
		body := fmt.Sprintf("go test fuzz v1\nstring(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The committed FuzzParseFingerprint seeds exist and say what their names
// say.
func TestFingerprintCorpus(t *testing.T) {
	m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParseFingerprint", "*"))
	valid := 0
	for _, path := range m {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" || !strings.HasPrefix(lines[1], "string(") {
			t.Fatalf("%s: not a one-argument string seed", path)
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		_, err = keys.ParseFingerprint(s)
		isValid := strings.HasPrefix(filepath.Base(path), "valid-")
		if isValid != (err == nil) {
			t.Errorf("%s: ParseFingerprint = %v", path, err)
		}
		if isValid {
			valid++
		}
	}
	if valid == 0 {
		t.Fatal("FuzzParseFingerprint has no valid seeds (regenerate with -update-corpus)")
	}
}
