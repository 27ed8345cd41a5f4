package identity

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Run `go test ./keys/identity -run TestWriteFuzzCorpus -update-corpus`
// to regenerate the committed seed corpora from fresh, valid encodings.
var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz seed corpora")

const fuzzPassphrase = "fuzz"

func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("corpus regeneration only with -update-corpus")
	}
	id, d := fixture()
	pk, err := NewPrekey(d, 5, true)
	if err != nil {
		t.Fatal(err)
	}
	writeCorpus(t, "FuzzParseIdentitySecret", id.MarshalSecret())
	writeCorpus(t, "FuzzParseDeviceSecret", d.MarshalSecret())
	writeCorpus(t, "FuzzParsePrekeySecret", pk.MarshalSecret())
	small, _ := SealKeyFile([]byte(fuzzPassphrase), id.MarshalSecret(), testKDF)
	empty, _ := SealKeyFile([]byte(fuzzPassphrase), nil, KDFParams{Time: 1, MemoryKiB: 8, Threads: 1})
	writeCorpus(t, "FuzzOpenKeyFile", small, empty)
}

func writeCorpus(t *testing.T, name string, inputs ...[]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, in := range inputs {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("valid-%d", i)), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Parse then MarshalSecret must give the input back (one encoding per key).

func FuzzParseIdentitySecret(f *testing.F) {
	f.Add(make([]byte, identitySecretSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseIdentitySecret(b)
		if err != nil {
			return
		}
		if !bytes.Equal(id.MarshalSecret(), b) {
			t.Fatal("round trip changed the encoding")
		}
	})
}

func FuzzParseDeviceSecret(f *testing.F) {
	f.Add(make([]byte, deviceSecretSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDeviceSecret(b)
		if err != nil {
			return
		}
		if !bytes.Equal(d.MarshalSecret(), b) {
			t.Fatal("round trip changed the encoding")
		}
		// Open must never panic and must only ever return ErrDecrypt.
		if _, err := d.Open(nil, nil, b[:min(len(b), 2000)]); err != nil && err != ErrDecrypt {
			t.Fatalf("Open: %v", err)
		}
	})
}

func FuzzParsePrekeySecret(f *testing.F) {
	f.Add(make([]byte, prekeySecretSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePrekeySecret(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.MarshalSecret(), b) {
			t.Fatal("round trip changed the encoding")
		}
	})
}

// FuzzOpenKeyFile checks that no input panics and that only the
// documented sentinels come back. Inputs asking for more Argon2id work
// than a fuzz iteration can afford (but less than the caps) are skipped:
// the caps themselves are tested by TestKeyFileHostileParams.
func FuzzOpenKeyFile(f *testing.F) {
	f.Add([]byte{tagKeyFile, formatVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) >= 12 {
			time, mem := binary.BigEndian.Uint32(b[3:7]), binary.BigEndian.Uint32(b[7:11])
			if time <= MaxKDFTime && mem <= MaxKDFMemoryKiB && (time > 2 || mem > 4096 || b[11] > 4) {
				t.Skip("valid but expensive KDF parameters")
			}
		}
		payload, err := OpenKeyFile([]byte(fuzzPassphrase), b)
		switch {
		case err == nil:
			if len(payload) != len(b)-keyFileHeader-keyFileTag {
				t.Fatal("payload length")
			}
		case errors.Is(err, ErrWrongPassphrase), errors.Is(err, ErrKeyFileFormat):
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
