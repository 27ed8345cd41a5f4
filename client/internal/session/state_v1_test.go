package session

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"
)

// stateV1File was made by the previous release: both ends' states in the
// version-1 encoding, the responder holding two skipped keys, and messages
// of the previous format still in flight.
const stateV1File = "../../../testdata/vectors/sessions/state-v1.json"

type stateV1 struct {
	ClockUnix      int64    `json:"clock_unix"`
	InitiatorState string   `json:"initiator_state"`
	ResponderState string   `json:"responder_state"`
	ToResponder    []string `json:"to_responder"`
	ToResponderPT  []string `json:"to_responder_plaintext"`
	ToInitiator    []string `json:"to_initiator"`
	ToInitiatorPT  []string `json:"to_initiator_plaintext"`
}

func loadStateV1(tb testing.TB) (fx stateV1, a, b []byte) {
	tb.Helper()
	raw, err := os.ReadFile(stateV1File)
	if err != nil {
		tb.Fatalf("fixture: %v", err)
	}
	if err := json.Unmarshal(raw, &fx); err != nil {
		tb.Fatal(err)
	}
	a, err1 := hex.DecodeString(fx.InitiatorState)
	b, err2 := hex.DecodeString(fx.ResponderState)
	if err1 != nil || err2 != nil || a[1] != stateVersion1 || b[1] != stateVersion1 {
		tb.Fatal("fixture: states are not version-1 encodings")
	}
	return fx, a, b
}

// stateV1Fixture returns the version-1 states, as fuzz seeds.
func stateV1Fixture(tb testing.TB) [][]byte {
	_, a, b := loadStateV1(tb)
	return [][]byte{a, b}
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestStateV1Loads: states of the previous release load, their skipped keys
// stamped at load time, the previous-format messages in flight open, and the
// conversation goes on in the new format, through a store and load as
// version 2.
func TestStateV1Loads(t *testing.T) {
	fx, encA, encB := loadStateV1(t)
	c := &clock{t: time.Unix(fx.ClockUnix, 0).Add(3 * time.Hour)}
	a, err := UnmarshalSecret(encA, c.opts())
	if err != nil {
		t.Fatal(err)
	}
	b, err := UnmarshalSecret(encB, c.opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(b.st.skipped) != len(fx.ToResponder) {
		t.Fatalf("%d skipped keys loaded, want %d", len(b.st.skipped), len(fx.ToResponder))
	}
	for _, k := range b.st.skipped {
		if k.t != c.t.Unix() {
			t.Fatalf("skipped key stamped %d, want the load time %d", k.t, c.t.Unix())
		}
	}
	// Stored again: version 2, and the stamps survive.
	enc := b.MarshalSecret()
	if enc[1] != stateVersion {
		t.Fatalf("re-encoded as version %d", enc[1])
	}
	c.advance(time.Hour)
	b, err = UnmarshalSecret(enc, c.opts())
	if err != nil || b.st.skipped[0].t != c.t.Unix()-3600 {
		t.Fatalf("version 2 reload: %v", err)
	}

	// The previous format in flight, in reverse order (both through stored
	// keys for the responder).
	for i := len(fx.ToResponder) - 1; i >= 0; i-- {
		m := unhex(t, fx.ToResponder[i])
		if m[0]&flagNonceBody != 0 {
			t.Fatal("fixture message is not of the previous format")
		}
		mustOpen(t, b, m, fx.ToResponderPT[i])
	}
	for i, m := range fx.ToInitiator {
		mustOpen(t, a, unhex(t, m), fx.ToInitiatorPT[i])
	}
	if len(b.st.skipped) != 0 {
		t.Fatal("used skipped keys kept")
	}
	// And on, in the new format, with DH turns and a PQ step.
	for i := range 60 {
		s, p := a, b
		if i%3 == 2 {
			s, p = b, a
		}
		m := mustSeal(t, s, "on")
		if m[0]&flagNonceBody == 0 {
			t.Fatal("Seal wrote the previous format")
		}
		mustOpen(t, p, m, "on")
		if i == 30 {
			a, b = clone(t, a), clone(t, b)
		}
	}
}

// TestSkippedKeyAge: a skipped key lives MaxSkippedKeyAge from when it was
// derived (across a store and load), then its message fails and the key is
// gone from the stored state; at the limit itself it still opens.
func TestSkippedKeyAge(t *testing.T) {
	ps := fixtures()
	ca, cb := newClock(), newClock()
	a, b := establish(t, ps[0], ps[1], false, ca, cb)
	mustOpen(t, a, mustSeal(t, b, "r"), "r")
	m1 := mustSeal(t, a, "one")
	m2 := mustSeal(t, a, "two")
	m3 := mustSeal(t, a, "three")
	mustOpen(t, b, m3, "three") // derives and stores the keys of m1 and m2
	if len(b.st.skipped) != 2 {
		t.Fatalf("%d skipped keys", len(b.st.skipped))
	}
	stamp := cb.t
	cb.advance(MaxSkippedKeyAge / 2)
	b = clone(t, b) // the stamps are stored
	cb.t = stamp.Add(MaxSkippedKeyAge)
	mustOpen(t, b, m1, "one") // exactly at the limit: kept
	cb.advance(time.Second)
	before := b.MarshalSecret() // deletes the expired key
	if _, err := b.Open(m2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("expired skipped key: %v", err)
	}
	if len(b.st.skipped) != 0 {
		t.Fatalf("%d expired keys kept", len(b.st.skipped))
	}
	if n := binary.BigEndian.Uint16(before[len(before)-2:]); n != 0 {
		t.Fatalf("stored state holds %d skipped keys", n)
	}
	// The session itself goes on.
	mustOpen(t, b, mustSeal(t, a, "four"), "four")
	mustOpen(t, a, mustSeal(t, b, "back"), "back")
}

// TestSkippedKeyAgeV1: keys loaded from a version-1 state expire
// MaxSkippedKeyAge after the load, also when only Open runs (no store).
func TestSkippedKeyAgeV1(t *testing.T) {
	fx, _, encB := loadStateV1(t)
	c := &clock{t: time.Unix(fx.ClockUnix, 0).Add(40 * 24 * time.Hour)} // loaded long after it was written
	b, err := UnmarshalSecret(encB, c.opts())
	if err != nil {
		t.Fatal(err)
	}
	mustOpen(t, b, unhex(t, fx.ToResponder[1]), fx.ToResponderPT[1])
	c.advance(MaxSkippedKeyAge + time.Second)
	if _, err := b.Open(unhex(t, fx.ToResponder[0])); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("expired key from a version-1 state: %v", err)
	}
	if len(b.st.skipped) != 1 {
		t.Fatal("failed Open changed the state")
	}
	enc := b.MarshalSecret()
	if n := binary.BigEndian.Uint16(enc[len(enc)-2:]); n != 0 || len(b.st.skipped) != 0 {
		t.Fatalf("stored state holds %d expired keys", n)
	}
}
