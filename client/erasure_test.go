package client

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/relay/relaytest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/chacha20poly1305"
)

// boltElement is a key and value found in a leaf page of a bbolt file,
// live or free.
type boltElement struct{ key, val []byte }

// boltElements parses every page of the bbolt file at path, free pages
// and pages past the high-water mark included, and returns the elements
// of every page that reads as a leaf (with the leaves of inline buckets),
// each once. A page overwritten since gives garbage that decrypts under
// no key, which is what erasure wants.
func boltElements(t *testing.T, path string) []boltElement {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Meta page 0: page header (16), magic (4), version (4), page size (4).
	if len(data) < 32 || binary.LittleEndian.Uint32(data[16:]) != 0xED0CDAED {
		t.Fatalf("%s: not a bbolt file", path)
	}
	ps := int(binary.LittleEndian.Uint32(data[24:]))
	seen := map[[32]byte]bool{}
	var out []boltElement
	var leaf func(p []byte)
	leaf = func(p []byte) {
		if len(p) < 16 || binary.LittleEndian.Uint16(p[8:])&0x02 == 0 {
			return
		}
		count := int(binary.LittleEndian.Uint16(p[10:]))
		for i := 0; i < count; i++ {
			e := 16 + 16*i
			if e+16 > len(p) {
				return
			}
			flags := binary.LittleEndian.Uint32(p[e:])
			pos := uint64(binary.LittleEndian.Uint32(p[e+4:]))
			ks := uint64(binary.LittleEndian.Uint32(p[e+8:]))
			vs := uint64(binary.LittleEndian.Uint32(p[e+12:]))
			k := uint64(e) + pos
			if k+ks+vs > uint64(len(p)) {
				continue
			}
			key, val := p[k:k+ks], p[k+ks:k+ks+vs]
			if flags&0x01 != 0 { // a bucket: its inline page, if any
				if len(val) > 16 && binary.LittleEndian.Uint64(val) == 0 {
					leaf(val[16:])
				}
				continue
			}
			h := sha256.Sum256(append(append(binary.BigEndian.AppendUint32(nil, uint32(len(key))), key...), val...))
			if !seen[h] {
				seen[h] = true
				out = append(out, boltElement{key: bytes.Clone(key), val: bytes.Clone(val)})
			}
		}
	}
	for off := 0; off+16 <= len(data); off += ps {
		leaf(data[off:])
	}
	return out
}

// openedElement is an element that decrypted.
type openedElement struct {
	bucket, key, plain []byte
}

// homeKeys returns every key that the home's passphrase gives access to
// now: the keys derived from the store key in the key file, the epoch keys
// in the slots of erase.keys that open, and the record keys of every
// keyring that opens from any element of store.db (repeated until no new
// key appears).
func homeKeys(t *testing.T, home string, elems []boltElement) [][]byte {
	t.Helper()
	file, err := os.ReadFile(filepath.Join(home, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := identity.OpenKeyFile(testPass, file)
	if err != nil {
		t.Fatal(err)
	}
	_, _, sk, err := parseKeyPayload(payload)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	have := map[string]bool{}
	add := func(k []byte) bool {
		if have[string(k)] {
			return false
		}
		have[string(k)] = true
		out = append(out, bytes.Clone(k))
		return true
	}
	for _, label := range []string{store.EncLabel, store.IndexLabel, store.EraseSlotLabel} {
		k, err := hkdf.Key(sha256.New, sk, nil, label, 32)
		if err != nil {
			t.Fatal(err)
		}
		add(k)
	}
	st, err := newStore(filepath.Join(home, StoreFileName), sk)
	if err != nil {
		t.Fatal(err)
	}
	if ks, err := st.EpochKeys(); err == nil {
		for _, k := range ks {
			add(k)
		}
	}
	for tried := 0; tried < len(out); {
		n := len(out)
		for _, o := range openAll(elems, out[tried:], store.BucketErasure) {
			if !bytes.Equal(o.bucket, store.BucketErasure) {
				continue
			}
			if ring, err := store.DecodeKeyring(o.plain); err == nil {
				for _, k := range ring {
					add(k)
				}
			}
		}
		tried = n
	}
	return out
}

// openAll tries every element with every key, as a value of each of
// buckets. An element of a free page has lost its bucket, so each is
// tried as each; the tests name only the buckets whose openings they
// judge (trying the other thirty-odd buckets of the schema too made the
// scan ten times slower and could find nothing the tests look at).
func openAll(elems []boltElement, ks [][]byte, buckets ...[]byte) []openedElement {
	var out []openedElement
	for _, k := range ks {
		aead, err := chacha20poly1305.NewX(k)
		if err != nil {
			panic(err)
		}
		for _, e := range elems {
			if len(e.val) < chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead {
				continue
			}
			for _, b := range buckets {
				p, err := aead.Open(nil, e.val[:chacha20poly1305.NonceSizeX], e.val[chacha20poly1305.NonceSizeX:], store.AD(b, e.key))
				if err == nil {
					out = append(out, openedElement{bucket: b, key: e.key, plain: p})
				}
			}
		}
	}
	return out
}

// liveEphemeral returns the live values of the prekeys and sessions
// buckets, by key.
func liveEphemeral(t *testing.T, c *Client) (prekeys, sessions map[string][]byte) {
	t.Helper()
	prekeys, sessions = map[string][]byte{}, map[string][]byte{}
	err := c.st.view(func(t *tx) error {
		if err := t.Each(bucketPrekeys, func(k, p []byte) error { prekeys[string(k)] = bytes.Clone(p); return nil }); err != nil {
			return err
		}
		return t.Each(bucketSessions, func(k, p []byte) error { sessions[string(k)] = bytes.Clone(p); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return prekeys, sessions
}

// TestDeletedSecretsErased: after one-time prekeys are consumed by real
// handshakes and sessions take ratchet steps, no element anywhere in
// store.db (free pages included) opens, under any key the home holds, to
// a consumed prekey secret or a session state that was replaced.
func TestDeletedSecretsErased(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	ctx := testCtx(t)
	alice, aliceHome := newTestClient(t, srv, "alice")
	bob, bobHome := newTestClient(t, srv, "bob")
	carol, _ := newTestClient(t, srv, "carol")
	alice.syncPrekeys(ctx) // the top-up after Init is done
	before, _ := liveEphemeral(t, alice)
	// bob and carol accept invitations from alice: each starts a session
	// with one of her one-time prekeys, which she consumes when the
	// session's first message arrives; then alice and bob take turns: each
	// turn is a
	// ratchet step that replaces both session states.
	for _, c := range []*Client{bob, carol} {
		code, err := alice.Invite(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Accept(ctx, code, "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	settleRoutes(t, alice, bob)
	if _, err := carol.Send(ctx, "alice", "from carol"); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := bob.Send(ctx, "alice", "b"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Send(ctx, "bob", "a"+string(rune('0'+i))); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []*Client{alice, bob, carol} {
		c.Close()
	}
	consumed := 0
	after, _ := liveEphemeral(t, alice)
	for k := range before {
		if _, ok := after[k]; !ok {
			consumed++
		}
	}
	if consumed < 2 {
		t.Fatalf("%d of alice's one-time prekeys consumed; the test needs 2", consumed)
	}

	for _, h := range []struct {
		name, home string
		c          *Client
	}{{"alice", aliceHome, alice}, {"bob", bobHome, bob}} {
		prekeys, sessions := liveEphemeral(t, h.c)
		elems := boltElements(t, filepath.Join(h.home, StoreFileName))
		opened := openAll(elems, homeKeys(t, h.home, elems), bucketPrekeys, bucketSessions)
		livePrekeys, liveSessions := map[string]bool{}, map[string]bool{}
		for _, o := range opened {
			switch {
			case bytes.Equal(o.bucket, bucketPrekeys):
				if _, ok := prekeys[string(o.key)]; !ok {
					t.Errorf("%s: a consumed prekey secret opens from store.db", h.name)
				} else {
					livePrekeys[string(o.key)] = true
				}
			case bytes.Equal(o.bucket, bucketSessions):
				if bytes.Equal(sessions[string(o.key)], o.plain) {
					liveSessions[string(o.key)] = true
				} else {
					t.Errorf("%s: a replaced session state opens from store.db", h.name)
				}
			}
		}
		// The scan finds what is live: it would find the rest.
		if len(livePrekeys) != len(prekeys) || len(liveSessions) != len(sessions) || len(sessions) == 0 {
			t.Errorf("%s: the scan opened %d of %d live prekeys and %d of %d sessions", h.name, len(livePrekeys), len(prekeys), len(liveSessions), len(sessions))
		}
		t.Logf("%s: %d elements in store.db, %d opened", h.name, len(elems), len(opened))
	}
}

// TestFixtureMigrationErases: the v1 fixture's store.db holds, in a free
// page, a one-time prekey secret consumed before the fixture was taken,
// sealed under the store key (what release v1 left on every disk). The
// migration to this schema scrubs it: afterwards no element of the file
// opens to a consumed prekey or a replaced session state under any key.
func TestFixtureMigrationErases(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	copyTree(t, filepath.Join("..", "testdata", "home", "v1", "bob"), home)
	path := filepath.Join(home, StoreFileName)

	// Before: bbolt's own view of which prekeys are live.
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]bool{}
	db.View(func(bt *bolt.Tx) error {
		return bt.Bucket(bucketPrekeys).ForEach(func(k, _ []byte) error { live[string(k)] = true; return nil })
	})
	db.Close()
	consumed := func(elems []boltElement, ks [][]byte) (n int) {
		for _, o := range openAll(elems, ks, bucketPrekeys) {
			if bytes.Equal(o.bucket, bucketPrekeys) && !live[string(o.key)] {
				n++
			}
		}
		return n
	}
	elems := boltElements(t, path)
	if n := consumed(elems, homeKeys(t, home, elems)); n == 0 {
		t.Fatal("the fixture holds no consumed prekey secret: it no longer shows what v1 left behind")
	}

	c, err := Open(home, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prekeys, sessions := liveEphemeral(t, c)
	elems = boltElements(t, path)
	opened := openAll(elems, homeKeys(t, home, elems), bucketPrekeys, bucketSessions)
	found := map[string]bool{}
	for _, o := range opened {
		switch {
		case bytes.Equal(o.bucket, bucketPrekeys):
			if _, ok := prekeys[string(o.key)]; !ok {
				t.Error("a consumed prekey secret opens after the migration")
			}
			found[string(o.bucket)+"\x00"+string(o.key)] = true
		case bytes.Equal(o.bucket, bucketSessions):
			if !bytes.Equal(sessions[string(o.key)], o.plain) {
				t.Error("a replaced session state opens after the migration")
			}
			found[string(o.bucket)+"\x00"+string(o.key)] = true
		}
	}
	if len(found) != len(prekeys)+len(sessions) {
		t.Errorf("the scan opened %d of %d live prekeys and sessions", len(found), len(prekeys)+len(sessions))
	}
}

// testStore makes a store with a profile in a temporary home.
func testStore(t *testing.T) *localStore {
	t.Helper()
	key := make([]byte, storeKeySize)
	rand.Read(key)
	st, err := newStore(filepath.Join(t.TempDir(), StoreFileName), key)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.update(func(t *tx) error { return t.putProfile(&profileRecord{Name: "x", Enrolled: true}) }); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestEraseKeysLost: a store.db whose epoch key is gone (erase.keys
// deleted, or an old copy of store.db restored) loses its ephemeral
// values, and only those, and carries on with a new epoch.
func TestEraseKeysLost(t *testing.T) {
	t.Parallel()
	st := testStore(t)
	err := st.update(func(t *tx) error {
		if err := t.PutRaw(bucketSessions, []byte("s"), []byte("state")); err != nil {
			return err
		}
		return t.putPrekeyState(&prekeyStateRecord{NextID: 70, Signed: 3, SignedAt: time.Now(), Retired: []retiredPrekey{{ID: 1}}})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(st.EraseKeysPath()); err != nil {
		t.Fatal(err)
	}
	var sess []byte
	var ps *prekeyStateRecord
	var prof *profileRecord
	err = st.view(func(t *tx) (err error) {
		if sess, err = t.GetRaw(bucketSessions, []byte("s")); err != nil {
			return err
		}
		if ps, err = t.prekeyState(); err != nil {
			return err
		}
		prof, err = t.profile()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if sess != nil || prof.Name != "x" || ps.NextID != 70 || !ps.BundleStale || len(ps.Retired) != 0 || !ps.SignedAt.IsZero() {
		t.Fatalf("after the loss: session %q, profile %+v, prekey state %+v", sess, prof, ps)
	}
	if err := st.update(func(t *tx) error { return t.PutRaw(bucketSessions, []byte("s"), []byte("new")) }); err != nil {
		t.Fatal(err)
	}
}

// TestMigrationFailureChangesNothing: a schema 1 store with a value that
// does not decrypt is refused by the migration with an error naming it,
// and neither store.db nor the home changes.
func TestMigrationFailureChangesNothing(t *testing.T) {
	t.Parallel()
	checkMigrationFailure(t, bucketSessions, false, "migrate the local store from schema 1")
}

// checkMigrationFailure flips the last byte of the first (or, with last,
// the last) value of bucket in a copy of testdata/home/v1's bob, and
// checks that Open fails with an error containing want, leaving store.db
// unchanged and no erase.keys behind.
func checkMigrationFailure(t *testing.T, bucket []byte, last bool, want string) {
	t.Helper()
	home := t.TempDir()
	copyTree(t, filepath.Join("..", "testdata", "home", "v1", "bob"), home)
	path := filepath.Join(home, StoreFileName)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(bt *bolt.Tx) error {
		c := bt.Bucket(bucket).Cursor()
		k, v := c.First()
		if last {
			k, v = c.Last()
		}
		v = bytes.Clone(v)
		v[len(v)-1] ^= 1
		return bt.Bucket(bucket).Put(bytes.Clone(k), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	_, err = Open(home, testPass, testOpts())
	if !errors.Is(err, errStoreCorrupt) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open: %v, want the error of %q", err, want)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Error("store.db changed")
	}
	if _, err := os.Stat(filepath.Join(home, EraseKeysFileName)); err == nil {
		t.Error("erase.keys left behind")
	}
}
