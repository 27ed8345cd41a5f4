package people

import (
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/hybrid"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/keys/kt"
)

const relayURL = "wss://relay.example.org"

// log is a relay's transparency log in memory, signing real heads.
type log struct {
	t     *testing.T
	key   *hybrid.Signer
	nodes map[[2]uint64][kt.HashSize]byte
	lists [][]byte
	root  [kt.HashSize]byte
}

func newLog(t *testing.T, key *hybrid.Signer) *log {
	return &log{t: t, key: key, nodes: map[[2]uint64][kt.HashSize]byte{}}
}

func (m *log) get(level uint, index uint64) ([kt.HashSize]byte, error) {
	h, ok := m.nodes[[2]uint64{uint64(level), index}]
	if !ok {
		return h, fmt.Errorf("no node %d/%d", level, index)
	}
	return h, nil
}

func (m *log) append(list []byte) uint64 {
	l, err := keys.ParseDeviceList(list)
	if err != nil {
		m.t.Fatal(err)
	}
	put := func(level uint, index uint64, h [kt.HashSize]byte) error {
		m.nodes[[2]uint64{uint64(level), index}] = h
		return nil
	}
	m.root, err = kt.Append(m.get, put, uint64(len(m.lists)), kt.EntryOf(l, list).LeafHash())
	if err != nil {
		m.t.Fatal(err)
	}
	m.lists = append(m.lists, list)
	return uint64(len(m.lists) - 1)
}

// answer is the relay's answer for the list at index, with a consistency
// proof from known.
func (m *log) answer(index, known uint64) kt.Answer {
	size := uint64(len(m.lists))
	inc, err := kt.InclusionProof(m.get, index, size)
	if err != nil {
		m.t.Fatal(err)
	}
	var con [][kt.HashSize]byte
	if known > 0 {
		if con, err = kt.ConsistencyProof(m.get, known, size); err != nil {
			m.t.Fatal(err)
		}
	}
	h := &kt.Head{RelayKey: m.key.Public().Fingerprint(), Size: size, Root: m.root, Time: time.Unix(1772366400, 0)}
	if h.Signature, err = m.key.Sign(kt.ContextHead, h.SignedPart()); err != nil {
		m.t.Fatal(err)
	}
	return kt.Answer{List: m.lists[index], Index: index, Inclusion: inc, Head: h.Bytes(), Consistency: con}
}

func signList(t *testing.T, id *identity.Identity, v uint64, dev byte) []byte {
	now := time.Unix(1772366400, 0)
	b, err := id.SignDeviceList(&keys.DeviceList{Version: v, Created: now, Devices: []keys.ListedDevice{{ID: keys.Fingerprint{dev}, Linked: now, Relay: relayURL}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testStore(t *testing.T) *store.Store {
	key := make([]byte, store.KeySize)
	rand.Read(key)
	st, err := store.New(filepath.Join(t.TempDir(), "store.db"), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// state is the person's kept list version and the kept head's size.
func state(t *testing.T, st *store.Store, personID []byte) (uint64, uint64) {
	var v, size uint64
	err := st.View(func(tx *store.Tx) error {
		p, err := tx.Person(personID)
		if err != nil {
			return err
		}
		v = p.DeviceListVersion
		size, err = KnownSize(tx, relayURL)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return v, size
}

func accept(st *store.Store, personID []byte, a kt.Answer) (*keys.DeviceList, error) {
	var l *keys.DeviceList
	err := st.Update(func(tx *store.Tx) error {
		p, err := tx.Person(personID)
		if err != nil {
			return err
		}
		l, err = Accept(tx, relayURL, p, a)
		return err
	})
	return l, err
}

func TestPinOnFirstUse(t *testing.T) {
	st := testStore(t)
	k1, _ := hybrid.Generate()
	k2, _ := hybrid.Generate()
	pin := func(k *hybrid.Signer) error {
		return st.Update(func(tx *store.Tx) error { _, err := Pin(tx, relayURL, k.Public().Bytes()); return err })
	}
	if err := pin(k1); err != nil {
		t.Fatal(err)
	}
	if err := pin(k1); err != nil {
		t.Fatalf("the same key again: %v", err)
	}
	if err := pin(k2); !errors.Is(err, ErrTransparency) || !errors.Is(err, kt.ErrBadHead) {
		t.Fatalf("another key: %v, want ErrTransparency", err)
	}
	err := st.View(func(tx *store.Tx) error {
		k, err := Pinned(tx, relayURL)
		if err != nil || k == nil || !k.Equal(k1.Public()) {
			t.Errorf("pinned key after a refused one: %v", err)
		}
		if k, err := Pinned(tx, "wss://other.example.org"); k != nil || err != nil {
			t.Errorf("another relay has a pinned key: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestAccept: newer lists and heads are kept; an older head, a forked
// log, a lower list version and a swapped list under a kept version are
// each refused with ErrTransparency and change nothing.
func TestAccept(t *testing.T) {
	st := testStore(t)
	relayKey, _ := hybrid.Generate()
	alice, _ := identity.GenerateIdentity()
	bob, _ := identity.GenerateIdentity()
	person := &store.Person{ID: store.NewID(), Identity: fp(alice), Name: "alice", Added: time.Unix(1772366400, 0)}
	err := st.Update(func(tx *store.Tx) error {
		if err := tx.PutPerson(person); err != nil {
			return err
		}
		_, err := Pin(tx, relayURL, relayKey.Public().Bytes())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	m := newLog(t, relayKey)
	i1 := m.append(signList(t, alice, 1, 1))
	if l, err := accept(st, person.ID, m.answer(i1, 0)); err != nil || l.Version != 1 {
		t.Fatalf("first list: %v", err)
	}
	if v, size := state(t, st, person.ID); v != 1 || size != 1 {
		t.Fatalf("kept version %d, head size %d; want 1, 1", v, size)
	}
	m.append(signList(t, bob, 1, 2))
	i2 := m.append(signList(t, alice, 2, 3))
	if l, err := accept(st, person.ID, m.answer(i2, 1)); err != nil || l.Version != 2 {
		t.Fatalf("second list: %v", err)
	}
	if v, size := state(t, st, person.ID); v != 2 || size != 3 {
		t.Fatalf("kept version %d, head size %d; want 2, 3", v, size)
	}
	// The same answer again changes nothing and is accepted.
	if _, err := accept(st, person.ID, m.answer(i2, 3)); err != nil {
		t.Fatalf("the same list again: %v", err)
	}

	// A relay that shows a log of 1 leaf after one of 3 (rolled back).
	old := newLog(t, relayKey)
	old.append(signList(t, alice, 1, 1))
	// A relay that shows another log of 3 leaves (forked).
	fork := newLog(t, relayKey)
	fork.append(signList(t, alice, 1, 1))
	fork.append(signList(t, bob, 1, 9))
	fi := fork.append(signList(t, alice, 2, 3))
	// The log goes on, honestly appending what the relay was given: an
	// old list of alice logged again, and another version 2 of hers.
	i3 := m.append(signList(t, alice, 1, 1))
	i4 := m.append(signList(t, alice, 2, 4))
	other := newLog(t, mustKey(t))
	oi := other.append(signList(t, alice, 3, 3))
	for _, c := range []struct {
		name string
		a    kt.Answer
		want error
	}{
		{"older head", old.answer(0, 0), kt.ErrRollback},
		{"forked log", fork.answer(fi, 3), kt.ErrFork},
		{"lower list version", m.answer(i3, 3), kt.ErrRollback},
		{"another list under a kept version", m.answer(i4, 3), kt.ErrFork},
		{"head of another relay key", other.answer(oi, 0), kt.ErrBadHead},
		{"list of another identity", m.answer(1, 3), kt.ErrWrongIdentity},
	} {
		if _, err := accept(st, person.ID, c.a); !errors.Is(err, ErrTransparency) || !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want ErrTransparency and %v", c.name, err, c.want)
		}
		if v, size := state(t, st, person.ID); v != 2 || size != 3 {
			t.Errorf("%s: kept version %d, head size %d; want 2, 3 unchanged", c.name, v, size)
		}
	}
}

func mustKey(t *testing.T) *hybrid.Signer {
	k, err := hybrid.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestAcceptNeedsPinnedKey(t *testing.T) {
	st := testStore(t)
	alice, _ := identity.GenerateIdentity()
	person := &store.Person{ID: store.NewID(), Identity: fp(alice), Name: "alice"}
	if err := st.Update(func(tx *store.Tx) error { return tx.PutPerson(person) }); err != nil {
		t.Fatal(err)
	}
	m := newLog(t, mustKey(t))
	m.append(signList(t, alice, 1, 1))
	if _, err := accept(st, person.ID, m.answer(0, 0)); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no pinned key: %v, want ErrNoKey", err)
	}
}

func fp(id *identity.Identity) []byte { f := id.Public().Fingerprint(); return f[:] }

// TestKept: Kept gives ErrNoKey before a key is pinned, the key and no
// head after, and the key and the head Accept kept.
func TestKept(t *testing.T) {
	st := testStore(t)
	relayKey, _ := hybrid.Generate()
	alice, _ := identity.GenerateIdentity()
	person := &store.Person{ID: store.NewID(), Identity: fp(alice), Name: "alice", Added: time.Unix(1772366400, 0)}
	kept := func() (*keys.SigningPublicKey, *kt.Head, error) {
		var k *keys.SigningPublicKey
		var h *kt.Head
		err := st.Update(func(tx *store.Tx) (err error) { k, h, err = Kept(tx, relayURL); return err })
		return k, h, err
	}
	if _, _, err := kept(); !errors.Is(err, ErrNoKey) {
		t.Fatalf("before a pin: %v, want ErrNoKey", err)
	}
	err := st.Update(func(tx *store.Tx) error {
		if err := tx.PutPerson(person); err != nil {
			return err
		}
		_, err := Pin(tx, relayURL, relayKey.Public().Bytes())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if k, h, err := kept(); err != nil || !k.Equal(relayKey.Public()) || h != nil {
		t.Fatalf("after a pin: %v, %v", h, err)
	}
	m := newLog(t, relayKey)
	m.append(signList(t, alice, 1, 1))
	i := m.append(signList(t, alice, 2, 2))
	if _, err := accept(st, person.ID, m.answer(i, 0)); err != nil {
		t.Fatal(err)
	}
	if _, h, err := kept(); err != nil || h == nil || h.Size != 2 || h.Root != m.root {
		t.Fatalf("after Accept: %+v, %v; want the head of 2 leaves", h, err)
	}
}
