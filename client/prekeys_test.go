package client

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// testClock is an Options.Now that tests move forward.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (k *testClock) Now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.t
}

func (k *testClock) advance(d time.Duration) {
	k.mu.Lock()
	k.t = k.t.Add(d)
	k.mu.Unlock()
}

// fetcher fetches c's bundle the way a sender does: over an
// unauthenticated connection, with a capability of one of c's mailboxes.
type fetcher struct {
	c   *Client
	inv *Invitation
}

func newFetcher(t *testing.T, c *Client) *fetcher {
	t.Helper()
	code, err := c.Invite(testCtx(t))
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	inv, err := ParseInvitation(code)
	if err != nil {
		t.Fatalf("ParseInvitation: %v", err)
	}
	return &fetcher{c: c, inv: inv}
}

// fetch returns the verified bundle's last-resort prekey and the one-time
// prekey (nil when none was left).
func (f *fetcher) fetch(t *testing.T) (signed, oneTime *keys.SignedPrekey) {
	t.Helper()
	r, err := f.c.anonRequest(testCtx(t), f.inv.Relay, "test", &protocol.FetchBundle{Mailbox: f.inv.Mailbox, Capability: f.inv.Capability()})
	if err != nil {
		t.Fatalf("FetchBundle: %v", err)
	}
	b, ok := r.(*protocol.Bundle)
	if !ok {
		t.Fatalf("FetchBundle answered %T", r)
	}
	cert, signed, err := parseBundle(b.Bundle)
	if err != nil {
		t.Fatalf("parseBundle: %v", err)
	}
	if cert.DeviceID() != f.c.devID {
		t.Fatalf("bundle of another device")
	}
	if signed.OneTime {
		t.Fatalf("bundle's signed prekey %d is one-time", signed.ID)
	}
	if len(b.Prekey) == 0 {
		return signed, nil
	}
	oneTime, err = keys.ParseSignedPrekey(cert.Signing, b.Prekey)
	if err != nil {
		t.Fatalf("one-time prekey does not verify: %v", err)
	}
	if !oneTime.OneTime {
		t.Fatalf("one-time prekey %d is flagged last-resort", oneTime.ID)
	}
	return signed, oneTime
}

// status asks the relay how many one-time prekeys c has left.
func status(t *testing.T, c *Client) *protocol.PrekeyStatus {
	t.Helper()
	cn, err := c.authConn(testCtx(t))
	if err != nil {
		t.Fatalf("authConn: %v", err)
	}
	r, err := cn.request(testCtx(t), &protocol.GetPrekeyStatus{})
	if err != nil {
		t.Fatalf("GetPrekeyStatus: %v", err)
	}
	return r.(*protocol.PrekeyStatus)
}

// checkSecret fails unless c holds the secret of the published prekey p.
func checkSecret(t *testing.T, c *Client, p *keys.SignedPrekey) {
	t.Helper()
	s, err := c.prekeySecret(p.ID)
	if err != nil {
		t.Fatalf("prekeySecret(%d): %v", p.ID, err)
	}
	pub := s.Public()
	if !pub.Key.Equal(p.Key) || pub.OneTime != p.OneTime {
		t.Fatalf("prekeySecret(%d) is not the published prekey", p.ID)
	}
}

func syncNow(t *testing.T, c *Client) {
	t.Helper()
	if _, err := c.Sync(testCtx(t)); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// drainingRelay lets one capability fetch bundles without the relay's
// per-capability limit (SPEC.md section 10, Prekeys) getting in the way:
// these tests drain a device's one-time prekeys on purpose.
var drainingRelay = &relaytest.Options{BundleFetchBurst: 1 << 20}

// realPrekeys are the options of a device with a real device's one-time
// prekey supply (the package's tests otherwise keep a smaller one,
// testPrekeys).
func realPrekeys() *Options {
	return &Options{KDF: testKDF, prekeys: prekeySupply{low: prekeyLowWater, target: prekeyTarget}}
}

func newRealPrekeyClient(t *testing.T, srv *relaytest.Server) *Client {
	t.Helper()
	c, err := Init(testCtx(t), filepath.Join(t.TempDir(), "alice"), testPass, srv.URL, "alice", realPrekeys())
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPrekeyInitial(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, drainingRelay)
	c := newRealPrekeyClient(t, srv)
	s, err := c.prekeySecret(0)
	if err != nil || s.Public().OneTime {
		t.Fatalf("prekeySecret(0) = %v, %v; want the last-resort prekey", s, err)
	}
	for id := uint32(1); id <= OneTimePrekeys; id++ {
		s, err := c.prekeySecret(id)
		if err != nil || !s.Public().OneTime || s.Public().ID != id {
			t.Fatalf("prekeySecret(%d) = %v, %v; want a one-time prekey", id, s, err)
		}
	}
	for _, id := range []uint32{1 << 20, 1<<32 - 1} {
		if _, err := c.prekeySecret(id); !errors.Is(err, ErrNoPrekey) {
			t.Fatalf("prekeySecret(%d) = %v, want ErrNoPrekey", id, err)
		}
	}
	// The first Sync (or the check after connecting) tops up to the target;
	// the initial prekeys are handed out first, and all have secrets.
	syncNow(t, c)
	if st := status(t, c); st.Count != prekeyTarget || !st.HasBundle {
		t.Fatalf("after Sync: status %+v, want %d one-time prekeys and a bundle", st, prekeyTarget)
	}
	f := newFetcher(t, c)
	for i := uint32(1); i <= OneTimePrekeys; i++ {
		signed, otpk := f.fetch(t)
		if otpk == nil || otpk.ID != i || signed.ID != 0 {
			t.Fatalf("fetch %d: signed %d, one-time %v; want 0 and %d", i, signed.ID, otpk, i)
		}
		checkSecret(t, c, signed)
		checkSecret(t, c, otpk)
	}
}

func TestPrekeyTopUp(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, drainingRelay)
	c := newRealPrekeyClient(t, srv)
	syncNow(t, c)
	f := newFetcher(t, c)
	seen := map[uint32]bool{}
	fetchN := func(n int) (maxID uint32) {
		for range n {
			_, otpk := f.fetch(t)
			if otpk == nil {
				t.Fatalf("no one-time prekey left")
			}
			if seen[otpk.ID] {
				t.Fatalf("one-time prekey %d handed out twice", otpk.ID)
			}
			seen[otpk.ID] = true
			checkSecret(t, c, otpk)
			maxID = max(maxID, otpk.ID)
		}
		return maxID
	}
	// Down to the low-water mark: no top-up yet.
	fetchN(prekeyTarget - prekeyLowWater)
	syncNow(t, c)
	if st := status(t, c); st.Count != prekeyLowWater {
		t.Fatalf("at low water: %d left, want %d (no top-up)", st.Count, prekeyLowWater)
	}
	// Below it: the next Sync tops up to the target.
	oldMax := fetchN(1)
	syncNow(t, c)
	if st := status(t, c); st.Count != prekeyTarget || !st.HasBundle {
		t.Fatalf("after top-up: status %+v, want %d and a bundle", st, prekeyTarget)
	}
	// Everything left is handed out with a secret, the new ones with
	// higher IDs than any before.
	newMax := fetchN(prekeyTarget)
	if newMax <= oldMax {
		t.Fatalf("highest ID after top-up %d, before %d: want new IDs", newMax, oldMax)
	}
	if _, otpk := f.fetch(t); otpk != nil {
		t.Fatalf("one-time prekey %d beyond the target", otpk.ID)
	}

	// A new Client on the same home continues the IDs (they are stored)
	// and tops up on connect without a Sync.
	c.Close()
	home := c.home
	c2, err := Dial(testCtx(t), home, testPass, realPrekeys())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c2.Close() })
	deadline := time.Now().Add(30 * time.Second)
	for status(t, c2).Count != prekeyTarget {
		if time.Now().After(deadline) {
			t.Fatalf("no top-up after connecting")
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.c = c2
	for range prekeyTarget {
		_, otpk := f.fetch(t)
		if otpk == nil || otpk.ID <= newMax || seen[otpk.ID] {
			t.Fatalf("after reconnect: one-time prekey %v; want a fresh ID above %d", otpk, newMax)
		}
		seen[otpk.ID] = true
		checkSecret(t, c2, otpk)
	}
}

func TestSignedPrekeyRotation(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, drainingRelay)
	clk := &testClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	home := filepath.Join(t.TempDir(), "alice")
	opts := testOpts()
	opts.Now = clk.Now
	c, err := Init(testCtx(t), home, testPass, srv.URL, "alice", opts)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	f := newFetcher(t, c)
	syncNow(t, c)
	first, _ := f.fetch(t)
	checkSecret(t, c, first)

	clk.advance(signedPrekeyRotation - time.Minute)
	syncNow(t, c)
	if s, _ := f.fetch(t); s.ID != first.ID {
		t.Fatalf("rotated early: signed prekey %d, want %d", s.ID, first.ID)
	}

	clk.advance(time.Minute)
	syncNow(t, c)
	second, _ := f.fetch(t)
	if second.ID == first.ID || second.Key.Equal(first.Key) {
		t.Fatalf("after %v: signed prekey not rotated", signedPrekeyRotation)
	}
	checkSecret(t, c, second)
	checkSecret(t, c, first) // kept for late initiations

	// Within the grace period (no rotation due: Sync at +6 days only).
	clk.advance(6 * 24 * time.Hour)
	syncNow(t, c)
	checkSecret(t, c, first)
	if s, _ := f.fetch(t); s.ID != second.ID {
		t.Fatalf("signed prekey %d, want %d", s.ID, second.ID)
	}

	// Just before the end of the grace period: still there. (Another
	// rotation is due by now; the second prekey is retired in turn.)
	clk.advance(signedPrekeyGrace - 6*24*time.Hour - time.Minute)
	syncNow(t, c)
	checkSecret(t, c, first)
	third, _ := f.fetch(t)
	if third.ID == second.ID {
		t.Fatalf("no second rotation")
	}
	checkSecret(t, c, second)
	checkSecret(t, c, third)

	clk.advance(time.Minute)
	syncNow(t, c)
	if _, err := c.prekeySecret(first.ID); !errors.Is(err, ErrNoPrekey) {
		t.Fatalf("prekeySecret(first) after the grace period = %v, want ErrNoPrekey", err)
	}
	checkSecret(t, c, second)
	checkSecret(t, c, third)
	if s, _ := f.fetch(t); s.ID != third.ID {
		t.Fatalf("signed prekey %d, want %d", s.ID, third.ID)
	}
}

func TestPrekeyBundleStaleRepublished(t *testing.T) {
	t.Parallel()
	// A rotation whose publication failed (here: no connection) leaves the
	// bundle stale; the next check publishes it.
	srv := relaytest.New(t, nil)
	clk := &testClock{t: time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)}
	home := filepath.Join(t.TempDir(), "alice")
	opts := testOpts()
	opts.Now = clk.Now
	c, err := Init(testCtx(t), home, testPass, srv.URL, "alice", opts)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	f := newFetcher(t, c)
	syncNow(t, c)
	st, err := c.rotateSignedPrekey(0, clk.Now())
	if err != nil || !st.BundleStale || st.Signed == 0 {
		t.Fatalf("rotateSignedPrekey = %+v, %v", st, err)
	}
	if s, _ := f.fetch(t); s.ID != 0 {
		t.Fatalf("relay has signed prekey %d before publication", s.ID)
	}
	syncNow(t, c)
	s, _ := f.fetch(t)
	if s.ID != st.Signed {
		t.Fatalf("after Sync: signed prekey %d, want %d", s.ID, st.Signed)
	}
	checkSecret(t, c, s)
	if err := c.st.view(func(t *tx) (err error) { st, err = t.prekeyState(); return err }); err != nil || st.BundleStale {
		t.Fatalf("state after publication: %+v, %v", st, err)
	}
}

func TestConsumeOneTimePrekey(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	c, _ := newTestClient(t, srv, "alice")
	if err := c.consumeOneTimePrekey(3); err != nil {
		t.Fatalf("consumeOneTimePrekey(3): %v", err)
	}
	if _, err := c.prekeySecret(3); !errors.Is(err, ErrNoPrekey) {
		t.Fatalf("prekeySecret(3) after consumption = %v, want ErrNoPrekey", err)
	}
	for _, id := range []uint32{0, 1, 2, 4, 5, OneTimePrekeys} {
		if _, err := c.prekeySecret(id); err != nil {
			t.Fatalf("prekeySecret(%d) = %v: consumption deleted another prekey", id, err)
		}
	}
	if err := c.consumeOneTimePrekey(3); !errors.Is(err, ErrNoPrekey) {
		t.Fatalf("consuming twice = %v, want ErrNoPrekey", err)
	}
	if err := c.consumeOneTimePrekey(1 << 30); !errors.Is(err, ErrNoPrekey) {
		t.Fatalf("consuming an unknown ID = %v, want ErrNoPrekey", err)
	}
	// The last-resort prekey is never consumed.
	if err := c.consumeOneTimePrekey(0); !errors.Is(err, errNotOneTimePrekey) {
		t.Fatalf("consuming the last-resort prekey = %v, want errNotOneTimePrekey", err)
	}
	if _, err := c.prekeySecret(0); err != nil {
		t.Fatalf("last-resort prekey gone after a refused consumption: %v", err)
	}
	// In a transaction that fails (say, storing the session), the deletion
	// is rolled back with it.
	errSession := errors.New("session not stored")
	err := c.st.update(func(t *tx) error {
		if err := t.deletePrekey(4); err != nil {
			return err
		}
		return errSession
	})
	if !errors.Is(err, errSession) {
		t.Fatalf("update = %v", err)
	}
	if _, err := c.prekeySecret(4); err != nil {
		t.Fatalf("prekeySecret(4) after a rolled-back consumption: %v", err)
	}
}

func TestPrekeyStateRebuilt(t *testing.T) {
	t.Parallel()
	// A home made before the bookkeeping existed has only the secrets; the
	// first check rebuilds it from them.
	srv := relaytest.New(t, nil)
	c, _ := newTestClient(t, srv, "alice")
	syncNow(t, c)
	c.prekeyBusy <- struct{}{} // no check runs meanwhile
	defer func() { <-c.prekeyBusy }()
	var want *prekeyStateRecord
	err := c.st.update(func(t *tx) (err error) {
		if want, err = t.prekeyState(); err != nil {
			return err
		}
		return t.Delete(bucketMeta, t.Index(bucketMeta, keyPrekeyState))
	})
	if err != nil || want == nil {
		t.Fatalf("state = %+v, %v", want, err)
	}
	got, err := c.prekeyBookkeeping(c.now())
	if err != nil {
		t.Fatalf("prekeyBookkeeping: %v", err)
	}
	if got.NextID != want.NextID || got.Signed != want.Signed || got.BundleStale || len(got.Retired) != 0 {
		t.Fatalf("rebuilt state %+v, want next ID %d, signed %d", got, want.NextID, want.Signed)
	}
}
