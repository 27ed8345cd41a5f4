package identity

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDeviceKeysCertified(t *testing.T) {
	id, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	k, err := NewDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	cert, err := id.Certify(k.Signing(), k.KEM(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cert.DeviceID() != k.DeviceID() || cert.Identity.Fingerprint() != id.Public().Fingerprint() {
		t.Fatal("certificate names other keys")
	}
	dev, err := k.Certified(cert)
	if err != nil {
		t.Fatal(err)
	}
	// The device signs with the certified key, and its secret round-trips.
	sig, err := dev.Sign("test", []byte("m"))
	if err != nil || cert.Signing.Verify("test", []byte("m"), sig) != nil {
		t.Fatalf("device signature does not verify: %v", err)
	}
	if _, err := ParseDeviceSecret(dev.MarshalSecret()); err != nil {
		t.Fatal(err)
	}

	// A certificate for other keys is refused.
	other, _ := NewDeviceKeys()
	oc, err := id.Certify(other.Signing(), other.KEM(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Certified(oc); !errors.Is(err, ErrMalformedSecret) {
		t.Fatalf("certificate of other keys: got %v", err)
	}
	// Mixed: our signing key, another KEM key.
	mixed, err := id.Certify(k.Signing(), other.KEM(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Certified(mixed); !errors.Is(err, ErrMalformedSecret) {
		t.Fatalf("certificate with another KEM key: got %v", err)
	}
	// A tampered certificate does not verify.
	bad := *cert
	bad.Signature = append([]byte(nil), cert.Signature...)
	bad.Signature[10] ^= 1
	if _, err := k.Certified(&bad); err == nil {
		t.Fatal("tampered certificate accepted")
	}
}

func TestDeviceKeysRedacted(t *testing.T) {
	k, err := NewDeviceKeys()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %x", k, k, k, k, k), fmt.Sprint(*k)} {
		if !strings.Contains(s, "REDACTED") || strings.Contains(s, "seed") {
			t.Fatalf("printed keys: %q", s)
		}
	}
}
