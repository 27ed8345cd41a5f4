package client

import (
	"encoding/json"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/relay/relaytest"
)

// Homes and a relay made by earlier releases (testdata/home/v1 and v2, see
// their README.md): TestHomeFixtureV1 and V2 open them with this code and
// carry the conversation on. TestMakeHomeFixture made them; it only runs with
// -make-fixture, and is kept so that the next fixture is made the same way
// (a fixture is made once per release, never rewritten).
var makeFixture = flag.Bool("make-fixture", false, "write testdata/home/NEW from TestMakeHomeFixture (see testdata/home/v2/README.md)")

// fixtureEpoch is the fixture's clock: the clients and the relay ran at
// fixtureEpoch plus elapsed time, and the test runs them an hour later, so
// that nothing queued on the relay has expired however old the fixture is.
var fixtureEpoch = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// fixtureClock returns a clock that starts at start and advances with
// real time.
func fixtureClock(start time.Time) func() time.Time {
	t0 := time.Now()
	return func() time.Time { return start.Add(time.Since(t0)) }
}

const fixtureFile = "notes.txt"

var fixtureFileContent = []byte("Ward 4 handover notes.\nBed 12: review at 14:00.\n")

func TestMakeHomeFixture(t *testing.T) {
	t.Parallel()
	if !*makeFixture {
		t.Skip("writes a new fixture; run with -make-fixture")
	}
	out := filepath.Join("..", "testdata", "home", "NEW")
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("%s exists; move it away first", out)
	}
	now := fixtureClock(fixtureEpoch)
	srv := relaytest.New(t, &relaytest.Options{Now: now})
	ctx := testCtx(t)
	dir := t.TempDir()
	opts := &Options{KDF: testKDF, Now: now}
	initHome := func(name string) *Client {
		c, err := Init(ctx, filepath.Join(dir, name), testPass, srv.URL, name, opts)
		if err != nil {
			t.Fatalf("Init %s: %v", name, err)
		}
		return c
	}
	alice, bob, carol := initHome("alice"), initHome("bob"), initHome("carol")
	for _, p := range []struct {
		from, to *Client
		as       string
	}{{alice, bob, "alice"}, {alice, carol, "alice"}} {
		code, err := p.from.Invite(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.to.Accept(ctx, code, p.as); err != nil {
			t.Fatal(err)
		}
		if _, err := p.from.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	send := func(from *Client, to, text string) {
		t.Helper()
		if _, err := from.Send(ctx, to, text); err != nil {
			t.Fatalf("send %q: %v", text, err)
		}
	}
	sync := func(c *Client, want int) {
		t.Helper()
		got, err := c.Sync(ctx)
		if err != nil || len(got) != want {
			t.Fatalf("sync: %v, %v; want %d messages", texts(got), err, want)
		}
	}
	// A conversation with ratchet steps both ways.
	send(alice, "bob", "hello bob")
	sync(bob, 1)
	send(bob, "alice", "hi alice")
	send(bob, "alice", "how was the night shift?")
	sync(alice, 2)
	send(alice, "bob", "quiet, thanks")
	sync(bob, 1)
	send(carol, "alice", "hello from carol")
	sync(alice, 1)
	if err := alice.Block(ctx, "carol"); err != nil {
		t.Fatal(err)
	}
	// An attachment that bob has received but not saved: its blob stays on
	// the relay.
	file := filepath.Join(dir, fixtureFile)
	if err := os.WriteFile(file, fixtureFileContent, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.SendFiles(ctx, "bob", "the notes", []string{file}, nil); err != nil {
		t.Fatal(err)
	}
	sync(bob, 1)
	send(bob, "alice", "got them")
	sync(alice, 1)
	// Queued for bob, never received before the fixture was taken: his
	// client is closed first (a connected one receives them at once).
	bob.Close()
	send(alice, "bob", "queued one")
	send(alice, "bob", "queued two")
	// An invitation of alice's that nobody has accepted (yet).
	if _, err := alice.Invite(ctx); err != nil {
		t.Fatal(err)
	}
	manifest := map[string]fixtureHome{}
	for _, c := range []*Client{alice, bob} {
		manifest[c.Whoami().Name] = describeHome(t, c)
	}
	for _, c := range []*Client{alice, bob, carol} {
		c.Close()
	}
	srv.Close()

	for _, name := range []string{"alice", "bob"} {
		copyTree(t, filepath.Join(dir, name), filepath.Join(out, name))
	}
	copyTree(t, srv.DataDir, filepath.Join(out, "relay"))
	b, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(out, "manifest.json"), append(b, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s; write its README.md", out)
}

// fixtureHome is what a fixture home held when it was made
// (manifest.json beside the homes, from v2 on): a test compares a home
// opened by later code with it.
type fixtureHome struct {
	Contacts []string         `json:"contacts"` // name, "(blocked)" appended
	Messages []fixtureMessage `json:"messages"` // Inbox order
	// Prekeys is the number of prekey secrets stored (one-time and
	// signed); Invitations the number of invitations not used yet.
	Prekeys     int `json:"prekeys"`
	Invitations int `json:"invitations"`
}

type fixtureMessage struct {
	ID          string   `json:"id"`
	From        string   `json:"from"`
	To          string   `json:"to"`
	Text        string   `json:"text"`
	Outgoing    bool     `json:"outgoing,omitempty"`
	Notice      bool     `json:"notice,omitempty"`
	Attachments []string `json:"attachments,omitempty"` // names
}

// describeHome lists c's contacts and messages as a fixture manifest does.
func describeHome(t *testing.T, c *Client) fixtureHome {
	t.Helper()
	cs, err := c.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	h := fixtureHome{Contacts: []string{}, Messages: []fixtureMessage{}}
	for _, ct := range cs {
		if ct.Blocked {
			h.Contacts = append(h.Contacts, ct.Name+"(blocked)")
		} else {
			h.Contacts = append(h.Contacts, ct.Name)
		}
	}
	ms, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		fm := fixtureMessage{ID: m.ID, From: m.From, To: m.To, Text: m.Text, Outgoing: m.Outgoing, Notice: m.Notice}
		for _, a := range m.Attachments {
			fm.Attachments = append(fm.Attachments, a.Name)
		}
		h.Messages = append(h.Messages, fm)
	}
	h.Prekeys, h.Invitations = countSecrets(t, c)
	return h
}

// countSecrets counts c's stored prekey secrets and unused invitations.
func countSecrets(t *testing.T, c *Client) (prekeys, invitations int) {
	t.Helper()
	err := c.st.view(func(t *tx) error {
		if err := t.Each(bucketPrekeys, func(_, _ []byte) error { prekeys++; return nil }); err != nil {
			return err
		}
		return t.Each(bucketInvitations, func(_, p []byte) error {
			var r invitationRecord
			if err := jsonUnmarshal(p, &r); err != nil {
				return err
			}
			if !r.Used && !r.Retired {
				invitations++
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return prekeys, invitations
}

// copyTree copies the regular files under src to dst (created).
func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		if !d.Type().IsRegular() || strings.HasSuffix(p, ".reserve") {
			return nil // a relay's disk-space reserve is made again on start
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// fixtureHomes copies testdata/home/v1 to a temporary directory and starts
// a relay on its relay data, with the clock an hour after the fixture's.
// It points both homes at the new relay's address: the address is stored
// in each home's profile, and the fixture's relay listened on a port that
// is gone.
func fixtureHomes(t *testing.T, version string) (srv *relaytest.Server, aliceHome, bobHome string, opts *Options) {
	t.Helper()
	dir := t.TempDir()
	copyTree(t, filepath.Join("..", "testdata", "home", version), dir)
	now := fixtureClock(fixtureEpoch.Add(time.Hour))
	srv = relaytest.New(t, &relaytest.Options{Now: now, DataDir: filepath.Join(dir, "relay")})
	opts = &Options{KDF: testKDF, Now: now}
	aliceHome, bobHome = filepath.Join(dir, "alice"), filepath.Join(dir, "bob")
	for _, home := range []string{aliceHome, bobHome} {
		c, err := Open(home, testPass, opts)
		if err != nil {
			t.Fatalf("Open %s: %v", home, err)
		}
		err = c.st.update(func(t *tx) error {
			p, err := t.profile()
			if err != nil {
				return err
			}
			p.Relay = srv.URL
			if err := t.putProfile(p); err != nil {
				return err
			}
			// The relay runs on another port now: devices name it too
			// (sends go to the relay of the recipient's device).
			ds, err := t.Devices()
			if err != nil {
				return err
			}
			for _, d := range ds {
				d.Relay = srv.URL
				if err := t.PutDevice(d); err != nil {
					return err
				}
			}
			return nil
		})
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return srv, aliceHome, bobHome, opts
}

func inboxTexts(t *testing.T, c *Client) string {
	t.Helper()
	ms, err := c.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range ms {
		if m.Notice {
			b.WriteString("(notice)")
		}
		b.WriteString(m.From + ">" + m.To + ":" + m.Text)
		for _, a := range m.Attachments {
			b.WriteString(" [" + a.Name + "]")
		}
		b.WriteString("|")
	}
	return b.String()
}

// TestHomeFixtureV1: homes and a relay made by release v1 open with this
// code with every contact, session and message intact, and the
// conversation goes on: the queued envelopes arrive, texts go both ways in
// the existing sessions (no reset), and the attachment sent then is saved.
func TestHomeFixtureV1(t *testing.T) {
	t.Parallel()
	_, aliceHome, bobHome, opts := fixtureHomes(t, "v1")
	open := func(home string) *Client {
		c, err := Open(home, testPass, opts)
		if err != nil {
			t.Fatalf("Open %s: %v", home, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob := open(aliceHome), open(bobHome)

	// Contacts, blocking, sessions and messages as the fixture left them.
	contacts := func(c *Client) string {
		cs, err := c.Contacts()
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, ct := range cs {
			if ct.Blocked {
				s = append(s, ct.Name+"(blocked)")
			} else {
				s = append(s, ct.Name)
			}
		}
		return strings.Join(s, ",")
	}
	if got := contacts(alice); got != "bob,carol(blocked)" {
		t.Fatalf("alice's contacts: %s", got)
	}
	if got := contacts(bob); got != "alice" {
		t.Fatalf("bob's contacts: %s", got)
	}
	wantAlice := "me>bob:hello bob|bob>me:hi alice|bob>me:how was the night shift?|me>bob:quiet, thanks|" +
		"carol>me:hello from carol|me>bob:the notes [" + fixtureFile + "]|bob>me:got them|me>bob:queued one|me>bob:queued two|"
	wantBob := "alice>me:hello bob|me>alice:hi alice|me>alice:how was the night shift?|alice>me:quiet, thanks|" +
		"alice>me:the notes [" + fixtureFile + "]|me>alice:got them|"
	if got := inboxTexts(t, alice); got != wantAlice {
		t.Fatalf("alice's messages:\n got %s\nwant %s", got, wantAlice)
	}
	if got := inboxTexts(t, bob); got != wantBob {
		t.Fatalf("bob's messages:\n got %s\nwant %s", got, wantBob)
	}
	for _, c := range []*Client{alice, bob} {
		if err := checkSessions(c); err != nil {
			t.Fatalf("%s's sessions: %v", c.Whoami().Name, err)
		}
		checkModel(t, c)
	}

	fixtureGoesOn(t, alice, bob)
}

// fixtureGoesOn carries on the conversation of a fixture's alice and bob
// (opened): bob receives the two texts queued for him, texts go both ways
// in the existing sessions (no reset notice), and bob saves the attachment
// alice sent him.
func fixtureGoesOn(t *testing.T, alice, bob *Client) {
	t.Helper()
	ctx := testCtx(t)
	got, err := bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "bob receives what was queued", got, "alice>me:queued one", "alice>me:queued two")
	if _, err := bob.Send(ctx, "alice", "back online"); err != nil {
		t.Fatal(err)
	}
	got, err = alice.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "alice sync", got, "bob>me:back online")
	if _, err := alice.Send(ctx, "bob", "welcome back"); err != nil {
		t.Fatal(err)
	}
	got, err = bob.Sync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantTexts(t, "bob sync", got, "alice>me:welcome back")

	ms, err := bob.Inbox()
	if err != nil {
		t.Fatal(err)
	}
	var withFile Message
	for _, m := range ms {
		if m.Notice {
			t.Fatalf("a notice appeared: %q (the session was reset)", m.Text)
		}
		if len(m.Attachments) > 0 {
			withFile = m
		}
	}
	saveDir := t.TempDir()
	paths, err := bob.SaveAttachments(ctx, withFile.ID, saveDir, nil)
	if err != nil {
		t.Fatalf("save the fixture's attachment: %v", err)
	}
	if b, err := os.ReadFile(paths[0]); err != nil || string(b) != string(fixtureFileContent) {
		t.Fatalf("saved attachment: %q, %v", b, err)
	}
}

// TestHomeFixtureV2: homes and a relay made by the 0.3.0 development code (store schema
// 2, testdata/home/v2) open with this code with every contact, message,
// session, prekey and pending invitation that manifest.json lists, and the
// conversation goes on.
func TestHomeFixtureV2(t *testing.T) {
	t.Parallel()
	dir := filepath.Join("..", "testdata", "home", "v2")
	b, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest map[string]fixtureHome
	if err := json.Unmarshal(b, &manifest); err != nil {
		t.Fatal(err)
	}
	_, aliceHome, bobHome, opts := fixtureHomes(t, "v2")
	open := func(home string) *Client {
		c, err := Open(home, testPass, opts)
		if err != nil {
			t.Fatalf("Open %s: %v", home, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	alice, bob := open(aliceHome), open(bobHome)
	for _, c := range []*Client{alice, bob} {
		name := c.Whoami().Name
		want, ok := manifest[name]
		if !ok || len(want.Messages) == 0 {
			t.Fatalf("manifest.json has nothing for %s", name)
		}
		got := describeHome(t, c)
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		if string(g) != string(w) {
			t.Fatalf("%s's home:\n got %s\nwant %s", name, g, w)
		}
		if err := checkSessions(c); err != nil {
			t.Fatalf("%s's sessions: %v", name, err)
		}
		checkModel(t, c)
	}
	fixtureGoesOn(t, alice, bob)
}

// checkSessions: every contact of c but a blocked one has a session.
func checkSessions(c *Client) error {
	return c.st.view(func(t *tx) error {
		cs, err := t.contacts()
		if err != nil {
			return err
		}
		for _, r := range cs {
			rec, err := t.sessionRecord(r.ID)
			if err != nil {
				return err
			}
			if !r.Person.Blocked && rec.State == nil {
				return errNoSession
			}
		}
		return nil
	})
}
