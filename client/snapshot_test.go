package client

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

// exportOf returns c's contacts snapshot and its decoded form.
func exportOf(t *testing.T, c *Client) ([]byte, *contactsSnapshot) {
	t.Helper()
	var b []byte
	err := c.st.view(func(t *tx) (err error) { b, err = t.exportContacts(c.devID, c.relay, nil); return err })
	if err != nil {
		t.Fatal(err)
	}
	snap, err := parseSnapshot(b, c.idFP)
	if err != nil {
		t.Fatalf("own snapshot refused: %v", err)
	}
	return b, snap
}

func TestSnapshotRoundTrip(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	_, snap := exportOf(t, alice)
	if len(snap.Persons) != 2 {
		t.Fatalf("%d people, want alice and bob", len(snap.Persons))
	}
	for _, p := range snap.Persons {
		switch {
		case p.Self:
			if keys.Fingerprint(p.Identity) != alice.idFP || len(p.Devices) != 1 || len(p.Devices[0].Mailbox) != 0 {
				t.Fatalf("self record %+v", p)
			}
		default:
			if p.Name != "bob" || keys.Fingerprint(p.Identity) != bob.idFP || len(p.Devices) != 1 {
				t.Fatalf("bob's record %+v", p)
			}
			d := p.Devices[0]
			if keys.Fingerprint(d.DeviceID) != bob.devID || len(d.Mailbox) != 16 || len(d.Cap) != 32 || d.Direct || d.Relay != srv.URL {
				t.Fatalf("bob's device %+v", d)
			}
		}
	}
	// Another person's snapshot is not this person's.
	if _, err := parseSnapshot(mustJSON(t, snap), bob.idFP); !errors.Is(err, errSnapshot) {
		t.Fatalf("alice's snapshot for bob: %v", err)
	}
}

func TestSnapshotRefusesBrokenRules(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _, _, _ := pair(t, srv)
	_, good := exportOf(t, alice)
	contact := func(s *contactsSnapshot) *snapshotPerson {
		for i := range s.Persons {
			if !s.Persons[i].Self {
				return &s.Persons[i]
			}
		}
		t.Fatal("no contact")
		return nil
	}
	for name, edit := range map[string]func(s *contactsSnapshot){
		"version":          func(s *contactsSnapshot) { s.V = 2 },
		"two selves":       func(s *contactsSnapshot) { contact(s).Self = true },
		"short identity":   func(s *contactsSnapshot) { contact(s).Identity = contact(s).Identity[:31] },
		"bad name":         func(s *contactsSnapshot) { contact(s).Name = "bo\x07b" },
		"me":               func(s *contactsSnapshot) { contact(s).Name = Me },
		"no devices":       func(s *contactsSnapshot) { contact(s).Devices = nil },
		"verification":     func(s *contactsSnapshot) { contact(s).Verification = 7 },
		"short mailbox":    func(s *contactsSnapshot) { contact(s).Devices[0].Mailbox = make([]byte, 15) },
		"insecure relay":   func(s *contactsSnapshot) { contact(s).Devices[0].Relay = "ws://relay.example.org" },
		"contact own name": func(s *contactsSnapshot) { contact(s).Devices[0].OwnName = "LAPTOP" },
		"direct contact":   func(s *contactsSnapshot) { contact(s).Devices[0].Direct = true },
		"foreign cert": func(s *contactsSnapshot) {
			for _, p := range s.Persons {
				if p.Self {
					contact(s).Devices[0].Cert = alice.dev.Certificate().Bytes()
				}
			}
		},
		"list of another identity": func(s *contactsSnapshot) {
			for _, p := range s.Persons {
				if p.Self {
					contact(s).DeviceList = p.DeviceList
				}
			}
		},
	} {
		var s contactsSnapshot
		if err := json.Unmarshal(mustJSON(t, good), &s); err != nil {
			t.Fatal(err)
		}
		edit(&s)
		if _, err := parseSnapshot(mustJSON(t, &s), alice.idFP); !errors.Is(err, errSnapshot) {
			t.Errorf("%s: got %v, want errSnapshot", name, err)
		}
	}
	if _, err := parseSnapshot([]byte(`{"v":1,"persons":[],"extra":1}`), alice.idFP); !errors.Is(err, errSnapshot) {
		t.Errorf("unknown field: %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParseSnapshot(f *testing.F) {
	f.Add([]byte(`{"v":1,"persons":[{"identity":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","name":"x","self":true,"added":"2026-01-01T00:00:00Z","devices":[]}]}`))
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var id keys.Fingerprint
		snap, err := parseSnapshot(b, id)
		if err != nil {
			if !errors.Is(err, errSnapshot) {
				t.Fatalf("error %v is not errSnapshot", err)
			}
			return
		}
		// What parses re-encodes and parses again.
		if _, err := parseSnapshot(mustJSON(t, snap), id); err != nil {
			t.Fatalf("re-encoded snapshot refused: %v", err)
		}
	})
}
