// Package vectors loads known-answer test vectors (Wycheproof, X-Wing) for
// the tests of keys and keys/identity. It is the one place that knows where
// the files live and how Wycheproof reports results, so every test applies
// the same rules: a missing or empty file fails the test (never skips), every
// "valid" case must be accepted, every "invalid" one rejected, and
// "acceptable" cases may go either way.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// Wycheproof is the common shape of a Wycheproof file; G is the group type
// of its schema.
type Wycheproof[G any] struct {
	Algorithm     string `json:"algorithm"`
	Schema        string `json:"schema"`
	NumberOfTests int    `json:"numberOfTests"`
	TestGroups    []G    `json:"testGroups"`
}

// Case holds the fields every Wycheproof test case has.
type Case struct {
	TcID    int      `json:"tcId"`
	Comment string   `json:"comment"`
	Flags   []string `json:"flags"`
	Result  string   `json:"result"`
}

// HasFlag reports whether the case carries flag.
func (c Case) HasFlag(flag string) bool {
	for _, f := range c.Flags {
		if f == flag {
			return true
		}
	}
	return false
}

// LoadWycheproof reads a Wycheproof file (path relative to the test's
// package directory, e.g. "../testdata/vectors/wycheproof/x25519_test.json")
// and fails the test if it is missing, unparsable, or holds no groups.
func LoadWycheproof[G any](t testing.TB, path string) *Wycheproof[G] {
	t.Helper()
	var w Wycheproof[G]
	LoadJSON(t, path, &w)
	if len(w.TestGroups) == 0 || w.NumberOfTests == 0 {
		t.Fatalf("vectors: %s holds no test cases", path)
	}
	return &w
}

// LoadJSON reads a JSON file into v, failing the test if it is missing or
// unparsable. Tests pass paths relative to their package directory, which
// is the working directory of `go test`.
func LoadJSON(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("vectors: %v (vector files must exist; see testdata/vectors/SOURCES.md)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("vectors: %s: %v", path, err)
	}
}

// Hex decodes a hex field, failing the test on bad input.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("vectors: bad hex: %v", err)
	}
	return b
}

// Tally counts cases by outcome so a test can assert it ran some.
type Tally struct {
	Run, NotApplicable int
}

// Check applies Wycheproof's rule to one case: accepted is whether the
// implementation accepted it (and, for valid cases, produced the expected
// output). It counts the case as run.
func (y *Tally) Check(t testing.TB, file string, c Case, accepted bool) {
	t.Helper()
	y.Run++
	switch c.Result {
	case "valid":
		if !accepted {
			t.Errorf("%s tcId %d (%s %v): valid case rejected", file, c.TcID, c.Comment, c.Flags)
		}
	case "invalid":
		if accepted {
			t.Errorf("%s tcId %d (%s %v): invalid case accepted", file, c.TcID, c.Comment, c.Flags)
		}
	case "acceptable":
	default:
		t.Errorf("%s tcId %d: unknown result %q", file, c.TcID, c.Result)
	}
}

// Done fails the test if no case ran, and logs the counts.
func (y *Tally) Done(t testing.TB, file string) {
	t.Helper()
	if y.Run == 0 {
		t.Fatalf("%s: no applicable test cases ran", file)
	}
	t.Logf("%s: %d cases checked, %d not applicable", file, y.Run, y.NotApplicable)
}
