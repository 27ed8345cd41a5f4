package keys_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
)

// Run `go test ./keys -run TestWriteFuzzCorpus -update-corpus` to
// regenerate the committed seed corpora from fresh, valid encodings, so
// that the fuzzer starts from inputs that reach signature verification.
var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz seed corpora")

func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("corpus regeneration only with -update-corpus")
	}
	id, d := fixture()
	pk, err := identity.NewPrekey(d, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := identity.NewPrekey(d, 0xfffffffe, false)
	if err != nil {
		t.Fatal(err)
	}
	dev := d.Certificate().Signing.Bytes()
	writeCorpus(t, "FuzzParseDeviceCertificate", d.Certificate().Bytes())
	writeCorpus(t, "FuzzParseSignedPrekey", append(bytes.Clone(dev), pk.Public().Bytes()...), append(bytes.Clone(dev), lr.Public().Bytes()...))
	writeCorpus(t, "FuzzParseRecipient", d.Certificate().KEM.Bytes())
	writeCorpus(t, "FuzzParseSigningPublicKey", id.Public().Bytes())
}

// writeCorpus writes seed files in the `go test fuzz v1` format.
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

// The fuzz targets check the malleability property (as age's
// FuzzMalleability): whatever parses re-encodes to exactly the input, so
// there is one encoding per object and signatures cannot be re-wrapped.

func FuzzParseDeviceCertificate(f *testing.F) {
	f.Add(make([]byte, keys.DeviceCertificateSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := keys.ParseDeviceCertificate(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.Bytes(), b) {
			t.Fatal("parse then Bytes changed the encoding")
		}
		if err := c.Verify(); err != nil {
			t.Fatal("parsed certificate does not verify")
		}
	})
}

// FuzzParseSignedPrekey takes device signing key || signed prekey.
func FuzzParseSignedPrekey(f *testing.F) {
	f.Add(make([]byte, keys.SigningPublicKeySize+keys.SignedPrekeySize))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < keys.SigningPublicKeySize {
			return
		}
		dev, err := keys.ParseSigningPublicKey(b[:keys.SigningPublicKeySize])
		if err != nil {
			t.Fatal("any key of the right length parses")
		}
		p, err := keys.ParseSignedPrekey(dev, b[keys.SigningPublicKeySize:])
		if err != nil {
			return
		}
		if !bytes.Equal(p.Bytes(), b[keys.SigningPublicKeySize:]) {
			t.Fatal("parse then Bytes changed the encoding")
		}
	})
}

func FuzzParseRecipient(f *testing.F) {
	f.Add(make([]byte, keys.XWingPublicKeySize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := keys.ParseRecipient(b)
		if err != nil {
			return
		}
		if !bytes.Equal(r.Bytes(), b) {
			t.Fatal("parse then Bytes changed the encoding")
		}
		if _, err := r.Seal(nil, nil, []byte("x")); err != nil {
			t.Fatalf("Seal to a parsed key: %v", err)
		}
	})
}

func FuzzParseSigningPublicKey(f *testing.F) {
	f.Add(make([]byte, keys.SigningPublicKeySize))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := keys.ParseSigningPublicKey(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k.Bytes(), b) {
			t.Fatal("parse then Bytes changed the encoding")
		}
		// Verify must not panic on any key and any signature.
		_ = k.Verify("fuzz", b[:10], b[:keys.SignatureSize%len(b)])
	})
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := keys.ParseFingerprint(s)
		if err != nil {
			return
		}
		if got := fp.String(); got != s && got != bytesToLower(s) {
			t.Fatalf("round trip %q -> %q", s, got)
		}
	})
}

func bytesToLower(s string) string { return string(bytes.ToLower([]byte(s))) }
