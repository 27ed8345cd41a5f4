package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// skewClock is the real clock moved forward by what a test advances it:
// the clients' timers run out without the test waiting for them.
type skewClock struct{ off atomic.Int64 }

func (k *skewClock) now() time.Time          { return time.Now().Add(time.Duration(k.off.Load())) }
func (k *skewClock) advance(d time.Duration) { k.off.Add(int64(d)) }

func clockOpts(k *skewClock) *Options {
	o := testOpts()
	o.Now = k.now
	return o
}

// pairClock is pair with clients on clock k.
func pairClock(t *testing.T, srv *relaytest.Server, k *skewClock) (alice, bob *Client, bobHome string) {
	t.Helper()
	ctx := testCtx(t)
	mk := func(name string) (*Client, string) {
		home := filepath.Join(t.TempDir(), name)
		c, err := Init(ctx, home, testPass, srv.URL, name, clockOpts(k))
		if err != nil {
			t.Fatalf("Init %s: %v", name, err)
		}
		t.Cleanup(func() { c.Close() })
		return c, home
	}
	alice, _ = mk("alice")
	bob, bobHome = mk("bob")
	code, err := alice.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Accept(ctx, code, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	settleRoutes(t, alice, bob)
	return alice, bob, bobHome
}

// linkClock is linkNew with the new device on clock k.
func linkClock(t *testing.T, c *Client, name string, k *skewClock) *Client {
	t.Helper()
	ctx := testCtx(t)
	codes := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		_, err := c.LinkDevice(ctx, &LinkOptions{
			Show:    func(code string) { codes <- code },
			Confirm: func(got string) bool { return got == name },
		})
		done <- err
	}()
	var code string
	select {
	case code = <-codes:
	case err := <-done:
		t.Fatalf("LinkDevice: %v", err)
	}
	n, err := LinkWith(ctx, filepath.Join(t.TempDir(), name), testPass, code, name, clockOpts(k))
	if err != nil {
		t.Fatalf("LinkWith %s: %v", name, err)
	}
	t.Cleanup(func() { n.Close() })
	if err := <-done; err != nil {
		t.Fatalf("LinkDevice: %v", err)
	}
	return n
}

// blobStatus is the relay's answer to a download of blob id.
func blobStatus(t *testing.T, c *Client, id []byte) int {
	t.Helper()
	var b protocol.BlobID
	copy(b[:], id)
	u, err := blobURL(c.relay, b)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.blobHTTP().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	drain(resp)
	return resp.StatusCode
}

// copyHome copies a home whose client is open: the store through a read
// transaction (a consistent copy), the other files as they are.
func copyHome(t *testing.T, c *Client, home string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(home)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() || e.Name() == StoreFileName || strings.HasPrefix(e.Name(), SearchFileName) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(home, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dst, StoreFileName), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := c.st.view(func(tx *tx) error { _, err := tx.Bolt().WriteTo(f); return err }); err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestDisappearingFourDevices: alice (two devices) sets a timer in her
// conversation with bob (two devices) and sends a file; when the timer
// runs out the message is gone from all four stores and from bob's search
// index, the blob is gone from the relay, and a copy of bob's store taken
// before the expiry shows nothing once opened after it.
func TestDisappearingFourDevices(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	k := &skewClock{}
	alice, bob, bobHome := pairClock(t, srv, k)
	ctx := testCtx(t)
	office := linkClock(t, alice, "OFFICE-PC", k)
	ward := linkClock(t, bob, "WARD-PC", k)
	syncAll(t, 3, ward, office, bob, alice)
	all := []*Client{alice, office, bob, ward}
	peer := map[*Client]string{alice: "bob", office: "bob", bob: "alice", ward: "alice"}

	if err := alice.SetDisappearing(ctx, "bob", time.Hour); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, bob, ward, office, alice)
	for _, c := range all {
		if d, err := c.Disappearing(peer[c]); err != nil || d != time.Hour {
			t.Fatalf("%s: timer %v, %v; want 1h", c.Whoami().Name, d, err)
		}
	}

	file := filepath.Join(t.TempDir(), "ward-round.txt")
	if err := os.WriteFile(file, []byte("obs stable, bed 12"), 0o600); err != nil {
		t.Fatal(err)
	}
	sent, err := alice.SendFiles(ctx, "bob", "scan for ward round", []string{file}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := sent.Time.Add(time.Hour); !sent.Expires.Equal(want) {
		t.Fatalf("sent message expires %v, want %v", sent.Expires, want)
	}
	plain, err := alice.Send(ctx, "bob", "this one stays? no: the timer is on")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, bob, ward, office, alice)
	for _, c := range all {
		got := messagesLike(t, c, "scan for ward round")
		if len(got) != 1 || got[0].Expires.IsZero() || len(got[0].Attachments) != 1 {
			t.Fatalf("%s holds %+v", c.Whoami().Name, got)
		}
		if got[0].Expires.Sub(sent.Expires).Abs() > time.Minute {
			t.Fatalf("%s: expires %v, sent with %v", c.Whoami().Name, got[0].Expires, sent.Expires)
		}
	}
	recs, _, err := alice.attachmentsOf(sent.ID)
	if err != nil || len(recs) != 1 || len(recs[0].Token) == 0 {
		t.Fatalf("alice's attachment records %+v, %v: want the upload token kept", recs, err)
	}
	blob := recs[0].Blob
	if s := blobStatus(t, alice, blob); s != http.StatusOK {
		t.Fatalf("blob before expiry: status %d", s)
	}
	if hits, err := bob.Search(ctx, "ward round", nil); err != nil || len(hits) != 1 {
		t.Fatalf("bob's search before expiry: %d hits, %v", len(hits), err)
	}
	copied := copyHome(t, bob, bobHome)
	if c, err := Open(copied, testPass, clockOpts(k)); err != nil {
		t.Fatal(err)
	} else {
		if n := len(messagesLike(t, c, "scan for ward round")); n != 1 {
			t.Fatalf("the copy holds %d messages before the expiry", n)
		}
		c.Close()
	}

	evs, err := bob.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	k.advance(time.Hour + time.Second)
	bob.kickExpiry() // the loop would wake by itself within a minute
	expired := map[string]bool{}
	for len(expired) < 2 {
		select {
		case ev := <-evs:
			if ev.Kind == EventExpired {
				expired[ev.Message.ID] = true
			}
		case <-ctx.Done():
			t.Fatalf("bob's expiry loop deleted %v only", expired)
		}
	}
	if !expired[sent.ID] || !expired[plain.ID] {
		t.Fatalf("expired %v, want %s and %s", expired, sent.ID, plain.ID)
	}
	syncAll(t, 1, alice, office, bob, ward)
	for _, c := range all {
		for _, id := range []string{sent.ID, plain.ID} {
			if m, err := c.Message(id); err == nil {
				t.Fatalf("%s still holds %+v", c.Whoami().Name, m)
			}
		}
	}
	if hits, err := bob.Search(ctx, "ward round", nil); err != nil || len(hits) != 0 {
		t.Fatalf("bob's search after expiry: %d hits, %v", len(hits), err)
	}
	if s := blobStatus(t, alice, blob); s != http.StatusNotFound {
		t.Fatalf("blob after expiry: status %d, want 404", s)
	}
	c, err := Open(copied, testPass, clockOpts(k))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Message(sent.ID); err == nil {
		t.Fatal("a copy of the store taken before the expiry shows the message after it")
	}
}

// TestDisappearingLateTimerChange: a relay that holds back a timer change
// and delivers it after a newer one, and replays the newer one, changes
// nothing: the latest change stands.
func TestDisappearingLateTimerChange(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, bobHome := pair(t, srv)
	ctx := testCtx(t)
	bob.Close()

	var mu sync.Mutex
	var envs [][]byte
	h := func(out bool, env []byte) {
		if out {
			mu.Lock()
			envs = append(envs, bytes.Clone(env))
			mu.Unlock()
		}
	}
	alice.envelopeHook.Store(&h)
	if err := alice.SetDisappearing(ctx, "bob", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := alice.SetDisappearing(ctx, "bob", 0); err != nil {
		t.Fatal(err)
	}
	alice.envelopeHook.Store(nil)
	mu.Lock()
	defer mu.Unlock()
	if len(envs) != 2 {
		t.Fatalf("alice sent %d envelopes, want 2", len(envs))
	}

	b, err := Open(bobHome, testPass, testOpts())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	r, err := b.lookupContact("alice")
	if err != nil {
		t.Fatal(err)
	}
	var mb protocol.MailboxID
	copy(mb[:], r.RecvMbx)
	deliver := func(env []byte) error {
		var id protocol.EnvelopeID
		copy(id[:], randomID(len(id)))
		_, err := b.receive(mb, id, env)
		return err
	}
	if err := deliver(envs[1]); err != nil {
		t.Fatalf("the newer change: %v", err)
	}
	if err := deliver(envs[0]); err != nil {
		t.Fatalf("the older change: %v", err)
	}
	if d, err := b.Disappearing("alice"); err != nil || d != 0 {
		t.Fatalf("after the older change came last: %v, %v; want off", d, err)
	}
	if err := deliver(envs[1]); !errors.Is(err, errDuplicate) {
		t.Fatalf("a replay of the newer change: %v, want a duplicate", err)
	}
	// The relay's own copies, in order, are the same envelopes.
	if _, err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if d, err := b.Disappearing("alice"); err != nil || d != 0 {
		t.Fatalf("after Sync: %v, %v; want off", d, err)
	}
}

// TestDisappearingConcurrentChanges: both people change the timer before
// either hears of the other's change; both end with the same, later one.
func TestDisappearingConcurrentChanges(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	ctx := testCtx(t)
	if err := alice.SetDisappearing(ctx, "bob", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := bob.SetDisappearing(ctx, "alice", 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, alice, bob)
	da, err1 := alice.Disappearing("bob")
	db, err2 := bob.Disappearing("alice")
	if err1 != nil || err2 != nil || da != db || (da != time.Hour && da != 2*time.Hour) {
		t.Fatalf("alice %v (%v), bob %v (%v): want the same of the two", da, err1, db, err2)
	}
	// A timer in force gives what is sent a matching expiry on both sides.
	m, err := bob.Send(ctx, "alice", "timed")
	if err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, alice)
	got, err := alice.Message(m.ID)
	if err != nil || got.Expires.IsZero() || got.Expires.Sub(m.Expires).Abs() > time.Minute {
		t.Fatalf("alice got %+v, %v; bob's expires %v", got, err, m.Expires)
	}
}

func TestSetDisappearingLimits(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, _, _, _ := pair(t, srv)
	ctx := testCtx(t)
	for _, d := range []time.Duration{time.Second, MinDisappearing - time.Second, MaxDisappearing + time.Second, 5500 * time.Millisecond, -time.Hour} {
		if err := alice.SetDisappearing(ctx, "bob", d); !errors.Is(err, ErrDisappearing) {
			t.Errorf("SetDisappearing(%v) = %v, want ErrDisappearing", d, err)
		}
	}
	if d, _ := alice.Disappearing("bob"); d != 0 {
		t.Fatalf("a refused timer left %v", d)
	}
	if err := alice.SetDisappearing(ctx, "nobody", time.Hour); !errors.Is(err, ErrUnknownContact) {
		t.Fatalf("unknown contact: %v", err)
	}
	for _, d := range []time.Duration{MinDisappearing, MaxDisappearing, 0} {
		if err := alice.SetDisappearing(ctx, "bob", d); err != nil {
			t.Fatalf("SetDisappearing(%v): %v", d, err)
		}
		if got, _ := alice.Disappearing("bob"); got != d {
			t.Fatalf("timer %v after setting %v", got, d)
		}
	}
}

// TestDisappearContentKAT pins the encodings of section 9's content 0x18,
// built here byte by byte from the table, and refuses what breaks it.
func TestDisappearContentKAT(t *testing.T) {
	t.Parallel()
	sender := keys.Fingerprint{0xaa}
	peer := keys.Fingerprint{0xbb}
	msgID := [msgIDSize]byte{0xcc}
	head := func(typ byte) []byte {
		b := []byte{typ}
		b = append(b, sender[:]...)
		b = append(b, msgID[:]...)
		return binary.BigEndian.AppendUint64(b, 1764100000000)
	}
	timerChange := append(head(0x18), 1, 0, 0, 0x0e, 0x10) // kind 1, 3600 s
	timerChange = binary.BigEndian.AppendUint64(timerChange, 1764100000001)
	timerChange = append(timerChange, peer[:]...)
	timed := append(head(0x18), 2, 0, 0, 1, 0x2c, 0x01) // kind 2, 300 s, text
	timed = append(timed, 0, 0, 0, 2, 'o', 'k')
	for _, tc := range []struct {
		name string
		ct   *content
		want []byte
	}{
		{"timer", &content{Type: contentDisappear, Sender: sender, MsgID: msgID, SentMS: 1764100000000, Timer: 3600, TimerMS: 1764100000001, TimerPeer: peer}, timerChange},
		{"timed text", &content{Type: contentText, Sender: sender, MsgID: msgID, SentMS: 1764100000000, Timer: 300, Text: "ok"}, timed},
	} {
		got, err := tc.ct.appendUnsigned(nil)
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Fatalf("%s: %x, %v\nwant %x", tc.name, got, err, tc.want)
		}
		p := binary.BigEndian.AppendUint32(nil, uint32(len(got)))
		back, err := parseSessionContent(append(p, got...))
		if err != nil || back.Timer != tc.ct.Timer || back.Type != tc.ct.Type || back.Text != tc.ct.Text || back.TimerPeer != tc.ct.TimerPeer {
			t.Fatalf("%s: parsed %+v, %v", tc.name, back, err)
		}
	}
	bad := func(b []byte, at int, v byte) []byte { b = bytes.Clone(b); b[at] = v; return b }
	kindAt := len(head(0x18))
	for name, b := range map[string][]byte{
		"unknown kind":          bad(timed, kindAt, 3),
		"timer below minimum":   bad(bad(timed, kindAt+3, 0), kindAt+4, 4),
		"timed non-message":     bad(timed, kindAt+5, contentReset),
		"timed timer change":    bad(timed, kindAt+5, contentDisappear),
		"timer change 1 s":      bad(bad(timerChange, kindAt+3, 0), kindAt+4, 1),
		"timer change no time":  append(append(bytes.Clone(timerChange[:kindAt+5]), make([]byte, 8)...), peer[:]...),
		"timer change short":    timerChange[:len(timerChange)-1],
		"timer change trailing": append(bytes.Clone(timerChange), 1),
	} {
		p := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
		if _, err := parseSessionContent(append(p, b...)); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", name, err)
		}
	}
	// A message with a timer copied to a sibling keeps it.
	cp := &content{Type: contentSentCopy, Sender: sender, SentMS: 2, CopyTo: peer, Inner: &content{Type: contentText, Sender: sender, SentMS: 1, Timer: 60, Text: "x"}}
	b, err := cp.marshalSession()
	if err != nil {
		t.Fatal(err)
	}
	back, err := parseSessionContent(b)
	if err != nil || back.Inner == nil || back.Inner.Timer != 60 {
		t.Fatalf("sent copy: %+v, %v", back, err)
	}
}

// TestDisappearingExpiredOnArrival: a message whose time was up before
// the recipient's device came online is not stored there at all: no
// event, nothing in the inbox.
func TestDisappearingExpiredOnArrival(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	k := &skewClock{}
	alice, bob, bobHome := pairClock(t, srv, k)
	ctx := testCtx(t)
	if err := alice.SetDisappearing(ctx, "bob", time.Minute); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, bob)
	bob.Close() // offline while the message waits on the relay
	late, err := alice.Send(ctx, "bob", "read this within a minute")
	if err != nil {
		t.Fatal(err)
	}
	k.advance(2 * time.Minute)
	bob, err = Open(bobHome, testPass, clockOpts(k))
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	evs, err := bob.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 0 {
		t.Fatalf("bob's Sync returned %+v", msgs)
	}
	if _, err := bob.Message(late.ID); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("bob holds it: %v", err)
	}
	for {
		select {
		case ev := <-evs:
			if ev.Kind == EventMessage || ev.Kind == EventExpired {
				t.Fatalf("event %v for a message that expired before it arrived", ev.Kind)
			}
			continue
		default:
		}
		break
	}
	// Alice's own copy goes too.
	syncAll(t, 1, alice)
	if _, err := alice.Message(late.ID); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("alice holds it: %v", err)
	}
}

// BenchmarkExpire10k: with 10,000 messages stored, the sweep when nothing
// is due (what Open and each wake of the expiry loop cost), and when one
// message is due (the walk over all messages and its deletion; each round
// first stores the message it deletes).
func BenchmarkExpire10k(b *testing.B) {
	c := benchInbox(b, 10000)
	b.Run("nothing-due", func(b *testing.B) {
		for b.Loop() {
			if n, err := c.expire(); err != nil || n != 0 {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("one-due", func(b *testing.B) {
		past := time.Now().Add(-time.Minute)
		i := 0
		for b.Loop() {
			i++
			err := c.st.update(func(t *tx) error {
				m := &messageRecord{ID: fmt.Sprintf("e%015x", i), From: "bob", To: Me, Text: "gone", Time: past, Received: past, Expires: past}
				if _, err := t.AddMessage(m); err != nil {
					return err
				}
				return t.noteExpiry(past)
			})
			if err != nil {
				b.Fatal(err)
			}
			if n, err := c.expire(); err != nil || n != 1 {
				b.Fatal(n, err)
			}
		}
	})
}

// TestDisappearingFutureStamp: a timer change stamped far ahead (a hostile
// or broken clock) is ignored, so that it cannot freeze the timer; one
// within a day ahead is taken, and a later local change still wins.
func TestDisappearingFutureStamp(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	r, err := bob.lookupContact("alice")
	if err != nil {
		t.Fatal(err)
	}
	apply := func(ms uint64, secs uint32) {
		t.Helper()
		ct := &content{Type: contentDisappear, Sender: alice.devID, TimerMS: ms, Timer: secs, TimerPeer: bob.idFP}
		err := bob.st.update(func(tx *tx) error {
			var res received
			drop, err := bob.receiveTimer(tx, r, ct, bob.now(), &res)
			if drop != nil {
				return drop
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	now := uint64(time.Now().UnixMilli())
	apply(now+uint64(48*time.Hour/time.Millisecond), 3600)
	if d, _ := bob.Disappearing("alice"); d != 0 {
		t.Fatalf("a change stamped two days ahead took effect: %v", d)
	}
	apply(now+uint64(time.Hour/time.Millisecond), 600)
	if d, _ := bob.Disappearing("alice"); d != 10*time.Minute {
		t.Fatalf("a change stamped an hour ahead: %v", d)
	}
	if err := bob.SetDisappearing(testCtx(t), "alice", 0); err != nil {
		t.Fatal(err)
	}
	if d, _ := bob.Disappearing("alice"); d != 0 {
		t.Fatalf("bob's own later change lost: %v", d)
	}
}
