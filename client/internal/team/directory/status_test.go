package directory

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/postern/postern/keys"
)

var now = time.Date(2026, 12, 7, 14, 0, 0, 0, time.UTC)

func status(t *testing.T, name string, at time.Time, st Availability, dnd time.Time, forward string) []byte {
	t.Helper()
	s := &Status{Org: testOrg, Time: at, State: st, DNDUntil: dnd}
	if forward != "" {
		s.Forward = fp(t, forward)
	}
	b, err := s.Sign(who(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAcceptStatus(t *testing.T) {
	d := sampleDirectory(t)
	signed(t, d, "admin")
	s1, err := d.AcceptStatus(nil, status(t, "alice", now.Add(-time.Hour), Busy, time.Time{}, ""), now)
	if err != nil || s1.State != Busy || s1.Subject != fp(t, "alice") {
		t.Fatalf("accept: %v", err)
	}
	s2b := status(t, "alice", now, Available, now.Add(time.Hour), "bob")
	s2, err := d.AcceptStatus(s1, s2b, now)
	if err != nil || !s2.DoNotDisturb(now) || !s2.Forwarding(now) {
		t.Fatalf("newer: %v", err)
	}
	// Claiming alice's status with bob's key.
	forged, _ := decodeStatus(s2b)
	forged.Signer = who(t, "bob").Public()
	forged.Subject = fp(t, "alice")
	fb := append(append([]byte(nil), s2b[:StatusSize-2-keys.SignatureSize-keys.SigningPublicKeySize]...), forged.Signer.Bytes()...)
	fb = append(fb, s2b[StatusSize-2-keys.SignatureSize:]...)
	flipped := bytes.Clone(s2b)
	flipped[66] ^= 1 // the last byte of do-not-disturb's end
	for _, tc := range []struct {
		name string
		held *Status
		b    []byte
		want error
	}{
		{"rolled back", s2, status(t, "alice", now.Add(-time.Minute), OffDuty, time.Time{}, ""), ErrRollback},
		{"same time", s2, status(t, "alice", now, OffDuty, time.Time{}, ""), ErrRollback},
		{"in the future", s2, status(t, "alice", now.Add(MaxClockSkew+time.Second), OffDuty, time.Time{}, ""), ErrFuture},
		{"another's key", s2, fb, ErrNotEntitled},
		{"forged", s1, flipped, ErrBadSignature},
		{"not staff", nil, status(t, "mallory", now, Busy, time.Time{}, ""), ErrUnknown},
		{"another person's held", s2, status(t, "bob", now.Add(time.Minute), Busy, time.Time{}, ""), ErrUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := d.AcceptStatus(tc.held, tc.b, now); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := d.AcceptStatus(s2, status(t, "alice", now.Add(MaxClockSkew), OffDuty, time.Time{}, ""), now); err != nil {
		t.Fatalf("within the skew: %v", err)
	}
	if _, err := (&Status{Org: testOrg, Time: now, State: Busy, Forward: fp(t, "alice")}).Sign(who(t, "alice")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("forwarding to oneself: %v", err)
	}
	if _, err := (&Status{Org: testOrg, Time: now, State: 4}).Sign(who(t, "alice")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("availability 4: %v", err)
	}
}

// TestRoute: do-not-disturb forwards to the named colleague; forwarding is
// followed along a bounded chain; a loop is refused.
func TestRoute(t *testing.T) {
	d := sampleDirectory(t)
	signed(t, d, "admin")
	held := map[keys.Fingerprint]*Status{}
	set := func(name string, st Availability, dnd time.Time, forward string) {
		t.Helper()
		s, err := d.AcceptStatus(nil, status(t, name, now.Add(-time.Minute), st, dnd, forward), now)
		if err != nil {
			t.Fatal(err)
		}
		held[s.Subject] = s
	}
	lookup := func(f keys.Fingerprint) *Status { return held[f] }
	route := func(name string) (Delivery, error) { return d.Route(fp(t, name), now, lookup) }
	alice, bob, carol, dan := fp(t, "alice"), fp(t, "bob"), fp(t, "carol"), fp(t, "dan")

	if r, err := route("alice"); err != nil || r.To != alice || r.Via != nil {
		t.Fatalf("no status: %+v %v", r, err)
	}
	set("alice", Available, now.Add(time.Hour), "bob")
	if r, err := route("alice"); err != nil || r.To != bob || !slices.Equal(r.Via, []keys.Fingerprint{alice}) {
		t.Fatalf("do-not-disturb: %+v %v", r, err)
	}
	// Do-not-disturb over: no forwarding.
	set("alice", Available, now.Add(-time.Second), "bob")
	if r, _ := route("alice"); r.To != alice {
		t.Fatal("an ended do-not-disturb still forwards")
	}
	// Busy without do-not-disturb: delivered to alice.
	set("alice", Busy, time.Time{}, "bob")
	if r, _ := route("alice"); r.To != alice {
		t.Fatal("busy forwards")
	}
	// Off duty forwards; a chain alice -> bob -> carol.
	set("alice", OffDuty, time.Time{}, "bob")
	set("bob", Busy, now.Add(time.Hour), "carol")
	if r, err := route("alice"); err != nil || r.To != carol || !slices.Equal(r.Via, []keys.Fingerprint{alice, bob}) {
		t.Fatalf("chain: %+v %v", r, err)
	}
	// A loop: carol -> alice.
	set("carol", OffDuty, time.Time{}, "alice")
	if r, err := route("alice"); !errors.Is(err, ErrForwardLoop) || r.To != alice {
		t.Fatalf("loop from alice: %+v %v", r, err)
	}
	if r, err := route("bob"); !errors.Is(err, ErrForwardLoop) || r.To != bob {
		t.Fatalf("loop from bob: %+v %v", r, err)
	}
	// A chain of four hops: alice -> bob -> carol -> dan -> (outside).
	set("carol", OffDuty, time.Time{}, "dan")
	if r, err := route("alice"); err != nil || r.To != dan {
		t.Fatalf("three hops: %+v %v", r, err)
	}
	set("dan", OffDuty, time.Time{}, "mallory")
	if _, err := route("alice"); !errors.Is(err, ErrForwardChain) {
		t.Fatalf("forward outside: %v", err)
	}
	set("dan", OffDuty, time.Time{}, "eve")
	d2 := sampleDirectory(t)
	d2.Staff = sortStaff(append(d2.Staff, Staff{Identity: fp(t, "eve"), Name: "Eve"}))
	signed(t, d2, "admin")
	if r, err := d2.Route(alice, now, lookup); !errors.Is(err, ErrForwardChain) || r.To != alice {
		t.Fatalf("four hops: %+v %v", r, err)
	}
}

func TestStatusDecode(t *testing.T) {
	b := status(t, "alice", now, Busy, now.Add(time.Hour), "bob")
	for _, tc := range []struct {
		name string
		f    func([]byte) []byte
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"tag", func(b []byte) []byte { b[0] = tagRoleRecord; return b }},
		{"availability 0", func(b []byte) []byte { b[58] = 0; return b }},
		{"availability 4", func(b []byte) []byte { b[58] = 4; return b }},
		{"time 0", func(b []byte) []byte { copy(b[50:58], make([]byte, 8)); return b }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseStatus(tc.f(bytes.Clone(b))); !errors.Is(err, ErrMalformed) {
				t.Fatalf("got %v", err)
			}
		})
	}
}
