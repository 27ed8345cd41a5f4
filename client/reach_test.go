package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// titled gives every staff entry of spec a "Dr " before its name.
func titled(t *testing.T, spec []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(spec, &m); err != nil {
		t.Fatal(err)
	}
	for _, p := range m["staff"].([]any) {
		e := p.(map[string]any)
		e["name"] = "Dr " + e["name"].(string)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reachOf is c's reach record (nil: none).
func reachOf(t *testing.T, c *Client) *store.ReachRecord {
	t.Helper()
	var rec *store.ReachRecord
	if err := c.st.view(func(t *tx) (err error) { rec, err = t.Reach(); return err }); err != nil {
		t.Fatal(err)
	}
	return rec
}

// wantOneFrom checks that c stored exactly one message with text from
// the contact named from.
func wantOneFrom(t *testing.T, c *Client, text, from string) {
	t.Helper()
	ms := messagesLike(t, c, text)
	if len(ms) != 1 || ms[0].From != from {
		t.Fatalf("%s has %+v, want one message %q from %q", c.Whoami().Name, ms, text, from)
	}
}

// isContact reports whether c has a contact of identity id.
func isContact(t *testing.T, c *Client, id keys.Fingerprint) bool {
	t.Helper()
	var ok bool
	err := c.st.view(func(t *tx) error {
		p, err := t.personByIdentity(id)
		ok = p != nil
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// TestReachColleague: an administrator publishes a directory listing ann
// and ben, who are its contacts but not each other's; ann reaches ben by
// the directory's name and writes; ben reads it under ann's directory
// name and answers; neither exchanged an invitation. Cal reaches ben
// through the same colleague mailbox, which stays open.
func TestReachColleague(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	o := newDirOrg(t)
	ann := o.join(t, "Ann Archer", false)
	ben := o.join(t, "Ben Brown", false)
	cal := o.join(t, "Cal Carter", false)

	if _, err := ann.ReachColleague(ctx, "Dr Ben Brown"); !errors.Is(err, ErrNoReachSecret) {
		t.Fatalf("before any directory: %v, want ErrNoReachSecret", err)
	}
	// The directory's names are not the ones the people chose for
	// themselves: the contacts made are named as the directory says.
	if _, err := o.admin.PublishDirectory(ctx, titled(t, o.spec(t, 0, "Pharmacist", ann, ben, cal))); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, ann, ben, cal)
	rb := reachOf(t, ben)
	if rb == nil || rb.Generation != 1 || len(rb.Mailbox) != 16 {
		t.Fatalf("ben's reach record: %+v", rb)
	}
	if ra := reachOf(t, o.admin); ra == nil || !bytes.Equal(ra.Secret, rb.Secret) || len(ra.Admin) != 32 {
		t.Fatal("the administrator and ben do not hold the same reach secret")
	}

	c, err := ann.ReachColleague(ctx, "Dr Ben Brown")
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "Dr Ben Brown" {
		t.Fatalf("contact %+v", c)
	}
	if _, err := ann.Send(ctx, "Dr Ben Brown", "hello from the ward"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 3, ben, ann)
	wantOneFrom(t, ben, "hello from the ward", "Dr Ann Archer")
	if _, err := ben.Send(ctx, "Dr Ann Archer", "hello back"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 3, ann, ben)
	wantOneFrom(t, ann, "hello back", "Dr Ben Brown")
	if _, err := ann.ReachColleague(ctx, "Dr Ben Brown"); !errors.Is(err, ErrAlreadyContact) {
		t.Fatalf("again: %v, want ErrAlreadyContact", err)
	}
	// Ann writes to a route of her own now, not to the colleague
	// mailbox.
	var sendMbx []byte
	ann.st.view(func(t *tx) error {
		p, err := t.personByIdentity(ben.Whoami().Identity)
		if err != nil || p == nil {
			return err
		}
		cs, err := t.contacts()
		for _, r := range cs {
			if bytes.Equal(r.Person.ID, p.ID) {
				sendMbx = r.SendMbx
			}
		}
		return err
	})
	if len(sendMbx) != 16 || bytes.Equal(sendMbx, rb.Mailbox) {
		t.Fatal("ann still writes to ben's colleague mailbox")
	}

	// Cal, through the same mailbox: its capability was not revoked.
	if _, err := cal.ReachColleague(ctx, "Dr Ben Brown"); err != nil {
		t.Fatal(err)
	}
	if _, err := cal.Send(ctx, "Dr Ben Brown", "cal here"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 3, ben, cal)
	wantOneFrom(t, ben, "cal here", "Dr Cal Carter")
	if _, err := ben.Send(ctx, "Dr Cal Carter", "hi cal"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, cal)
	wantOneFrom(t, cal, "hi cal", "Dr Ben Brown")
	if rb2 := reachOf(t, ben); !bytes.Equal(rb2.Mailbox, rb.Mailbox) {
		t.Fatal("ben's colleague mailbox changed without a new generation")
	}
}

// TestReachColleagueRefused: an outsider cannot reach staff; a staff
// member removed from the directory cannot introduce itself (a new
// generation: the old capability revoked on the relay, an introduction
// built from the old secret dropped with nothing changed); a register an
// insider overwrote with its own device gives the writer an identity
// mismatch, and the owner's device rewrites it at its next maintenance; a
// reach secret from a non-administrator, or of a lower generation, is
// ignored.
func TestReachColleagueRefused(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	o := newDirOrg(t)
	ann := o.join(t, "Ann Archer", false)
	ben := o.join(t, "Ben Brown", false)
	cal := o.join(t, "Cal Carter", false)
	pat := o.join(t, "Pat Patient", true)

	if _, err := o.admin.PublishDirectory(ctx, o.spec(t, 0, "Pharmacist", ann, ben, cal)); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, ann, ben, cal, pat)
	if _, err := pat.ReachColleague(ctx, "Ben Brown"); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("an outsider: %v, want ErrNotEnrolled", err)
	}
	if reachOf(t, pat) != nil {
		t.Fatal("an outsider holds a reach secret")
	}
	if _, err := ann.ReachColleague(ctx, "Nobody Known"); !errors.Is(err, ErrNotInDirectory) {
		t.Fatalf("an unknown name: %v, want ErrNotInDirectory", err)
	}

	// An insider (cal), who holds S and so can derive ben's colleague
	// invitation, registers its capability on a mailbox of its own and
	// points ben's register at it: ann's Accept finds cal's keys behind
	// it.
	old := reachOf(t, cal)
	benFP := ben.Whoami().Identity
	space, write, benTok := claimOf(t, old, benFP)
	cn, err := cal.authConn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	trap, err := createMailbox(ctx, cn, func(mb protocol.MailboxID) protocol.CapabilityToken {
		return colleagueInvitation(old, benFP, mb, cal.relay).Capability()
	})
	if err != nil {
		t.Fatal(err)
	}
	calReg := &colleagueRegister{Device: cal.devID, Mailbox: trap, Relay: cal.relay}
	overwriteRegister(t, cal, old, space, write, benTok, ben.Whoami().Identity, calReg)
	if _, err := ann.ReachColleague(ctx, "Ben Brown"); !errors.Is(err, ErrIdentityMismatch) {
		t.Fatalf("an overwritten register: %v, want ErrIdentityMismatch", err)
	}
	if isContact(t, ann, ben.Whoami().Identity) || isContact(t, ann, cal.Whoami().Identity) {
		t.Fatal("a refused reach made a contact")
	}
	syncAll(t, 1, ben) // ben's maintenance rewrites its register
	st, err := ben.getColleagueRegister(ctx, old, space, write, benTok)
	if err != nil {
		t.Fatal(err)
	}
	if g, err := openColleagueRegister(old, benFP, st.Value); err != nil || g.Device != ben.devID {
		t.Fatalf("ben's register after its maintenance: %+v, %v", g, err)
	}
	if _, err := ann.ReachColleague(ctx, "Ben Brown"); err != nil {
		t.Fatalf("after ben's maintenance: %v", err)
	}
	syncAll(t, 3, ben, ann)
	if !isContact(t, ben, ann.Whoami().Identity) {
		t.Fatal("ben did not add ann")
	}

	// Cal is removed: a new generation, which cal does not receive.
	g1 := reachOf(t, ben)
	if _, err := o.admin.PublishDirectory(ctx, o.spec(t, 0, "Pharmacist", ann, ben)); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 2, ann, ben, cal)
	g2 := reachOf(t, ben)
	if g2.Generation != 2 || bytes.Equal(g2.Secret, g1.Secret) || bytes.Equal(g2.Mailbox, g1.Mailbox) || len(g2.Retired) != 0 {
		t.Fatalf("ben's reach after cal's removal: generation %d, retired %d", g2.Generation, len(g2.Retired))
	}
	if reachOf(t, cal).Generation != 1 {
		t.Fatal("a removed staff member received the new generation")
	}
	// The old capability is refused by the relay.
	var oldMbx protocol.MailboxID
	copy(oldMbx[:], g1.Mailbox)
	oldInv := colleagueInvitation(g1, ben.Whoami().Identity, oldMbx, ben.relay)
	if _, err := cal.anonRequest(ctx, ben.relay, "test", &protocol.FetchBundle{Mailbox: oldMbx, Capability: oldInv.Capability()}); err == nil {
		t.Fatal("the relay still takes the old colleague capability")
	}
	if _, err := cal.ReachColleague(ctx, "Ben Brown"); err == nil {
		t.Fatal("a removed staff member reached ben")
	}
	// An introduction built from the old secret, handed to ben on the old
	// mailbox, is dropped and changes nothing.
	env := colleagueIntroduction(t, cal, ben, oldInv)
	var envID protocol.EnvelopeID
	copy(envID[:], randomID(16))
	before := len(mustContacts(t, ben))
	if m, err := ben.receiveEnvelope(oldMbx, envID, env); err == nil || m != nil {
		t.Fatalf("an introduction on the old colleague mailbox: %v, %v", m, err)
	}
	if len(mustContacts(t, ben)) != before || isContact(t, ben, cal.Whoami().Identity) {
		t.Fatal("an old-generation introduction changed ben's contacts")
	}
	// Even on the current mailbox, an introduction from someone not in
	// ben's directory is refused.
	var curMbx protocol.MailboxID
	copy(curMbx[:], g2.Mailbox)
	env = colleagueIntroduction(t, cal, ben, colleagueInvitation(g2, ben.Whoami().Identity, curMbx, ben.relay))
	copy(envID[:], randomID(16))
	if _, err := ben.receiveEnvelope(curMbx, envID, env); !errors.Is(err, errNotColleague) {
		t.Fatalf("an introduction from a removed staff member: %v, want errNotColleague", err)
	}
	if isContact(t, ben, cal.Whoami().Identity) {
		t.Fatal("a removed staff member became ben's contact")
	}

	// A reach secret from a staff member (not an administrator), and one
	// of a lower generation from the administrator, are ignored.
	forged := &reachWire{Generation: 9, Relay: ben.relay}
	copy(forged.Org[:], g2.Org)
	copy(forged.Secret[:], randomID(32))
	copy(forged.Space[:], g2.Space)
	copy(forged.Write[:], g2.Write)
	sendReach(t, ann, "Ben Brown", forged)
	syncAll(t, 2, ben)
	if r := reachOf(t, ben); r.Generation != 2 || !bytes.Equal(r.Secret, g2.Secret) {
		t.Fatal("ben kept a reach secret from a staff member")
	}
	lower := *forged
	lower.Generation = 1
	sendReach(t, o.admin, "Ben Brown", &lower)
	syncAll(t, 2, ben)
	if r := reachOf(t, ben); r.Generation != 2 || !bytes.Equal(r.Secret, g2.Secret) {
		t.Fatal("ben kept a reach secret of a lower generation")
	}
}

func mustContacts(t *testing.T, c *Client) []Contact {
	t.Helper()
	cs, err := c.Contacts()
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// claimOf returns the claim space, write capability and who's register
// token of rec.
func claimOf(t *testing.T, rec *store.ReachRecord, who keys.Fingerprint) (protocol.ClaimSpaceID, protocol.CapabilityToken, protocol.ClaimToken) {
	t.Helper()
	var space protocol.ClaimSpaceID
	copy(space[:], rec.Space)
	write, err := protocol.CapabilityTokenFromBytes(rec.Write)
	if err != nil {
		t.Fatal(err)
	}
	return space, write, colleagueToken(rec, who)
}

// overwriteRegister writes g into who's register as by, an insider who
// holds the reach secret.
func overwriteRegister(t *testing.T, by *Client, rec *store.ReachRecord, space protocol.ClaimSpaceID, write protocol.CapabilityToken, tok protocol.ClaimToken, who keys.Fingerprint, g *colleagueRegister) {
	t.Helper()
	ctx := testCtx(t)
	st, err := by.getColleagueRegister(ctx, rec, space, write, tok)
	if err != nil {
		t.Fatal(err)
	}
	v, err := sealColleagueRegister(rec, who, g)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := by.anonRequest(ctx, rec.Relay, "test", &protocol.SetClaim{Space: space, Write: write, Token: tok, Expected: st.Version, Value: v})
	if err != nil {
		t.Fatal(err)
	}
	if cs, ok := resp.(*protocol.ClaimState); !ok || !cs.OK {
		t.Fatalf("overwrite: %+v", resp)
	}
}

// colleagueIntroduction seals, as from, an introduction to to's device
// for inv (its MAC under inv's introduction key).
func colleagueIntroduction(t *testing.T, from, to *Client, inv *Invitation) []byte {
	t.Helper()
	intro := &content{Type: contentIntroduction, Sender: from.devID, SentMS: 1, Name: from.Whoami().Name, Cert: from.dev.Certificate().Bytes()}
	copy(intro.MsgID[:], randomID(msgIDSize))
	copy(intro.ReplyMailbox[:], randomID(16))
	copy(intro.ReplyCap[:], randomID(32))
	intro.IntroMAC = introductionMAC(inv.introKey(), inv.Relay, inv.Mailbox, inv.Identity, from.idFP, from.devID, intro.ReplyMailbox, intro.ReplyCap, "")
	signed, err := intro.marshalSigned(from.dev, to.devID, inv.Mailbox)
	if err != nil {
		t.Fatal(err)
	}
	env, err := sealEnvelope(to.dev.Certificate().KEM, inv.Mailbox, signed)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// sendReach sends w as a 0x2a content from c to the contact named to.
func sendReach(t *testing.T, c *Client, to string, w *reachWire) {
	t.Helper()
	var targets []*contactRecord
	err := c.st.view(func(t *tx) error {
		cs, err := t.contacts()
		for _, r := range cs {
			if r.Person.Name == to {
				targets = append(targets, r)
			}
		}
		return err
	})
	if err != nil || len(targets) == 0 {
		t.Fatalf("no contact %q: %v", to, err)
	}
	sent, _ := c.sendToStaff(testCtx(t), [][]*contactRecord{nil, targets}, "test", func() *content {
		cw := *w
		return &content{Type: contentReach, Reach: &cw}
	})
	if sent != 1 {
		t.Fatal("could not send the reach content")
	}
}

// reachSeed is a well-formed 0x2a body for the fuzz seeds.
func reachSeed() *reachWire {
	w := &reachWire{Generation: 3, Relay: "wss://relay.example.org"}
	w.Org[0], w.Secret[0], w.Space[0], w.Write[0] = 1, 2, 3, 4
	return w
}

// FuzzReachContent: a 0x2a body, alone and in a session content, parses
// exactly (re-encoding gives the same bytes) or is refused, never
// panicking.
func FuzzReachContent(f *testing.F) {
	var dev keys.Fingerprint
	dev[0] = 7
	addSessionSeeds(f, &content{Type: contentReach, Sender: dev, SentMS: 1, Reach: reachSeed()})
	body, err := appendReach(nil, reachSeed())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(body)
	f.Fuzz(func(t *testing.T, p []byte) {
		if w, err := decodeReach(p); err == nil {
			b, err := appendReach(nil, w)
			if err != nil || !bytes.Equal(b, p) {
				t.Fatalf("a 0x2a body re-encodes to other bytes: %v", err)
			}
		}
		ct, err := parseSessionContent(p)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v is not ErrDecrypt", err)
			}
			return
		}
		b, err := ct.marshalSession()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, p[:len(b)]) || !bytes.Equal(p[len(b):], make([]byte, len(p)-len(b))) {
			t.Fatalf("re-encoding differs")
		}
		if ct.Type == contentReach && (ct.Reach == nil || ct.Reach.Generation == 0) {
			t.Fatal("a 0x2a content without a generation parsed")
		}
	})
}

// FuzzColleagueRegister: a register's plaintext decodes exactly or is
// refused; a register value opens only if sealed under the record's key.
func FuzzColleagueRegister(f *testing.F) {
	rec := &store.ReachRecord{Org: make([]byte, 16), Generation: 1, Secret: bytes.Repeat([]byte{5}, 32)}
	who := keys.Fingerprint{6}
	g := &colleagueRegister{Device: keys.Fingerprint{7}, Mailbox: protocol.MailboxID{8}, Relay: "wss://relay.example.org"}
	plain, err := g.encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain)
	sealed, err := sealColleagueRegister(rec, who, g)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Fuzz(func(t *testing.T, p []byte) {
		if g, err := decodeColleagueRegister(p); err == nil {
			b, err := g.encode()
			if err != nil || !bytes.Equal(b, p) {
				t.Fatalf("a register re-encodes to other bytes: %v", err)
			}
		}
		if g, err := openColleagueRegister(rec, who, p); err == nil {
			if _, err := g.encode(); err != nil {
				t.Fatalf("an opened register does not encode: %v", err)
			}
		}
	})
}
