package hybrid

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestSignVerify(t *testing.T) {
	s, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign("test", []byte("message"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Public().Verify("test", []byte("message"), sig); err != nil {
		t.Fatalf("own signature: %v", err)
	}
	if s.Public().Verify("other", []byte("message"), sig) == nil {
		t.Fatal("signature verifies in another context")
	}
	// The seeds are the key: the same seeds give the same public key.
	seeds := s.AppendSeeds(nil)
	again, err := FromSeeds(seeds[:SeedSize], seeds[SeedSize:])
	if err != nil {
		t.Fatal(err)
	}
	if !again.Public().Equal(s.Public()) {
		t.Fatal("the same seeds gave another key")
	}
	if _, err := FromSeeds(seeds[:SeedSize-1], seeds[SeedSize:]); !errors.Is(err, ErrSeed) {
		t.Fatalf("short seed: %v", err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%x", "%s"} {
		out := fmt.Sprintf(verb, s)
		if !bytes.Contains([]byte(out), []byte("REDACTED")) || bytes.Contains([]byte(out), []byte(fmt.Sprintf("%x", seeds[:8]))) {
			t.Fatalf("%s prints %q", verb, out)
		}
	}
}
