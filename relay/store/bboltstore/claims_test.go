package bboltstore

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

var (
	fuzzSpace = protocol.ClaimSpaceID{0xc5, 1}
	fuzzToken = protocol.ClaimTokenHash{0x70, 1}
)

// newSpace creates a claim space owned by ownr and returns its ID and the
// hashes of its admin and write capabilities.
func newSpace(t testing.TB, s *Store) (protocol.ClaimSpaceID, protocol.CapabilityHash, protocol.CapabilityHash) {
	t.Helper()
	id := protocol.NewClaimSpaceID()
	admin, write := protocol.NewCapabilityToken().Hash(), protocol.NewCapabilityToken().Hash()
	if err := s.CreateClaimSpace(ctx, ownr, id, admin, write); err != nil {
		t.Fatal(err)
	}
	return id, admin, write
}

func wantClaim(t *testing.T, what string, c store.Claim, won bool, err error, wantVersion uint64, wantValue string, wantWon bool) {
	t.Helper()
	if err != nil || c.Version != wantVersion || string(c.Value) != wantValue || won != wantWon {
		t.Fatalf("%s = {%d %q} %v, %v; want {%d %q} %v", what, c.Version, c.Value, won, err, wantVersion, wantValue, wantWon)
	}
}

func TestClaims(t *testing.T) {
	s, _ := openTest(t)
	id, admin, write := newSpace(t, s)
	tok := protocol.ClaimToken{1}.Hash()

	c, err := s.GetClaim(ctx, id, write, tok)
	wantClaim(t, "GetClaim of a register never written", c, true, err, 0, "", true)
	c, won, err := s.SetClaim(ctx, id, write, tok, 0, []byte("alice"))
	wantClaim(t, "first claim", c, won, err, 1, "alice", true)
	c, won, err = s.SetClaim(ctx, id, write, tok, 0, []byte("bob"))
	wantClaim(t, "second claim from version 0", c, won, err, 1, "alice", false)
	c, won, err = s.SetClaim(ctx, id, write, tok, 5, []byte("bob"))
	wantClaim(t, "claim from a version ahead", c, won, err, 1, "alice", false)
	c, won, err = s.SetClaim(ctx, id, write, tok, 1, nil)
	wantClaim(t, "release to an empty value", c, won, err, 2, "", true)
	c, err = s.GetClaim(ctx, id, write, tok)
	wantClaim(t, "GetClaim", c, true, err, 2, "", true)
	// Another register is independent.
	c, won, err = s.SetClaim(ctx, id, write, protocol.ClaimToken{2}.Hash(), 0, []byte("carol"))
	wantClaim(t, "another register", c, won, err, 1, "carol", true)

	// Refusals change nothing.
	refusals := []struct {
		name string
		fn   func() error
		want error
	}{
		{"set with the admin capability", func() error { _, _, err := s.SetClaim(ctx, id, admin, tok, 2, []byte("x")); return err }, store.ErrClaimCapability},
		{"get with another capability", func() error { _, err := s.GetClaim(ctx, id, protocol.CapabilityHash{1}, tok); return err }, store.ErrClaimCapability},
		{"set in an unknown space", func() error {
			_, _, err := s.SetClaim(ctx, protocol.NewClaimSpaceID(), write, tok, 2, nil)
			return err
		}, store.ErrUnknownClaimSpace},
		{"set a value too long", func() error {
			_, _, err := s.SetClaim(ctx, id, write, tok, 2, make([]byte, protocol.MaxClaimValue+1))
			return err
		}, store.ErrClaimLimit},
		{"update with the write capability", func() error {
			return s.UpdateClaimSpace(ctx, id, write, protocol.ClaimSpaceSetWrite, protocol.CapabilityHash{1})
		}, store.ErrClaimCapability},
		{"update an unknown space", func() error {
			return s.UpdateClaimSpace(ctx, protocol.NewClaimSpaceID(), admin, protocol.ClaimSpaceDelete, protocol.CapabilityHash{})
		}, store.ErrUnknownClaimSpace},
	}
	for _, r := range refusals {
		if err := r.fn(); !errors.Is(err, r.want) || !store.IsRefusal(err) {
			t.Errorf("%s = %v, want %v", r.name, err, r.want)
		}
	}
	c, err = s.GetClaim(ctx, id, write, tok)
	wantClaim(t, "GetClaim after refusals", c, true, err, 2, "", true)

	// Staff removal: a new write capability; the old one is refused at once.
	write2 := protocol.NewCapabilityToken().Hash()
	if err := s.UpdateClaimSpace(ctx, id, admin, protocol.ClaimSpaceSetWrite, write2); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SetClaim(ctx, id, write, tok, 2, []byte("x")); !errors.Is(err, store.ErrClaimCapability) {
		t.Fatalf("set with the replaced write capability = %v", err)
	}
	if _, err := s.GetClaim(ctx, id, write, tok); !errors.Is(err, store.ErrClaimCapability) {
		t.Fatalf("get with the replaced write capability = %v", err)
	}
	c, won, err = s.SetClaim(ctx, id, write2, tok, 2, []byte("dave"))
	wantClaim(t, "claim with the new write capability", c, won, err, 3, "dave", true)
	// Admin removal: a new admin capability.
	admin2 := protocol.NewCapabilityToken().Hash()
	if err := s.UpdateClaimSpace(ctx, id, admin, protocol.ClaimSpaceSetAdmin, admin2); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateClaimSpace(ctx, id, admin, protocol.ClaimSpaceDelete, protocol.CapabilityHash{}); !errors.Is(err, store.ErrClaimCapability) {
		t.Fatalf("delete with the replaced admin capability = %v", err)
	}
	// Delete: the space and its registers are gone.
	if err := s.UpdateClaimSpace(ctx, id, admin2, protocol.ClaimSpaceDelete, protocol.CapabilityHash{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetClaim(ctx, id, write2, tok); !errors.Is(err, store.ErrUnknownClaimSpace) {
		t.Fatalf("get after delete = %v", err)
	}
	s.view(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bClaimSpaces, bClaimOwned, bClaims} {
			if k, _ := tx.Bucket(b).Cursor().First(); k != nil {
				t.Errorf("bucket %s not empty after delete", b)
			}
		}
		return nil
	})
}

func TestClaimSpaceLimit(t *testing.T) {
	s, _ := openTest(t)
	var last protocol.ClaimSpaceID
	var admin protocol.CapabilityHash
	for range protocol.MaxClaimSpacesPerDevice {
		last, admin, _ = newSpace(t, s)
	}
	if err := s.CreateClaimSpace(ctx, ownr, protocol.NewClaimSpaceID(), admin, admin); !errors.Is(err, store.ErrClaimLimit) {
		t.Fatalf("space %d = %v", protocol.MaxClaimSpacesPerDevice+1, err)
	}
	// Another device has its own count; a deleted space frees a place.
	if err := s.CreateClaimSpace(ctx, protocol.DeviceID{9}, protocol.NewClaimSpaceID(), admin, admin); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateClaimSpace(ctx, last, admin, protocol.ClaimSpaceDelete, protocol.CapabilityHash{}); err != nil {
		t.Fatal(err)
	}
	newSpace(t, s)
}

// A space holds at most MaxClaimsPerSpace registers: a new one beyond is
// refused, an existing one still changes. The count is set directly
// rather than by 100 000 commits.
func TestClaimRegisterLimit(t *testing.T) {
	s, _ := openTest(t)
	id, _, write := newSpace(t, s)
	old := protocol.ClaimToken{1}.Hash()
	if _, won, err := s.SetClaim(ctx, id, write, old, 0, []byte("a")); err != nil || !won {
		t.Fatal(err)
	}
	err := s.DB().Update(func(tx *bolt.Tx) error {
		sp, err := decodeClaimSpace(tx.Bucket(bClaimSpaces).Get(id[:]))
		if err != nil {
			return err
		}
		if sp.registers != 1 {
			t.Errorf("registers = %d, want 1", sp.registers)
		}
		sp.registers = protocol.MaxClaimsPerSpace - 1
		return tx.Bucket(bClaimSpaces).Put(id[:], encodeClaimSpace(sp))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, won, err := s.SetClaim(ctx, id, write, protocol.ClaimToken{2}.Hash(), 0, nil); err != nil || !won {
		t.Fatalf("last register: %v", err)
	}
	if _, _, err := s.SetClaim(ctx, id, write, protocol.ClaimToken{3}.Hash(), 0, nil); !errors.Is(err, store.ErrClaimLimit) {
		t.Fatalf("register past the limit = %v", err)
	}
	if c, _ := s.GetClaim(ctx, id, write, protocol.ClaimToken{3}.Hash()); c.Version != 0 {
		t.Fatalf("refused register stored at version %d", c.Version)
	}
	if _, won, err := s.SetClaim(ctx, id, write, old, 1, []byte("b")); err != nil || !won {
		t.Fatalf("existing register at the limit: %v", err)
	}
}

// Of many sets with the same expected version at once, exactly one wins,
// round after round; every loser is told the winner's state.
func TestClaimConcurrentSets(t *testing.T) {
	s, _ := openTest(t)
	id, _, write := newSpace(t, s)
	tok := protocol.ClaimToken{7}.Hash()
	const rounds, claimers = 50, 8
	for round := range uint64(rounds) {
		var wins atomic.Int32
		var winner atomic.Value
		states := make([]store.Claim, claimers)
		var wg sync.WaitGroup
		for i := range claimers {
			wg.Go(func() {
				c, won, err := s.SetClaim(ctx, id, write, tok, round, []byte{byte(i)})
				if err != nil {
					t.Error(err)
					return
				}
				if won {
					wins.Add(1)
					winner.Store(i)
				}
				states[i] = c
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners", round, wins.Load())
		}
		w := winner.Load().(int)
		for i, c := range states {
			if c.Version != round+1 || !bytes.Equal(c.Value, []byte{byte(w)}) {
				t.Fatalf("round %d: claimer %d sees {%d %x}, winner %d", round, i, c.Version, c.Value, w)
			}
		}
	}
}

func TestClaimsSurviveReopen(t *testing.T) {
	s, path := openTest(t)
	id, admin, write := newSpace(t, s)
	tok := protocol.ClaimToken{1}.Hash()
	for v := range uint64(3) {
		if _, won, err := s.SetClaim(ctx, id, write, tok, v, []byte{'v', byte('0' + v + 1)}); err != nil || !won {
			t.Fatal(err)
		}
	}
	s.Close()
	s2, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	c, err := s2.GetClaim(ctx, id, write, tok)
	wantClaim(t, "after reopen", c, true, err, 3, "v3", true)
	c, won, err := s2.SetClaim(ctx, id, write, tok, 2, []byte("late"))
	wantClaim(t, "stale set after reopen", c, won, err, 3, "v3", false)
	if err := s2.UpdateClaimSpace(ctx, id, admin, protocol.ClaimSpaceDelete, protocol.CapabilityHash{}); err != nil {
		t.Fatal(err)
	}
}

// A capability revoked with a reason refuses sends, bundle fetches and
// checks with that reason; one revoked as before reasons (state byte 2
// alone, also what reason 0 writes) with ErrCapabilityRevoked; re-adding
// either makes it live.
func TestRevokeReasons(t *testing.T) {
	s, _ := openTest(t)
	if err := s.PublishPrekeys(ctx, ownr, []byte("bundle"), nil); err != nil {
		t.Fatal(err)
	}
	mb, h := mailboxWithCap(t, s)
	for r := protocol.RevokeBlocked; r <= protocol.MaxRevokeReason; r++ {
		if err := s.RevokeCapability(ctx, ownr, mb, h, r); err != nil {
			t.Fatal(err)
		}
		checks := map[string]error{
			"CheckCapability": s.CheckCapability(ctx, mb, h),
			"Append": func() error {
				_, err := s.Append(ctx, envelope(mb, t0), h)
				return err
			}(),
			"FetchBundle": func() error {
				_, _, err := s.FetchBundle(ctx, mb, h)
				return err
			}(),
		}
		for name, err := range checks {
			var re *store.RevokedError
			switch {
			case !errors.Is(err, store.ErrCapabilityRevoked) || !store.IsRefusal(err):
				t.Errorf("reason %d: %s = %v, want revoked", r, name, err)
			case r == protocol.RevokeBlocked && errors.As(err, &re):
				t.Errorf("reason 0: %s = %v, want the plain sentinel", name, err)
			case r != protocol.RevokeBlocked && (!errors.As(err, &re) || re.Reason != r):
				t.Errorf("reason %d: %s = %v", r, name, err)
			}
		}
		var v []byte
		s.view(func(tx *bolt.Tx) error { v = bytes.Clone(tx.Bucket(bCaps).Get(cat(mb[:], h[:]))); return nil })
		want := []byte{byte(store.CapabilityRevoked)}
		if r != protocol.RevokeBlocked {
			want = append(want, byte(r))
		}
		if !bytes.Equal(v, want) {
			t.Errorf("reason %d stored as %x, want %x", r, v, want)
		}
		if err := s.AddCapability(ctx, ownr, mb, h); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckCapability(ctx, mb, h); err != nil {
			t.Fatalf("reason %d: re-added capability = %v", r, err)
		}
	}
	if err := s.RevokeCapability(ctx, ownr, mb, h, protocol.MaxRevokeReason+1); err == nil || store.IsRefusal(err) {
		t.Fatalf("reason 4 = %v", err)
	}
	// Values this package never writes read as no capability at all.
	for _, v := range [][]byte{{2, 0}, {2, 4}, {1, 1}, {2, 1, 0}, {}} {
		if err := s.DB().Update(func(tx *bolt.Tx) error { return tx.Bucket(bCaps).Put(cat(mb[:], h[:]), v) }); err != nil {
			t.Fatal(err)
		}
		if err := s.CheckCapability(ctx, mb, h); !errors.Is(err, store.ErrUnknownCapability) {
			t.Errorf("record %x: %v", v, err)
		}
	}
}

func FuzzDecodeClaimSpace(f *testing.F) {
	f.Add(encodeClaimSpace(claimSpace{creator: fuzzDev, admin: fuzzCap, write: fuzzCap, registers: 3}))
	f.Add(make([]byte, claimSpaceRecordSize-1))
	f.Fuzz(func(t *testing.T, v []byte) {
		sp, err := decodeClaimSpace(v)
		if err != nil {
			return
		}
		if again := encodeClaimSpace(sp); !bytes.Equal(again, v) {
			t.Fatalf("not canonical:\n got %x\nwant %x", again, v)
		}
	})
}

func FuzzDecodeClaim(f *testing.F) {
	f.Add(encodeClaim(store.Claim{Version: 1, Value: []byte("x")}))
	f.Add(encodeClaim(store.Claim{Version: 2, Value: make([]byte, protocol.MaxClaimValue)}))
	f.Add(make([]byte, 8))
	f.Fuzz(func(t *testing.T, v []byte) {
		c, err := decodeClaim(v)
		if err != nil {
			return
		}
		if c.Version == 0 || len(c.Value) > protocol.MaxClaimValue {
			t.Fatalf("accepted {%d, %d bytes}", c.Version, len(c.Value))
		}
		if again := encodeClaim(c); !bytes.Equal(again, v) {
			t.Fatalf("not canonical:\n got %x\nwant %x", again, v)
		}
	})
}

// On a full file system a claim (which may add a register) is refused,
// while replacing a capability and deleting a space, which do not grow
// the file, still work: staff are removed whatever the disk.
func TestClaimsWhenFull(t *testing.T) {
	path := t.TempDir() + "/relay.db"
	s, err := Open(path, &Options{ReserveBytes: -1, RecoverInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, admin, write := newSpace(t, s)
	tok := protocol.ClaimToken{1}.Hash()
	if _, won, err := s.SetClaim(ctx, id, write, tok, 0, []byte("a")); err != nil || !won {
		t.Fatal(err)
	}
	s.space.setFull()
	if _, _, err := s.SetClaim(ctx, id, write, tok, 1, []byte("b")); !errors.Is(err, store.ErrStorageFull) {
		t.Fatalf("claim on a full disk = %v", err)
	}
	// A lost claim is answered from the committed state, full or not.
	if c, won, err := s.SetClaim(ctx, id, write, tok, 0, []byte("b")); err != nil || won || c.Version != 1 {
		t.Fatalf("lost claim on a full disk = %+v %v %v", c, won, err)
	}
	write2 := protocol.NewCapabilityToken().Hash()
	if err := s.UpdateClaimSpace(ctx, id, admin, protocol.ClaimSpaceSetWrite, write2); err != nil {
		t.Fatalf("replacing the write capability on a full disk = %v", err)
	}
	if _, err := s.GetClaim(ctx, id, write, tok); !errors.Is(err, store.ErrClaimCapability) {
		t.Fatalf("old write capability = %v", err)
	}
	if err := s.UpdateClaimSpace(ctx, id, admin, protocol.ClaimSpaceDelete, protocol.CapabilityHash{}); err != nil {
		t.Fatalf("deleting on a full disk = %v", err)
	}
}
