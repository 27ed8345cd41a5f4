package protocol

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// checkEnvelopeSeeds are the committed seeds of FuzzCheckEnvelope, named:
// one valid envelope of every bucket size (version 1, kind 1), and a few
// that CheckEnvelope must refuse. The body is a printable filler so that
// the seed files stay small (the relay never looks at it).
func checkEnvelopeSeeds() (valid, invalid map[string][]byte) {
	env := func(n int, version, kind byte) []byte {
		b := bytes.Repeat([]byte{'p'}, n)
		if n > 1 {
			b[0], b[1] = version, kind
		}
		return b
	}
	valid = map[string][]byte{}
	for _, n := range Buckets {
		valid[fmt.Sprintf("valid-%d", n)] = env(n, Version, byte(KindSealed))
	}
	invalid = map[string][]byte{
		"invalid-not-a-bucket":  env(1000, Version, byte(KindSealed)),
		"invalid-bucket-plus-1": env(1025, Version, byte(KindSealed)),
		"invalid-version":       env(1024, Version+1, byte(KindSealed)),
		"invalid-kind-0":        env(1024, Version, 0),
		"invalid-empty":         {},
	}
	return valid, invalid
}

// TestWriteCheckEnvelopeCorpus rewrites the FuzzCheckEnvelope seeds with
// -update (as the golden vectors).
func TestWriteCheckEnvelopeCorpus(t *testing.T) {
	if !*update {
		t.Skip("corpus regeneration only with -update")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzCheckEnvelope")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	valid, invalid := checkEnvelopeSeeds()
	for _, m := range []map[string][]byte{valid, invalid} {
		for name, b := range m {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// The committed seeds exist and say what their names say: a seed folder
// that went missing would let the fuzzer start from nothing.
func TestCheckEnvelopeCorpus(t *testing.T) {
	valid, invalid := checkEnvelopeSeeds()
	for _, m := range []map[string][]byte{valid, invalid} {
		for name := range m {
			path := filepath.Join("testdata", "fuzz", "FuzzCheckEnvelope", name)
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (regenerate with -update)", err)
			}
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) != 2 || lines[0] != "go test fuzz v1" {
				t.Fatalf("%s: not a one-argument seed", path)
			}
			s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			err = CheckEnvelope([]byte(s))
			if strings.HasPrefix(name, "valid-") != (err == nil) {
				t.Errorf("%s: CheckEnvelope = %v", path, err)
			}
		}
	}
}
