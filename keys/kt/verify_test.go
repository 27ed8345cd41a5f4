package kt_test

import (
	"errors"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/hybrid"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/keys/kt"
)

func TestVerifyAnswer(t *testing.T) {
	relay, _ := hybrid.Generate()
	other, _ := hybrid.Generate()
	alice, _ := identity.GenerateIdentity()
	bob, _ := identity.GenerateIdentity()
	now := time.Unix(1772366400, 0)
	list := func(id *identity.Identity, v uint64) []byte {
		b, err := id.SignDeviceList(&keys.DeviceList{Version: v, Created: now, Devices: []keys.ListedDevice{{ID: keys.Fingerprint{byte(v)}, Linked: now, Relay: "wss://relay.example.org"}}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m := newMemTree()
	var lists [][]byte
	for _, l := range [][]byte{list(alice, 1), list(bob, 1), list(alice, 2)} {
		pl, _ := keys.ParseDeviceList(l)
		m.append(t, kt.EntryOf(pl, l).LeafHash())
		lists = append(lists, l)
	}
	answer := func(index, known uint64) kt.Answer {
		inc, err := kt.InclusionProof(m.get, index, m.size)
		if err != nil {
			t.Fatal(err)
		}
		con, err := kt.ConsistencyProof(m.get, known, m.size)
		if err != nil {
			t.Fatal(err)
		}
		return kt.Answer{List: lists[index], Index: index, Inclusion: inc, Head: signHead(t, relay, m.size, m.root), Consistency: con}
	}
	root1, _ := kt.Root(m.get, 1)
	known := &kt.Head{RelayKey: relay.Public().Fingerprint(), Size: 1, Root: root1}
	l, h, err := kt.VerifyAnswer(answer(2, 1), relay.Public(), alice.Public().Fingerprint(), known)
	if err != nil || l.Version != 2 || h.Size != 3 {
		t.Fatalf("VerifyAnswer: %v", err)
	}
	if _, _, err := kt.VerifyAnswer(answer(2, 0), relay.Public(), alice.Public().Fingerprint(), nil); err != nil {
		t.Fatalf("without a known head: %v", err)
	}
	swapped := answer(2, 1)
	swapped.List = list(alice, 3) // signed by alice, never logged
	forked := &kt.Head{RelayKey: known.RelayKey, Size: 1, Root: [32]byte{1}}
	ahead := &kt.Head{RelayKey: known.RelayKey, Size: 9, Root: m.root}
	for _, c := range []struct {
		name  string
		a     kt.Answer
		id    keys.Fingerprint
		key   *keys.SigningPublicKey
		known *kt.Head
		want  error
	}{
		{"list not in the log", swapped, alice.Public().Fingerprint(), relay.Public(), known, kt.ErrInclusion},
		{"another person's list", answer(1, 1), alice.Public().Fingerprint(), relay.Public(), known, kt.ErrWrongIdentity},
		{"head signed by another key", answer(2, 1), alice.Public().Fingerprint(), other.Public(), known, kt.ErrBadHead},
		{"fork", answer(2, 1), alice.Public().Fingerprint(), relay.Public(), forked, kt.ErrFork},
		{"head older than the known one", answer(2, 1), alice.Public().Fingerprint(), relay.Public(), ahead, kt.ErrRollback},
		{"index of another leaf", func() kt.Answer { a := answer(2, 1); a.Index = 0; return a }(), alice.Public().Fingerprint(), relay.Public(), known, kt.ErrInclusion},
	} {
		if _, _, err := kt.VerifyAnswer(c.a, c.key, c.id, c.known); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
