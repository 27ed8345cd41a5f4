package group

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// people are three identities shared by the tests (hybrid key generation
// is slow): an admin, a member and a third person.
var people = sync.OnceValue(func() [3]*identity.Identity {
	var out [3]*identity.Identity
	for i := range out {
		id, err := identity.GenerateIdentity()
		if err != nil {
			panic(err)
		}
		out[i] = id
	}
	return out
})

func fpOf(id *identity.Identity) keys.Fingerprint { return id.Public().Fingerprint() }

// sample is a valid unsigned state: admin (2 devices, one joined), member
// (1 joined device) and, when delegate is set, the third person as the
// member's delegate; members sorted.
func sample(t testing.TB, delegate bool) *State {
	t.Helper()
	p := people()
	s := &State{
		Group: ID{1, 2, 3}, Version: 1, Name: "Ward 4", Relay: "ws://127.0.0.1:7000",
		Fanout: protocol.FanoutID{9}, SendCap: [32]byte{7}, HeaderKey: [32]byte{8},
	}
	admin := Member{Identity: fpOf(p[0]), Name: "Ada", Role: RoleAdmin, Devices: []Device{
		{ID: keys.Fingerprint{0x10}, Joined: true, Mailbox: protocol.MailboxID{1}, Capability: [32]byte{1}},
		{ID: keys.Fingerprint{0x11}},
	}}
	member := Member{Identity: fpOf(p[1]), Name: "Ben", Role: RoleMember, Devices: []Device{
		{ID: keys.Fingerprint{0x20}, Joined: true, Mailbox: protocol.MailboxID{2}, Capability: [32]byte{2}},
	}}
	s.Members = []Member{admin, member}
	if delegate {
		s.Members = append(s.Members, Member{Identity: fpOf(p[2]), Name: "Cy", Role: RoleDelegate, For: fpOf(p[1]),
			Devices: []Device{{ID: keys.Fingerprint{0x30}}}})
	}
	sortMembers(s)
	return s
}

func sortMembers(s *State) {
	for i := 1; i < len(s.Members); i++ {
		for j := i; j > 0 && bytes.Compare(s.Members[j-1].Identity[:], s.Members[j].Identity[:]) > 0; j-- {
			s.Members[j-1], s.Members[j] = s.Members[j], s.Members[j-1]
		}
	}
}

func signed(t testing.TB, s *State, by *identity.Identity) []byte {
	t.Helper()
	b, err := Sign(s, by)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	s := sample(t, true)
	b := signed(t, s, people()[0])
	got, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := got.Bytes()
	if err != nil || !bytes.Equal(again, b) {
		t.Fatalf("re-encoding differs (%v)", err)
	}
	d := got.Member(fpOf(people()[2]))
	if d == nil || got.DisplayName(d) != "Cy for Ben" {
		t.Fatalf("delegate shown as %q", got.DisplayName(d))
	}
	if m, dev := got.Device(keys.Fingerprint{0x20}); m == nil || m.Name != "Ben" || !dev.Joined {
		t.Fatal("device lookup")
	}
	if n := len(got.Mailboxes()); n != 2 {
		t.Fatalf("%d mailboxes, want 2", n)
	}
	if strings.Contains(got.String(), "8") && strings.Contains(got.String(), "header") {
		t.Fatal("String shows the header key")
	}
}

// TestAlteredByte: every single-byte change of a signed state is refused.
func TestAlteredByte(t *testing.T) {
	b := signed(t, sample(t, false), people()[0])
	for _, i := range []int{2, 20, 30, 60, len(b) / 2, len(b) - keys.SignatureSize - 10, len(b) - 1} {
		c := bytes.Clone(b)
		c[i] ^= 0x01
		if _, err := Parse(c); err == nil {
			t.Fatalf("byte %d changed: accepted", i)
		}
	}
	if _, err := Parse(append(bytes.Clone(b), 0)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	if _, err := Parse(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestRules(t *testing.T) {
	p := people()
	cases := []struct {
		name string
		edit func(s *State)
	}{
		{"version 0", func(s *State) { s.Version = 0 }},
		{"empty name", func(s *State) { s.Name = "" }},
		{"control in name", func(s *State) { s.Name = "a\nb" }},
		{"long name", func(s *State) { s.Name = strings.Repeat("x", MaxNameSize+1) }},
		{"bad relay", func(s *State) { s.Relay = "http://x" }},
		{"no members", func(s *State) { s.Members = nil }},
		{"no admin", func(s *State) { s.Members[0].Role, s.Members[1].Role = RoleMember, RoleMember }},
		{"unknown role", func(s *State) { s.Members[0].Role = 5 }},
		{"unsorted", func(s *State) { s.Members[0], s.Members[1] = s.Members[1], s.Members[0] }},
		{"duplicate member", func(s *State) { s.Members[1].Identity = s.Members[0].Identity }},
		{"member for someone", func(s *State) { s.Member(fpOf(p[0])).For = fpOf(p[1]) }},
		{"device twice", func(s *State) { s.Member(fpOf(p[1])).Devices[0].ID = keys.Fingerprint{0x10} }},
		{"mailbox twice", func(s *State) { s.Member(fpOf(p[1])).Devices[0].Mailbox = protocol.MailboxID{1} }},
		{"mailbox of a device not joined", func(s *State) {
			for i := range s.Members {
				for j := range s.Members[i].Devices {
					if !s.Members[i].Devices[j].Joined {
						s.Members[i].Devices[j].Mailbox[0] = 1
					}
				}
			}
		}},
		{"too many devices", func(s *State) {
			m := &s.Members[0]
			m.Devices = nil
			for i := range MaxDevices + 1 {
				m.Devices = append(m.Devices, Device{ID: keys.Fingerprint{0x40, byte(i)}})
			}
		}},
		{"delegate for an outsider", func(s *State) { s.Member(fpOf(p[2])).For = keys.Fingerprint{0xee} }},
		{"delegate for itself", func(s *State) { s.Member(fpOf(p[2])).For = fpOf(p[2]) }},
		{"delegate for an observer", func(s *State) { s.Member(fpOf(p[1])).Role = RoleObserver }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := sample(t, true)
			c.edit(s)
			if _, err := Sign(s, p[0]); !errors.Is(err, ErrRule) {
				t.Fatalf("Sign: %v, want ErrRule", err)
			}
		})
	}
	t.Run("too many members", func(t *testing.T) {
		s := sample(t, false)
		for i := range MaxMembers - 1 {
			s.Members = append(s.Members, Member{Identity: keys.Fingerprint{0xf0, byte(i >> 8), byte(i)}, Name: "m", Role: RoleMember})
		}
		sortMembers(s)
		if _, err := Sign(s, p[0]); !errors.Is(err, ErrRule) {
			t.Fatalf("Sign: %v", err)
		}
	})
}

// TestMaxState: the largest state (MaxMembers people, each with
// MaxDevices joined devices and the longest names and relay) encodes to
// exactly MaxStateSize bytes and parses.
func TestMaxState(t *testing.T) {
	p := people()
	long := strings.Repeat("n", MaxNameSize)
	relay := "wss://" + strings.Repeat("r", keys.MaxRelayURLSize-6)
	s := &State{Group: ID{1}, Version: 1, Name: long, Relay: relay}
	mb := 0
	for i := range MaxMembers {
		m := Member{Identity: keys.Fingerprint{byte(i >> 8), byte(i)}, Name: long, Role: RoleDelegate, For: fpOf(p[0])}
		if i == 0 {
			m = Member{Identity: fpOf(p[0]), Name: long, Role: RoleAdmin}
		}
		for j := range MaxDevices {
			mb++
			m.Devices = append(m.Devices, Device{ID: keys.Fingerprint{byte(i >> 8), byte(i), byte(j)}, Joined: true,
				Mailbox: protocol.MailboxID{byte(mb >> 8), byte(mb)}})
		}
		s.Members = append(s.Members, m)
	}
	sortMembers(s)
	b, err := Sign(s, p[0])
	if err != nil {
		t.Fatal(err)
	}
	// The admin is no delegate: the largest state is one delegate's
	// identity shorter.
	if len(b) != MaxStateSize-delegateSize {
		t.Fatalf("%d bytes, want %d", len(b), MaxStateSize-delegateSize)
	}
	if _, err := Parse(b); err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(append(b, make([]byte, MaxStateSize)...)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("oversized: %v", err)
	}
}

func TestAccept(t *testing.T) {
	p := people()
	held := sample(t, false)
	held1, err := Parse(signed(t, held, p[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := AcceptFirst(held1, fpOf(p[0]), fpOf(p[1])); err != nil {
		t.Fatalf("first state: %v", err)
	}
	if err := AcceptFirst(held1, fpOf(p[1]), fpOf(p[1])); !errors.Is(err, ErrNotFromSigner) {
		t.Fatalf("first state relayed by a member: %v", err)
	}
	if err := AcceptFirst(held1, fpOf(p[0]), fpOf(p[2])); !errors.Is(err, ErrFirstState) {
		t.Fatalf("first state not naming the receiver: %v", err)
	}
	// A first state signed by a member who lists itself as admin... is
	// its own admin; one signed by someone it does not list as admin is not.
	byMember, err := Parse(signed(t, sample(t, false), p[1]))
	if err != nil {
		t.Fatal(err)
	}
	if err := AcceptFirst(byMember, fpOf(p[1]), fpOf(p[0])); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("first state by a non-admin: %v", err)
	}

	next := sample(t, true)
	next.Version = 2
	n2, _ := Parse(signed(t, next, p[0]))
	if err := held1.Accept(n2, fpOf(p[0])); err != nil {
		t.Fatalf("v2: %v", err)
	}
	if err := n2.Accept(held1, fpOf(p[0])); !errors.Is(err, ErrRollback) {
		t.Fatalf("rollback: %v", err)
	}
	same := sample(t, true)
	same.Version = 2
	s2, _ := Parse(signed(t, same, p[0]))
	if err := n2.Accept(s2, fpOf(p[0])); !errors.Is(err, ErrRollback) {
		t.Fatalf("same version: %v", err)
	}
	// A member promoting itself: it signs a state naming it admin; the
	// held state says it is not one.
	coup := sample(t, false)
	coup.Version = 3
	coup.Member(fpOf(p[1])).Role = RoleAdmin
	c3, err := Parse(signed(t, coup, p[1]))
	if err != nil {
		t.Fatal(err)
	}
	if err := held1.Accept(c3, fpOf(p[1])); !errors.Is(err, ErrNotAdmin) {
		t.Fatalf("non-admin's state: %v", err)
	}
	other := sample(t, false)
	other.Group = ID{9}
	other.Version = 5
	o5, _ := Parse(signed(t, other, p[0]))
	if err := held1.Accept(o5, fpOf(p[0])); !errors.Is(err, ErrWrongGroup) {
		t.Fatalf("other group: %v", err)
	}
	// An admin who steps down: accepted, as signed by an admin of the
	// held state.
	down := sample(t, false)
	down.Version = 2
	down.Member(fpOf(p[1])).Role = RoleAdmin
	down.Member(fpOf(p[0])).Role = RoleMember
	d2, err := Parse(signed(t, down, p[0]))
	if err != nil {
		t.Fatal(err)
	}
	if err := held1.Accept(d2, fpOf(p[0])); err != nil {
		t.Fatalf("stepping down: %v", err)
	}
	// A genuine state passed on by someone else than its signer.
	if err := held1.Accept(n2, fpOf(p[1])); !errors.Is(err, ErrNotFromSigner) {
		t.Fatalf("relayed state: %v", err)
	}
}

func TestForgedSignature(t *testing.T) {
	p := people()
	s := sample(t, false)
	signed(t, s, p[0])
	s.Signer = p[1].Public() // claims another signer, keeps the signature
	b, err := s.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b); !errors.Is(err, ErrSignature) {
		t.Fatalf("%v, want ErrSignature", err)
	}
	// ParseStored does not check it (the store's own authentication
	// does), and checks everything else.
	if _, err := ParseStored(b); err != nil {
		t.Fatalf("ParseStored: %v", err)
	}
	if _, err := ParseStored(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
		t.Fatalf("ParseStored of a truncated state: %v", err)
	}
}
