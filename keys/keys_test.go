package keys_test

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
)

// Fixtures are expensive-ish (ML-DSA key generation), so build them once.
var fixture = sync.OnceValues(func() (*identity.Identity, *identity.Device) {
	id, err := identity.GenerateIdentity()
	if err != nil {
		panic(err)
	}
	d, err := identity.NewDevice(id)
	if err != nil {
		panic(err)
	}
	return id, d
})

func TestSignVerify(t *testing.T) {
	id, _ := fixture()
	other, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello")
	sig, err := id.Sign("test", msg)
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != keys.SignatureSize {
		t.Fatalf("signature length %d", len(sig))
	}
	if err := id.Public().Verify("test", msg, sig); err != nil {
		t.Fatalf("valid signature rejected: %v", err)
	}
	sigOther, _ := id.Sign("test", []byte("other message"))
	edOnly := append(append([]byte{}, sig[:64]...), sigOther[64:]...)
	mlOnly := append(append([]byte{}, sigOther[:64]...), sig[64:]...)
	otherKeySig, _ := other.Sign("test", msg)
	tests := []struct {
		name    string
		key     *keys.SigningPublicKey
		context string
		msg     []byte
		sig     []byte
		want    error
	}{
		{"only Ed25519 half valid", id.Public(), "test", msg, edOnly, keys.ErrBadSignature},
		{"only ML-DSA half valid", id.Public(), "test", msg, mlOnly, keys.ErrBadSignature},
		{"wrong context", id.Public(), "tesT", msg, sig, keys.ErrBadSignature},
		{"wrong message", id.Public(), "test", []byte("hellp"), sig, keys.ErrBadSignature},
		{"wrong key", other.Public(), "test", msg, sig, keys.ErrBadSignature},
		{"other key's signature", id.Public(), "test", msg, otherKeySig, keys.ErrBadSignature},
		{"truncated", id.Public(), "test", msg, sig[:len(sig)-1], keys.ErrBadSignature},
		{"extended", id.Public(), "test", msg, append(append([]byte{}, sig...), 0), keys.ErrBadSignature},
		{"empty", id.Public(), "test", msg, nil, keys.ErrBadSignature},
		{"empty context", id.Public(), "", msg, sig, keys.ErrInvalidContext},
		{"long context", id.Public(), strings.Repeat("x", 256), msg, sig, keys.ErrInvalidContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.key.Verify(tt.context, tt.msg, tt.sig); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := id.Sign(strings.Repeat("x", 256), msg); !errors.Is(err, keys.ErrInvalidContext) {
		t.Fatalf("Sign with a 256-byte context: %v", err)
	}
	long := strings.Repeat("x", 255)
	sig255, err := id.Sign(long, msg)
	if err != nil || id.Public().Verify(long, msg, sig255) != nil {
		t.Fatalf("255-byte context: %v", err)
	}
}

// TestParsedKeyVerifiesConcurrently: a parsed key's ML-DSA half is
// expanded at its first verification; goroutines verifying with one
// freshly parsed key at once all get the right answers (run with -race).
func TestParsedKeyVerifiesConcurrently(t *testing.T) {
	id, _ := fixture()
	msg := []byte("verified by many at once")
	sig, err := id.Sign("test", msg)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(sig)
	bad[len(bad)-1] ^= 1 // the ML-DSA half
	k, err := keys.ParseSigningPublicKey(id.Public().Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := k.Verify("test", msg, sig); err != nil {
				errs[i] = fmt.Errorf("good signature: %w", err)
			} else if err := k.Verify("test", msg, bad); !errors.Is(err, keys.ErrBadSignature) {
				errs[i] = fmt.Errorf("ML-DSA half changed: %v", err)
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestSigningPublicKeyEncoding(t *testing.T) {
	id, _ := fixture()
	b := id.Public().Bytes()
	k, err := keys.ParseSigningPublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Equal(id.Public()) || k.Fingerprint() != id.Public().Fingerprint() {
		t.Fatal("round trip changed the key")
	}
	for _, n := range []int{0, keys.SigningPublicKeySize - 1, keys.SigningPublicKeySize + 1} {
		if _, err := keys.ParseSigningPublicKey(make([]byte, n)); !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("length %d: %v", n, err)
		}
	}
	b[0] ^= 1
	k2, _ := keys.ParseSigningPublicKey(b)
	if k2.Equal(k) || k.Equal(nil) {
		t.Fatal("Equal")
	}
}

func TestDeviceCertificate(t *testing.T) {
	id, d := fixture()
	c := d.Certificate()
	enc := c.Bytes()
	if len(enc) != keys.DeviceCertificateSize {
		t.Fatalf("length %d", len(enc))
	}
	p, err := keys.ParseDeviceCertificate(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Bytes(), enc) || !p.Identity.Equal(id.Public()) || p.DeviceID() != c.Signing.Fingerprint() {
		t.Fatal("round trip mismatch")
	}
	if !bytes.Equal(p.SignedPart(), enc[:len(enc)-keys.SignatureSize]) {
		t.Fatal("SignedPart is not the prefix")
	}
	if p.Created.After(time.Now()) || time.Since(p.Created) > time.Minute {
		t.Fatalf("Created %v", p.Created)
	}
	// Flip a byte in every region: tag, version, identity key (both
	// halves), device key (both halves), X-Wing key, time, signature (both
	// halves). Each must be rejected.
	regions := map[string]int{
		"tag": 0, "version": 1,
		"identity ed25519": 2, "identity ML-DSA": 2 + 40,
		"device ed25519": 2 + keys.SigningPublicKeySize, "device ML-DSA": 2 + keys.SigningPublicKeySize + 100,
		"X-Wing": 2 + 2*keys.SigningPublicKeySize + 5, "created": 2 + 2*keys.SigningPublicKeySize + keys.XWingPublicKeySize + 7,
		"signature ed25519": len(enc) - keys.SignatureSize + 3, "signature ML-DSA": len(enc) - 10,
	}
	for name, off := range regions {
		t.Run(name, func(t *testing.T) {
			b := bytes.Clone(enc)
			b[off] ^= 0x01
			if _, err := keys.ParseDeviceCertificate(b); err == nil {
				t.Fatal("tampered certificate accepted")
			}
		})
	}
	for _, n := range []int{0, 12, len(enc) - 1, len(enc) + 1} {
		b := make([]byte, n)
		copy(b, enc)
		_, err := keys.ParseDeviceCertificate(b)
		if !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("length %d: %v", n, err)
		}
	}
	_, err = keys.ParseDeviceCertificate(make([]byte, 12))
	if want := "keys: device certificate: length 12, want 8567"; err == nil || err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	// Changing the certificate returned by Certificate must not change
	// the device.
	c.Signature[0] ^= 1
	if _, err := keys.ParseDeviceCertificate(d.Certificate().Bytes()); err != nil {
		t.Fatal("Certificate returned shared state")
	}
	// A certificate whose signature was made by another identity.
	other, _ := identity.GenerateIdentity()
	forged := d.Certificate()
	forged.Signature, _ = other.Sign(keys.ContextDeviceCertificate, forged.SignedPart())
	if _, err := keys.ParseDeviceCertificate(forged.Bytes()); !errors.Is(err, keys.ErrBadSignature) {
		t.Fatalf("forged certificate: %v", err)
	}
	// The identity's signature in another context does not certify.
	wrongCtx := d.Certificate()
	wrongCtx.Signature, _ = id.Sign(keys.ContextPrekey, wrongCtx.SignedPart())
	if _, err := keys.ParseDeviceCertificate(wrongCtx.Bytes()); !errors.Is(err, keys.ErrBadSignature) {
		t.Fatalf("wrong-context certificate: %v", err)
	}
}

func TestSignedPrekeyBoundToDevice(t *testing.T) {
	id, d := fixture()
	d2, err := identity.NewDevice(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, oneTime := range []bool{true, false} {
		pk, err := identity.NewPrekey(d, 7, oneTime)
		if err != nil {
			t.Fatal(err)
		}
		enc := pk.Public().Bytes()
		if len(enc) != keys.SignedPrekeySize {
			t.Fatalf("length %d", len(enc))
		}
		p, err := keys.ParseSignedPrekey(d.Certificate().Signing, enc)
		if err != nil {
			t.Fatal(err)
		}
		if p.ID != 7 || p.OneTime != oneTime || !bytes.Equal(p.Bytes(), enc) {
			t.Fatal("round trip mismatch")
		}
		if _, err := keys.ParseSignedPrekey(d2.Certificate().Signing, enc); !errors.Is(err, keys.ErrBadSignature) {
			t.Fatalf("prekey verified under another device: %v", err)
		}
		if _, err := keys.ParseSignedPrekey(id.Public(), enc); !errors.Is(err, keys.ErrBadSignature) {
			t.Fatalf("prekey verified under the identity: %v", err)
		}
		for _, off := range []int{0, 1, 3, 6, 7 + 9, 7 + keys.XWingPublicKeySize + 7, len(enc) - 1, len(enc) - keys.SignatureSize} {
			b := bytes.Clone(enc)
			b[off] ^= 0x01
			if _, err := keys.ParseSignedPrekey(d.Certificate().Signing, b); err == nil {
				t.Errorf("byte %d flipped: accepted", off)
			}
		}
		b := bytes.Clone(enc)
		b[6] = 2
		if _, err := keys.ParseSignedPrekey(d.Certificate().Signing, b); !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("flags 2: %v", err)
		}
	}
	if _, err := keys.ParseSignedPrekey(nil, nil); !errors.Is(err, keys.ErrMalformed) {
		t.Fatal("nil device key accepted")
	}
}

func TestRecipient(t *testing.T) {
	_, d := fixture()
	r := d.Certificate().KEM
	b := r.Bytes()
	r2, err := keys.ParseRecipient(b)
	if err != nil || !r2.Equal(r) || r2.Fingerprint() != r.Fingerprint() {
		t.Fatalf("round trip: %v", err)
	}
	if r.Fingerprint() == d.Certificate().DeviceID() {
		t.Fatal("KEM and signing fingerprints collide")
	}
	for _, n := range []int{0, keys.XWingPublicKeySize - 1, keys.XWingPublicKeySize + 1} {
		if _, err := keys.ParseRecipient(make([]byte, n)); !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("length %d: %v", n, err)
		}
	}
	// An ML-KEM coefficient >= q (0xFFF in the first 12 bits) is refused.
	bad := bytes.Clone(b)
	bad[0], bad[1] = 0xff, 0x0f
	if _, err := keys.ParseRecipient(bad); !errors.Is(err, keys.ErrMalformed) {
		t.Errorf("out-of-range ML-KEM key accepted: %v", err)
	}
	lowOrder := bytes.Clone(b)
	clear(lowOrder[keys.XWingPublicKeySize-32:]) // X25519 half = 0, a low-order point
	if _, err := keys.ParseRecipient(lowOrder); !errors.Is(err, keys.ErrMalformed) {
		t.Errorf("low-order X25519 half accepted: %v", err)
	}
	sealed, err := r.Seal([]byte("info"), []byte("aad"), []byte("plaintext"))
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != keys.SealOverhead+len("plaintext") {
		t.Fatalf("sealed length %d", len(sealed))
	}
	sealed2, _ := r.Seal([]byte("info"), []byte("aad"), []byte("plaintext"))
	if bytes.Equal(sealed, sealed2) {
		t.Fatal("Seal is deterministic")
	}
}

func TestFingerprint(t *testing.T) {
	id, _ := fixture()
	f := id.Public().Fingerprint()
	s := f.String()
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(s) || f.Short() != s[:16] {
		t.Fatalf("String %q Short %q", s, f.Short())
	}
	g, err := keys.ParseFingerprint(s)
	if err != nil || g != f {
		t.Fatalf("ParseFingerprint: %v", err)
	}
	if g, err := keys.ParseFingerprint(strings.ToUpper(s)); err != nil || g != f {
		t.Fatalf("upper case: %v", err)
	}
	for _, bad := range []string{"", s[:63], s + "0", "zz" + s[2:]} {
		if _, err := keys.ParseFingerprint(bad); !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestSafetyNumber(t *testing.T) {
	var a, b keys.Fingerprint
	a[0], b[0] = 1, 2
	sn := keys.SafetyNumber(a, b)
	if sn != keys.SafetyNumber(b, a) {
		t.Fatal("not symmetric")
	}
	if !regexp.MustCompile(`^[0-9]{5}( [0-9]{5}){11}$`).MatchString(sn) {
		t.Fatalf("format %q", sn)
	}
	if strings.Count(sn, " ") != 11 || len(strings.ReplaceAll(sn, " ", "")) != 60 {
		t.Fatalf("not 60 digits: %q", sn)
	}
	var c keys.Fingerprint
	c[0] = 3
	if keys.SafetyNumber(a, c) == sn {
		t.Fatal("different keys, same safety number")
	}
	// Each half depends on one side only: the half of a appears in both.
	if !strings.Contains(strings.ReplaceAll(keys.SafetyNumber(a, c), " ", ""), halfOf(t, a, b, sn)) {
		t.Fatal("halves not independent")
	}
}

// halfOf returns a's 30-digit half, found as the half of SafetyNumber(a, b)
// also present in SafetyNumber(a, a).
func halfOf(t *testing.T, a, _ keys.Fingerprint, _ string) string {
	aa := strings.ReplaceAll(keys.SafetyNumber(a, a), " ", "")
	if aa[:30] != aa[30:] {
		t.Fatal("SafetyNumber(a, a) halves differ")
	}
	return aa[:30]
}

// TestSafetyNumberGolden pins the algorithm (protocol/SPEC.md section 8): any change to
// it changes every user's number, so it must be deliberate.
func TestSafetyNumberGolden(t *testing.T) {
	var a, b keys.Fingerprint
	for i := range a {
		a[i], b[i] = byte(i), byte(0xff-i)
	}
	got := keys.SafetyNumber(a, b)
	t.Logf("golden: %s", got)
	if got != safetyGolden {
		t.Fatalf("SafetyNumber changed:\n got %s\nwant %s", got, safetyGolden)
	}
}
