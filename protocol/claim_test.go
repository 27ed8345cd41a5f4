package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// claimFrames are well-formed claim-space frames and revocations with a
// reason; they join the golden file (buildGolden) and seed FuzzClaimFrames.
func claimFrames() []struct {
	name string
	id   uint32
	f    Frame
} {
	var sp ClaimSpaceID
	copy(sp[:], fill(16, 0x91))
	var mb MailboxID
	copy(mb[:], fill(16, 0x11))
	h := CapabilityHash(fill32(0x44))
	tok := ClaimToken(fill32(0x92))
	return []struct {
		name string
		id   uint32
		f    Frame
	}{
		{"revoke-capability-restricted-service", 5, &RevokeCapability{Mailbox: mb, Hash: h, Reason: RevokeRestrictedService}},
		{"revoke-capability-restricted-new", 5, &RevokeCapability{Mailbox: mb, Hash: h, Reason: RevokeRestrictedNew}},
		{"revoke-capability-restricted-replies", 5, &RevokeCapability{Mailbox: mb, Hash: h, Reason: RevokeRestrictedReplies}},
		{"create-claim-space", 20, &CreateClaimSpace{Admin: CapabilityHash(fill32(0x93)), Write: CapabilityHash(fill32(0x94))}},
		{"update-claim-space-write", 21, &UpdateClaimSpace{Space: sp, Admin: tokenOf(0x95), Op: ClaimSpaceSetWrite, Hash: CapabilityHash(fill32(0x96))}},
		{"update-claim-space-admin", 21, &UpdateClaimSpace{Space: sp, Admin: tokenOf(0x95), Op: ClaimSpaceSetAdmin, Hash: CapabilityHash(fill32(0x97))}},
		{"update-claim-space-delete", 21, &UpdateClaimSpace{Space: sp, Admin: tokenOf(0x95), Op: ClaimSpaceDelete}},
		{"set-claim", 22, &SetClaim{Space: sp, Write: tokenOf(0x98), Token: tok, Expected: 0, Value: fill(40, 0x99)}},
		{"set-claim-largest", 22, &SetClaim{Space: sp, Write: tokenOf(0x98), Token: tok, Expected: 7, Value: fill(MaxClaimValue, 0x99)}},
		{"set-claim-empty-value", 22, &SetClaim{Space: sp, Write: tokenOf(0x98), Token: tok, Expected: 3}},
		{"get-claim", 23, &GetClaim{Space: sp, Write: tokenOf(0x98), Token: tok}},
		{"claim-space-created", 20, &ClaimSpaceCreated{Space: sp}},
		{"claim-state-won", 22, &ClaimState{OK: true, Version: 1, Value: fill(40, 0x99)}},
		{"claim-state-lost", 22, &ClaimState{OK: false, Version: 8, Value: fill(3, 0x9a)}},
		{"claim-state-never-written", 23, &ClaimState{OK: true}},
	}
}

// claimMalformedFrames are broken claim frames and revocations with the
// outcome SPEC.md requires; they join the golden file.
var claimMalformedFrames = []struct {
	name, hex, expect string
}{
	// A revocation as every client before reasons wrote it: reason 0.
	{"revoke-no-reason", "0500000005" + strings.Repeat("11", 16) + strings.Repeat("44", 32), "ok"},
	{"revoke-explicit-reason-0", "0500000005" + strings.Repeat("11", 16) + strings.Repeat("44", 32) + "00", "malformed"},
	{"revoke-reason-4", "0500000005" + strings.Repeat("11", 16) + strings.Repeat("44", 32) + "04", "malformed"},
	{"revoke-two-reason-bytes", "0500000005" + strings.Repeat("11", 16) + strings.Repeat("44", 32) + "0101", "malformed"},
	{"create-claim-space-short", "1600000014" + strings.Repeat("93", 63), "malformed"},
	{"update-claim-space-op-0", "1700000015" + strings.Repeat("91", 16) + strings.Repeat("95", 32) + "00", "malformed"},
	{"update-claim-space-op-4", "1700000015" + strings.Repeat("91", 16) + strings.Repeat("95", 32) + "04" + strings.Repeat("96", 32), "malformed"},
	{"update-claim-space-delete-with-hash", "1700000015" + strings.Repeat("91", 16) + strings.Repeat("95", 32) + "03" + strings.Repeat("96", 32), "malformed"},
	{"update-claim-space-write-no-hash", "1700000015" + strings.Repeat("91", 16) + strings.Repeat("95", 32) + "01", "malformed"},
	{"set-claim-value-too-long", "1800000016" + strings.Repeat("91", 16) + strings.Repeat("98", 32) + strings.Repeat("92", 32) + "0000000000000000" + "0201" + strings.Repeat("99", 513), "too-large"},
	{"set-claim-value-beyond-frame", "1800000016" + strings.Repeat("91", 16) + strings.Repeat("98", 32) + strings.Repeat("92", 32) + "0000000000000000" + "0010" + "99", "malformed"},
	{"get-claim-trailing", "1900000017" + strings.Repeat("91", 16) + strings.Repeat("98", 32) + strings.Repeat("92", 32) + "00", "malformed"},
	{"claim-state-bad-bool", "8e00000016" + "02" + "0000000000000001" + "0000", "malformed"},
	{"claim-state-version-0-with-value", "8e00000016" + "01" + "0000000000000000" + "0001" + "99", "malformed"},
	{"claim-state-value-too-long", "8e00000016" + "01" + "0000000000000001" + "0201" + strings.Repeat("99", 513), "too-large"},
}

func TestClaimFramesRoundTrip(t *testing.T) {
	for _, c := range claimFrames() {
		t.Run(c.name, func(t *testing.T) {
			b, err := Marshal(c.id, c.f)
			if err != nil {
				t.Fatal(err)
			}
			id, f, err := Parse(b)
			if err != nil {
				t.Fatal(err)
			}
			if id != c.id || f.Type() != c.f.Type() {
				t.Fatalf("parsed id %d type %#x, want %d %#x", id, f.Type(), c.id, c.f.Type())
			}
			// Parse returns an empty, non-nil value where the frame had a
			// nil one: compare encodings and fields both.
			if again, _ := Marshal(id, f); !bytes.Equal(again, b) {
				t.Fatalf("re-marshal differs")
			}
			if !reflect.DeepEqual(normalize(f), normalize(c.f)) {
				t.Fatalf("parsed %+v, want %+v", f, c.f)
			}
		})
	}
}

// normalize makes empty values nil, so that DeepEqual compares content.
func normalize(f Frame) Frame {
	switch f := f.(type) {
	case *SetClaim:
		g := *f
		if len(g.Value) == 0 {
			g.Value = nil
		}
		return &g
	case *ClaimState:
		g := *f
		if len(g.Value) == 0 {
			g.Value = nil
		}
		return &g
	}
	return f
}

// A revocation without the reason byte (every client before reasons) is
// reason 0 and encodes as before; with a reason it gains exactly one byte.
func TestRevokeCapabilityEncodings(t *testing.T) {
	var mb MailboxID
	copy(mb[:], fill(16, 0x11))
	h := CapabilityHash(fill32(0x44))
	old := append(append([]byte{byte(TypeRevokeCapability), 0, 0, 0, 5}, mb[:]...), h[:]...)
	_, f, err := Parse(old)
	if err != nil {
		t.Fatal(err)
	}
	if rc := f.(*RevokeCapability); rc.Reason != RevokeBlocked || rc.Mailbox != mb || rc.Hash != h {
		t.Fatalf("old encoding parsed as %+v", rc)
	}
	b, err := Marshal(5, &RevokeCapability{Mailbox: mb, Hash: h})
	if err != nil || !bytes.Equal(b, old) {
		t.Fatalf("reason 0 encodes as %x, %v; want the old encoding %x", b, err, old)
	}
	for r := RevokeRestrictedService; r <= MaxRevokeReason; r++ {
		b, err := Marshal(5, &RevokeCapability{Mailbox: mb, Hash: h, Reason: r})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b[:len(old)], old) || len(b) != len(old)+1 || b[len(old)] != byte(r) {
			t.Fatalf("reason %d encodes as %x", r, b)
		}
		_, f, err := Parse(b)
		if err != nil || f.(*RevokeCapability).Reason != r {
			t.Fatalf("reason %d parses as %+v, %v", r, f, err)
		}
	}
	if _, err := Marshal(5, &RevokeCapability{Reason: MaxRevokeReason + 1}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("reason 4 marshals: %v", err)
	}
}

func TestRevokeReasonCodes(t *testing.T) {
	want := map[RevokeReason]Code{
		RevokeBlocked:           CodeCapabilityRevoked,
		RevokeRestrictedService: CodeRestrictedService,
		RevokeRestrictedNew:     CodeRestrictedNew,
		RevokeRestrictedReplies: CodeRestrictedReplies,
	}
	if len(want) != int(MaxRevokeReason)+1 {
		t.Fatal("a reason without a code")
	}
	for r, c := range want {
		if r.Code() != c {
			t.Errorf("reason %d: code %d, want %d", r, r.Code(), c)
		}
		err := fmt.Errorf("send: %w", (&ErrorFrame{Code: c, Msg: "x"}).Err())
		if !IsCode(err, c) || !errors.Is(err, &Error{Code: c}) {
			t.Errorf("IsCode(%d) false", c)
		}
		if got, ok := RevokeReasonOf(err); !ok || got != r {
			t.Errorf("RevokeReasonOf(code %d) = %d, %v; want %d", c, got, ok, r)
		}
		if strings.HasPrefix(c.String(), "code ") {
			t.Errorf("code %d has no name", c)
		}
	}
	for _, c := range []Code{CodeUnknownCapability, CodeQueueFull} {
		if _, ok := RevokeReasonOf(&Error{Code: c}); ok {
			t.Errorf("RevokeReasonOf(code %d) says revoked", c)
		}
	}
	if _, ok := RevokeReasonOf(errors.New("x")); ok {
		t.Error("RevokeReasonOf(plain error) says revoked")
	}
	for _, c := range []Code{CodeUnknownClaimSpace, CodeClaimCapability, CodeClaimLimit, CodeClaimConflict} {
		if strings.HasPrefix(c.String(), "code ") {
			t.Errorf("code %d has no name", c)
		}
	}
}

func TestClaimMarshalRefuses(t *testing.T) {
	cases := []struct {
		name string
		f    Frame
		want error
	}{
		{"set value too long", &SetClaim{Value: make([]byte, MaxClaimValue+1)}, ErrTooLarge},
		{"state value too long", &ClaimState{Version: 1, Value: make([]byte, MaxClaimValue+1)}, ErrTooLarge},
		{"state version 0 with a value", &ClaimState{Value: []byte{1}}, ErrMalformed},
		{"update op 0", &UpdateClaimSpace{}, ErrMalformed},
		{"update op 4", &UpdateClaimSpace{Op: 4}, ErrMalformed},
		{"delete with a hash", &UpdateClaimSpace{Op: ClaimSpaceDelete, Hash: CapabilityHash{1}}, ErrMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Marshal(1, c.f); !errors.Is(err, c.want) {
				t.Fatalf("err %v, want %v", err, c.want)
			}
		})
	}
}

func TestClaimTokenHash(t *testing.T) {
	a, b := ClaimToken(fill32(1)), ClaimToken(fill32(2))
	if a.Hash() == b.Hash() || a.Hash() == ClaimTokenHash(a) {
		t.Fatal("claim token hash")
	}
	// Separated from capability hashes of the same 32 bytes.
	c, _ := CapabilityTokenFromBytes(a[:])
	if [32]byte(c.Hash()) == [32]byte(a.Hash()) {
		t.Fatal("claim token and capability hashes coincide")
	}
	if NewClaimSpaceID() == NewClaimSpaceID() {
		t.Fatal("two fresh claim spaces collide")
	}
}

// FuzzClaimFrames: the claim-space decoders and RevokeCapability's reason
// never panic, and whatever parses re-encodes to the same bytes.
func FuzzClaimFrames(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		checkCanonical(t, b)
		_, fr, err := Parse(b)
		if err != nil {
			return
		}
		switch fr := fr.(type) {
		case *RevokeCapability:
			if fr.Reason > MaxRevokeReason {
				t.Fatalf("reason %d accepted", fr.Reason)
			}
		case *SetClaim:
			if len(fr.Value) > MaxClaimValue {
				t.Fatalf("value of %d bytes accepted", len(fr.Value))
			}
		case *ClaimState:
			if len(fr.Value) > MaxClaimValue || fr.Version == 0 && len(fr.Value) > 0 {
				t.Fatalf("state %d/%d accepted", fr.Version, len(fr.Value))
			}
		case *UpdateClaimSpace:
			if fr.Op < ClaimSpaceSetWrite || fr.Op > ClaimSpaceDelete {
				t.Fatalf("operation %d accepted", fr.Op)
			}
		}
	})
}

// claimSeeds are FuzzClaimFrames' committed seeds: every claim frame and
// every malformed claim case.
func claimSeeds(t *testing.T) map[string][]byte {
	out := map[string][]byte{}
	for _, c := range claimFrames() {
		b, err := Marshal(c.id, c.f)
		if err != nil {
			t.Fatal(err)
		}
		out[c.name] = b
	}
	for _, m := range claimMalformedFrames {
		b, err := hex.DecodeString(m.hex)
		if err != nil {
			t.Fatal(err)
		}
		out["malformed-"+m.name] = b
	}
	return out
}

// TestClaimSeedCorpus checks the committed seeds of FuzzClaimFrames (and
// rewrites them with -update): a seed folder that went missing would let
// the fuzzer start from nothing.
func TestClaimSeedCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzClaimFrames")
	seeds := claimSeeds(t)
	if *update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, b := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, b := range seeds {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%v (regenerate with -update)", err)
		}
		if want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b); string(got) != want {
			t.Fatalf("%s is stale (regenerate with -update)", name)
		}
	}
}
