package client

// Reaching a colleague (protocol/SPEC.md section 15.7 "Reaching a
// colleague"): staff write to a colleague they find in the organisation
// directory without exchanging an invitation first.
//
// With each directory publish, the publishing administrator's device sends
// the listed staff and the administrators an organisation reach secret S
// (session content 0x2a) and the claim space where colleagues say where
// they can be reached. From S every listed colleague derives, for each
// staff member, the secret of that member's colleague invitation: the
// member's device registers the capability derived from it on a mailbox of
// its own (its colleague mailbox) and writes the mailbox, encrypted under a
// key derived from S, into a register of the space named by a token
// derived from S. A colleague who wants to write reads the register,
// rebuilds the invitation and accepts it as any invitation, checking the
// keys the relay hands out against the directory's fingerprint. The
// receiving device accepts an introduction on its colleague mailbox only
// from a person listed in its own held directory. The relay sees the
// capability when it is used, as for any invitation, but never S, the
// invitation secret or the introduction key.

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/client/internal/session"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// contentReach carries an organisation reach secret: organisation ID [16]
// ‖ generation u64 ‖ secret [32] ‖ claim space ID [16] ‖ write capability
// [32] ‖ u16 len ‖ relay URL of the claim space.
const contentReach byte = 0x2a

const (
	reachFixedSize = 16 + 8 + 32 + 16 + 32
	// MaxReachSize bounds a 0x2a body.
	MaxReachSize = reachFixedSize + 2 + MaxRelayURLSize

	colleagueInvitationLabel = protocol.LabelPrefix + "colleague-invitation"
	colleagueTokenLabel      = protocol.LabelPrefix + "colleague-token"
	colleagueRegisterLabel   = protocol.LabelPrefix + "colleague-register"

	// colleagueRegisterFixed is a register plaintext without its relay:
	// device ID [32] ‖ mailbox [16] ‖ u16 len.
	colleagueRegisterFixed = keys.FingerprintSize + 16 + 2
	// colleagueRegisterOverhead is the nonce and the tag around it.
	colleagueRegisterOverhead = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
	// MaxColleagueRelaySize is the longest relay URL a colleague
	// register can name: the register holds at most
	// protocol.MaxClaimValue (512) bytes.
	MaxColleagueRelaySize = protocol.MaxClaimValue - colleagueRegisterOverhead - colleagueRegisterFixed

	// reachAnonKey names the unauthenticated connection that reads and
	// writes colleague registers, apart from the contacts' ones.
	reachAnonKey = "reach"
)

// Errors of ReachColleague.
var (
	// ErrNotEnrolled: this device has no organisation enrolment
	// (Options.Directory).
	ErrNotEnrolled = errors.New("client: this device is not enrolled in an organisation")
	// ErrNoReachSecret: this device holds no organisation directory or
	// no reach secret of its organisation yet; an administrator's next
	// directory publish sends it.
	ErrNoReachSecret = errors.New("client: no organisation reach secret yet: it comes with the administrators' next directory publish")
	// ErrNotInDirectory: the name is no staff member's of the held
	// directory (or names several, or this person), or this person is
	// not listed in it.
	ErrNotInDirectory = errors.New("client: not in the organisation directory")
	// ErrAlreadyContact: the colleague is already a contact.
	ErrAlreadyContact = errors.New("client: already a contact")
	// ErrColleagueNotPublished: none of the colleague's devices has said
	// yet where it can be reached (it does at its next connection once
	// it holds the reach secret).
	ErrColleagueNotPublished = errors.New("client: the colleague has not published a colleague mailbox yet")
)

// errNotColleague: an introduction on a colleague mailbox from someone who
// is not listed in the held directory. Dropped.
var errNotColleague = errors.New("client: introduction on a colleague mailbox from someone not in the organisation directory")

// reachWire is a 0x2a content's body.
type reachWire struct {
	Org        [16]byte
	Generation uint64
	Secret     [32]byte
	Space      protocol.ClaimSpaceID
	Write      [32]byte
	Relay      string
}

// appendReach encodes a 0x2a body.
func appendReach(b []byte, w *reachWire) ([]byte, error) {
	if w == nil || w.Generation == 0 {
		return nil, ErrDecrypt
	}
	b = append(b, w.Org[:]...)
	b = binary.BigEndian.AppendUint64(b, w.Generation)
	b = append(b, w.Secret[:]...)
	b = append(b, w.Space[:]...)
	b = append(b, w.Write[:]...)
	return appendRelay(b, w.Relay)
}

// parseReachBody reads a 0x2a body: nil if it is malformed (a generation
// of 0, an all-zero secret, a relay URL that is not canonical).
func parseReachBody(r *protocol.Reader) *reachWire {
	w := &reachWire{}
	r.Array(w.Org[:], "organisation")
	w.Generation = r.U64("generation")
	r.Array(w.Secret[:], "reach secret")
	r.Array(w.Space[:], "claim space")
	r.Array(w.Write[:], "write capability")
	raw := r.Bytes16(MaxRelayURLSize, "relay")
	if r.Err() != nil || w.Generation == 0 || w.Secret == ([32]byte{}) {
		return nil
	}
	canon, err := CheckRelayURL(string(raw))
	if err != nil || canon != string(raw) {
		return nil
	}
	w.Relay = canon
	return w
}

// decodeReach decodes a whole 0x2a body (FuzzReachContent).
func decodeReach(b []byte) (*reachWire, error) {
	r := protocol.NewReader(b)
	w := parseReachBody(r)
	if w == nil || r.Finish("reach") != nil {
		return nil, ErrDecrypt
	}
	return w, nil
}

// colleagueRegister is what a colleague register says: where a staff
// member's device receives introductions from colleagues.
type colleagueRegister struct {
	Device  keys.Fingerprint
	Mailbox protocol.MailboxID
	Relay   string
}

func (g *colleagueRegister) encode() ([]byte, error) {
	if len(g.Relay) > MaxColleagueRelaySize {
		return nil, ErrInvalidRelayURL
	}
	b := make([]byte, 0, colleagueRegisterFixed+len(g.Relay))
	b = append(b, g.Device[:]...)
	b = append(b, g.Mailbox[:]...)
	return appendRelay(b, g.Relay)
}

// decodeColleagueRegister decodes a register's plaintext exactly.
func decodeColleagueRegister(b []byte) (*colleagueRegister, error) {
	r := protocol.NewReader(b)
	g := &colleagueRegister{}
	r.Array(g.Device[:], "device")
	r.Array(g.Mailbox[:], "mailbox")
	raw := r.Bytes16(MaxColleagueRelaySize, "relay")
	if r.Finish("colleague register") != nil {
		return nil, ErrDecrypt
	}
	canon, err := CheckRelayURL(string(raw))
	if err != nil || canon != string(raw) {
		return nil, ErrDecrypt
	}
	g.Relay = canon
	return g, nil
}

// reachDerive is HKDF-SHA-256(ikm = S, salt = organisation ID, info =
// label ‖ fingerprint, 32).
func reachDerive(rec *store.ReachRecord, label string, who keys.Fingerprint) []byte {
	k, err := hkdf.Key(sha256.New, rec.Secret, rec.Org, label+string(who[:]), 32)
	if err != nil {
		panic("client: HKDF of 32 bytes failed") // unreachable: the length is fixed and small
	}
	return k
}

// colleagueInvitation is the colleague invitation of the staff member who
// on mailbox mb of relay: its secret is derived from S, so every holder
// of S can rebuild it.
func colleagueInvitation(rec *store.ReachRecord, who keys.Fingerprint, mb protocol.MailboxID, relay string) *Invitation {
	inv := &Invitation{Relay: relay, Mailbox: mb, Identity: who}
	copy(inv.Secret[:], reachDerive(rec, colleagueInvitationLabel, who))
	return inv
}

func colleagueToken(rec *store.ReachRecord, who keys.Fingerprint) protocol.ClaimToken {
	var t protocol.ClaimToken
	copy(t[:], reachDerive(rec, colleagueTokenLabel, who))
	return t
}

// registerAAD binds a register's ciphertext to its organisation and
// generation.
func registerAAD(rec *store.ReachRecord) []byte {
	return binary.BigEndian.AppendUint64(bytes.Clone(rec.Org), rec.Generation)
}

// sealColleagueRegister encrypts g for who's register.
func sealColleagueRegister(rec *store.ReachRecord, who keys.Fingerprint, g *colleagueRegister) ([]byte, error) {
	plain, err := g.encode()
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(reachDerive(rec, colleagueRegisterLabel, who))
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plain)+chacha20poly1305.Overhead)
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plain, registerAAD(rec)), nil
}

// openColleagueRegister decrypts and decodes who's register value.
func openColleagueRegister(rec *store.ReachRecord, who keys.Fingerprint, v []byte) (*colleagueRegister, error) {
	if len(v) < colleagueRegisterOverhead+colleagueRegisterFixed || len(v) > protocol.MaxClaimValue {
		return nil, ErrDecrypt
	}
	aead, err := chacha20poly1305.NewX(reachDerive(rec, colleagueRegisterLabel, who))
	if err != nil {
		return nil, err
	}
	n := chacha20poly1305.NonceSizeX
	plain, err := aead.Open(nil, v[:n], v[n:], registerAAD(rec))
	if err != nil {
		return nil, ErrDecrypt
	}
	return decodeColleagueRegister(plain)
}

// ---- the administrator's side ----

// removesStaff reports whether d lists fewer of held's staff than held.
func removesStaff(held, d *directory.Directory) bool {
	if held == nil {
		return false
	}
	for _, s := range held.Staff {
		if d.Person(s.Identity) == nil {
			return true
		}
	}
	return false
}

// publishReach sends the organisation reach secret with a published
// directory d (held: the directory it succeeds, nil: none) to every
// listed staff member and administrator this client reaches and to this
// person's other devices. A new generation (a new secret and a new claim
// space on this client's relay) is made when this device holds none of
// the organisation's or d removes a staff member of held; otherwise the
// held one goes again. It returns how many people it reached and could
// not.
func (c *Client) publishReach(ctx context.Context, held, d *directory.Directory) (sent, unreached int, err error) {
	var rec *store.ReachRecord
	if err := c.st.view(func(t *tx) (err error) { rec, err = t.Reach(); return err }); err != nil {
		return 0, 0, err
	}
	if rec == nil || !bytes.Equal(rec.Org, d.Org[:]) || removesStaff(held, d) {
		if rec, err = c.newReachGeneration(ctx, d); err != nil {
			return 0, 0, err
		}
	}
	w := &reachWire{Generation: rec.Generation, Relay: rec.Relay}
	copy(w.Org[:], rec.Org)
	copy(w.Secret[:], rec.Secret)
	copy(w.Space[:], rec.Space)
	copy(w.Write[:], rec.Write)
	ids := slices.Clone(d.Admins)
	for _, s := range d.Staff {
		if !slices.Contains(ids, s.Identity) {
			ids = append(ids, s.Identity)
		}
	}
	targets, unreached, err := c.peopleTargets(ids)
	if err != nil {
		return 0, unreached, err
	}
	sent, more := c.sendToStaff(ctx, targets, "the organisation reach secret", func() *content {
		cw := *w
		return &content{Type: contentReach, Reach: &cw}
	})
	clear(w.Secret[:])
	if err := c.maintainReach(ctx, nil); err != nil {
		c.log.Warn("could not publish this device's colleague mailbox yet", "err", err)
	}
	return sent, unreached + more, nil
}

// newReachGeneration makes and keeps a new reach generation for d: a
// fresh secret and a claim space on this client's relay.
func (c *Client) newReachGeneration(ctx context.Context, d *directory.Directory) (*store.ReachRecord, error) {
	admin, write := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
	cn, err := c.authConn(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := cn.request(ctx, &protocol.CreateClaimSpace{Admin: admin.Hash(), Write: write.Hash()})
	if err != nil {
		return nil, fmt.Errorf("client: create the colleague registers' claim space: %w", err)
	}
	sc, ok := resp.(*protocol.ClaimSpaceCreated)
	if !ok {
		return nil, unexpected(resp)
	}
	n := &store.ReachRecord{
		Org: bytes.Clone(d.Org[:]), Generation: d.Version, Secret: make([]byte, 32), Space: bytes.Clone(sc.Space[:]),
		Write: write.SecretBytes(), Relay: c.relay, Admin: admin.SecretBytes(),
	}
	rand.Read(n.Secret)
	err = c.st.update(func(t *tx) error {
		cur, err := t.Reach()
		if err != nil {
			return err
		}
		c.retire(cur, n)
		return t.PutReach(n)
	})
	if err != nil {
		return nil, err
	}
	c.log.Info("made a new organisation reach generation", "generation", n.Generation)
	return n, nil
}

// retire carries into n what is left to clean up of cur (nil: none): its
// colleague mailbox (with its capability, to revoke) and its claim space
// if this device made it.
func (c *Client) retire(cur, n *store.ReachRecord) {
	if cur == nil {
		return
	}
	n.Retired, n.OldSpaces = slices.Clone(cur.Retired), slices.Clone(cur.OldSpaces)
	if len(cur.Mailbox) == 16 {
		var mb protocol.MailboxID
		copy(mb[:], cur.Mailbox)
		// Its capability is derived from the old secret, which goes now.
		capability := colleagueInvitation(cur, c.idFP, mb, c.relay).Capability()
		n.Retired = append(n.Retired, append(bytes.Clone(cur.Mailbox), capability.SecretBytes()...))
	}
	if len(cur.Admin) == 32 && !bytes.Equal(cur.Space, n.Space) {
		n.OldSpaces = append(n.OldSpaces, append(bytes.Clone(cur.Space), cur.Admin...))
	}
}

// ---- receiving ----

// receiveReach keeps an organisation reach secret, in the receiving
// transaction: only on a device enrolled in that organisation that holds
// a directory of it, only from an administrator of the held directory (or
// from this person's other device, this person being one), only if this
// person is listed in it (as staff or an administrator), and only of a
// generation above the one held. Anything else is logged, without the
// secret, and changes nothing.
func (c *Client) receiveReach(t *tx, from *contactRecord, ct *content, res *received) error {
	w := ct.Reach
	if c.dirEnrol == nil || w == nil {
		return nil
	}
	if w.Org != c.dirEnrol.Organisation {
		c.log.Info("ignored an organisation reach secret of another organisation")
		return nil
	}
	d, _, err := c.heldDirectory(t)
	if err != nil {
		return err
	}
	if d == nil {
		c.log.Info("ignored an organisation reach secret: no directory held yet")
		return nil
	}
	if !slices.Contains(d.Admins, fpOf(from.Person.Identity)) {
		c.log.Info("ignored an organisation reach secret: the sender is not an administrator")
		return nil
	}
	if !slices.Contains(d.Admins, c.idFP) && d.Person(c.idFP) == nil {
		c.log.Info("ignored an organisation reach secret: this person is not listed")
		return nil
	}
	cur, err := t.Reach()
	if err != nil {
		return err
	}
	if cur != nil && bytes.Equal(cur.Org, w.Org[:]) && w.Generation <= cur.Generation {
		if w.Generation < cur.Generation {
			c.log.Info("ignored an organisation reach secret of an older generation", "generation", w.Generation, "held", cur.Generation)
		}
		return nil
	}
	n := &store.ReachRecord{
		Org: bytes.Clone(w.Org[:]), Generation: w.Generation, Secret: bytes.Clone(w.Secret[:]),
		Space: bytes.Clone(w.Space[:]), Write: bytes.Clone(w.Write[:]), Relay: w.Relay,
	}
	c.retire(cur, n)
	if err := t.PutReach(n); err != nil {
		return err
	}
	res.reach = true
	c.log.Info("organisation reach secret kept", "generation", n.Generation)
	return nil
}

// ---- this device's colleague mailbox ----

// maintainReach cleans up what earlier generations left (their colleague
// mailboxes' capabilities revoked and the mailboxes deleted; the claim
// spaces this device made, deleted) and, on a device listed as staff in
// the held directory, makes sure the person's colleague register names a
// device of the person: it rewrites the register (compare-and-set on the
// version it read, with this device's colleague mailbox, made here once
// per generation) only when the register is empty, does not open, names
// a device not in the person's device list, or names this device with
// another mailbox. cn may be nil (the authenticated connection).
func (c *Client) maintainReach(ctx context.Context, cn *conn) error {
	var (
		rec  *store.ReachRecord
		d    *directory.Directory
		mine map[keys.Fingerprint]bool
	)
	err := c.st.view(func(t *tx) error {
		var err error
		if rec, err = t.Reach(); err != nil || rec == nil {
			return err
		}
		if d, _, err = c.heldDirectory(t); err != nil {
			return err
		}
		self, err := t.self()
		if err != nil {
			return err
		}
		ds, err := t.DevicesOf(self.ID)
		if err != nil {
			return err
		}
		mine = map[keys.Fingerprint]bool{}
		for _, dv := range ds {
			if !dv.Revoked {
				mine[fpOf(dv.DeviceID)] = true
			}
		}
		return nil
	})
	if err != nil || rec == nil {
		return err
	}
	if err := c.cleanReach(ctx, cn, rec); err != nil {
		return err
	}
	if c.dirEnrol == nil || d == nil || !bytes.Equal(rec.Org, c.dirEnrol.Organisation[:]) || d.Person(c.idFP) == nil {
		return nil // not listed: nothing to publish
	}
	if len(c.relay) > MaxColleagueRelaySize {
		c.log.Warn("this device's relay URL is too long for a colleague register; colleagues cannot reach it without an invitation")
		return nil
	}
	tok := colleagueToken(rec, c.idFP)
	var space protocol.ClaimSpaceID
	copy(space[:], rec.Space)
	write, err := protocol.CapabilityTokenFromBytes(rec.Write)
	if err != nil {
		return errStoreCorrupt
	}
	st, err := c.getColleagueRegister(ctx, rec, space, write, tok)
	if protocol.IsCode(err, protocol.CodeUnknownClaimSpace) || protocol.IsCode(err, protocol.CodeClaimCapability) {
		// The generation was replaced and its space deleted (this person
		// was removed from the directory, or the next generation is on
		// its way): nothing to publish in it.
		c.log.Debug("the colleague registers' space of this generation is gone")
		return nil
	}
	if err != nil {
		return err
	}
	if st.Version > 0 {
		g, err := openColleagueRegister(rec, c.idFP, st.Value)
		switch {
		case err != nil:
			c.log.Info("this person's colleague register does not open; rewriting it")
		case g.Device == c.devID && (!bytes.Equal(g.Mailbox[:], rec.Mailbox) || g.Relay != c.relay):
			c.log.Info("this person's colleague register names an old mailbox of this device; rewriting it")
		case mine[g.Device]:
			return nil // a device of this person publishes
		default:
			c.log.Warn("this person's colleague register names a device that is not this person's; rewriting it")
		}
	}
	mb, err := c.colleagueMailbox(ctx, cn, rec)
	if err != nil {
		return err
	}
	value, err := sealColleagueRegister(rec, c.idFP, &colleagueRegister{Device: c.devID, Mailbox: mb, Relay: c.relay})
	if err != nil {
		return err
	}
	resp, err := c.anonRequest(ctx, rec.Relay, reachAnonKey, &protocol.SetClaim{Space: space, Write: write, Token: tok, Expected: st.Version, Value: value})
	if err != nil {
		return fmt.Errorf("client: write the colleague register: %w", err)
	}
	ns, ok := resp.(*protocol.ClaimState)
	if !ok {
		return unexpected(resp)
	}
	if !ns.OK {
		// Another device wrote it meanwhile: the next maintenance looks
		// at what it wrote.
		c.log.Info("the colleague register changed while this device wrote it")
		return nil
	}
	c.log.Info("published this device's colleague mailbox", "mailbox", mb.Short(), "generation", rec.Generation)
	return nil
}

func (c *Client) getColleagueRegister(ctx context.Context, rec *store.ReachRecord, space protocol.ClaimSpaceID, write protocol.CapabilityToken, tok protocol.ClaimToken) (*protocol.ClaimState, error) {
	resp, err := c.anonRequest(ctx, rec.Relay, reachAnonKey, &protocol.GetClaim{Space: space, Write: write, Token: tok})
	if err != nil {
		return nil, fmt.Errorf("client: read a colleague register: %w", err)
	}
	st, ok := resp.(*protocol.ClaimState)
	if !ok {
		return nil, unexpected(resp)
	}
	return st, nil
}

// colleagueMailbox returns this device's colleague mailbox of rec's
// generation, making it (from a spare) if there is none: the capability
// derived from the colleague invitation's secret is registered on it and
// the spare's own is revoked.
func (c *Client) colleagueMailbox(ctx context.Context, cn *conn, rec *store.ReachRecord) (protocol.MailboxID, error) {
	var mb protocol.MailboxID
	if len(rec.Mailbox) == 16 {
		copy(mb[:], rec.Mailbox)
		return mb, nil
	}
	cn, err := c.onConn(ctx, cn)
	if err != nil {
		return mb, err
	}
	mb, spareCap, fromSpare, err := c.takeSpare(ctx, cn)
	if err != nil {
		return mb, err
	}
	inv := colleagueInvitation(rec, c.idFP, mb, c.relay)
	if err := cn.ok(ctx, &protocol.AddCapability{Mailbox: mb, Hash: inv.Capability().Hash()}); err != nil {
		c.returnSpare(mb, spareCap, fromSpare)
		return mb, fmt.Errorf("client: add the colleague capability: %w", err)
	}
	if err := cn.ok(ctx, &protocol.RevokeCapability{Mailbox: mb, Hash: spareCap.Hash()}); err != nil {
		c.log.Debug("could not revoke a spare's own capability", "err", err)
	}
	err = c.st.update(func(t *tx) error {
		cur, err := t.Reach()
		if err != nil {
			return err
		}
		if cur == nil || cur.Generation != rec.Generation || subtle.ConstantTimeCompare(cur.Secret, rec.Secret) != 1 {
			return errors.New("client: the organisation reach generation changed meanwhile")
		}
		if len(cur.Mailbox) == 16 {
			// Made meanwhile by another maintenance of this device: that
			// one stands, this one is revoked and deleted.
			cur.Retired = append(cur.Retired, append(bytes.Clone(mb[:]), inv.Capability().SecretBytes()...))
			copy(mb[:], cur.Mailbox)
			return t.PutReach(cur)
		}
		cur.Mailbox = bytes.Clone(mb[:])
		list, err := t.mailboxes()
		if err != nil {
			return err
		}
		for i := range list {
			if bytes.Equal(list[i].ID, mb[:]) {
				list[i].Purpose = "colleague"
			}
		}
		if err := t.putMailboxes(list); err != nil {
			return err
		}
		return t.PutReach(cur)
	})
	if err != nil {
		return mb, err
	}
	if !fromSpare {
		if err := c.subscribe(ctx, cn, mb); err != nil && !isRefusal(err) {
			c.log.Debug("subscribe to the colleague mailbox", "err", err)
		}
	}
	rec.Mailbox = bytes.Clone(mb[:])
	return mb, nil
}

// cleanReach revokes the capabilities of retired colleague mailboxes and
// deletes them, and deletes the old claim spaces this device made.
func (c *Client) cleanReach(ctx context.Context, cn *conn, rec *store.ReachRecord) error {
	if len(rec.Retired) == 0 && len(rec.OldSpaces) == 0 {
		return nil
	}
	if len(rec.Retired) > 0 {
		var err error
		if cn, err = c.onConn(ctx, cn); err != nil {
			return err
		}
	}
	var doneMbx, doneSpaces [][]byte
	for _, r := range rec.Retired {
		var mb protocol.MailboxID
		copy(mb[:], r[:16])
		tok, err := protocol.CapabilityTokenFromBytes(r[16:])
		if err != nil {
			return errStoreCorrupt
		}
		// Revoked first, so that a colleague who still holds the old
		// secret is refused as blocked even if the delete fails.
		if err := cn.ok(ctx, &protocol.RevokeCapability{Mailbox: mb, Hash: tok.Hash()}); err != nil && !protocol.IsCode(err, protocol.CodeUnknownMailbox) {
			return fmt.Errorf("client: revoke an old colleague capability: %w", err)
		}
		if err := cn.ok(ctx, &protocol.DeleteMailbox{Mailbox: mb}); err != nil && !protocol.IsCode(err, protocol.CodeUnknownMailbox) {
			return fmt.Errorf("client: delete an old colleague mailbox: %w", err)
		}
		doneMbx = append(doneMbx, r)
		c.log.Info("retired an old colleague mailbox", "mailbox", mb.Short())
	}
	for _, s := range rec.OldSpaces {
		var space protocol.ClaimSpaceID
		copy(space[:], s[:16])
		admin, err := protocol.CapabilityTokenFromBytes(s[16:])
		if err != nil {
			return errStoreCorrupt
		}
		_, err = c.anonRequest(ctx, c.relay, reachAnonKey, &protocol.UpdateClaimSpace{Space: space, Admin: admin, Op: protocol.ClaimSpaceDelete})
		if err != nil && !protocol.IsCode(err, protocol.CodeUnknownClaimSpace) {
			return fmt.Errorf("client: delete an old colleague claim space: %w", err)
		}
		doneSpaces = append(doneSpaces, s)
	}
	return c.st.update(func(t *tx) error {
		cur, err := t.Reach()
		if err != nil || cur == nil {
			return err
		}
		cur.Retired = slices.DeleteFunc(cur.Retired, func(r []byte) bool {
			return slices.ContainsFunc(doneMbx, func(x []byte) bool { return bytes.Equal(x, r) })
		})
		cur.OldSpaces = slices.DeleteFunc(cur.OldSpaces, func(r []byte) bool {
			return slices.ContainsFunc(doneSpaces, func(x []byte) bool { return bytes.Equal(x, r) })
		})
		list, err := t.mailboxes()
		if err != nil {
			return err
		}
		list = slices.DeleteFunc(list, func(m mailboxRecord) bool {
			return slices.ContainsFunc(doneMbx, func(x []byte) bool { return bytes.Equal(x[:16], m.ID) })
		})
		if err := t.putMailboxes(list); err != nil {
			return err
		}
		return t.PutReach(cur)
	})
}

// ---- writing to a colleague ----

// ReachColleague makes the staff member of the held organisation
// directory named name a contact, without an invitation: it reads where
// their device receives colleagues (their colleague register), rebuilds
// their colleague invitation from the organisation reach secret and
// accepts it (Accept: the keys the relay hands out must carry the
// directory entry's identity, else ErrIdentityMismatch). The contact is
// named with the directory's name. Refusals: ErrNotEnrolled,
// ErrNoReachSecret, ErrNotInDirectory, ErrAlreadyContact,
// ErrColleagueNotPublished.
func (c *Client) ReachColleague(ctx context.Context, name string) (Contact, error) {
	if c.dirEnrol == nil {
		return Contact{}, ErrNotEnrolled
	}
	var (
		rec    *store.ReachRecord
		target keys.Fingerprint
	)
	err := c.st.view(func(t *tx) error {
		d, _, err := c.heldDirectory(t)
		if err != nil {
			return err
		}
		if rec, err = t.Reach(); err != nil {
			return err
		}
		if d == nil || rec == nil || !bytes.Equal(rec.Org, d.Org[:]) {
			return ErrNoReachSecret
		}
		if d.Person(c.idFP) == nil && !slices.Contains(d.Admins, c.idFP) {
			return fmt.Errorf("%w: you are not listed in it", ErrNotInDirectory)
		}
		n := 0
		for _, s := range d.Staff {
			if s.Name == name {
				target, n = s.Identity, n+1
			}
		}
		switch {
		case n == 0:
			return fmt.Errorf("%w: no staff member named %q", ErrNotInDirectory, name)
		case n > 1:
			return fmt.Errorf("%w: several staff members are named %q", ErrNotInDirectory, name)
		case target == c.idFP:
			return fmt.Errorf("%w: %q is you", ErrNotInDirectory, name)
		}
		p, err := t.personByIdentity(target)
		if err != nil {
			return err
		}
		if p != nil && !p.ViaGroup {
			return fmt.Errorf("%w: %q is your contact %q", ErrAlreadyContact, name, p.Name)
		}
		return nil
	})
	if err != nil {
		return Contact{}, err
	}
	var space protocol.ClaimSpaceID
	copy(space[:], rec.Space)
	write, err := protocol.CapabilityTokenFromBytes(rec.Write)
	if err != nil {
		return Contact{}, errStoreCorrupt
	}
	st, err := c.getColleagueRegister(ctx, rec, space, write, colleagueToken(rec, target))
	if err != nil {
		return Contact{}, err
	}
	if st.Version == 0 {
		return Contact{}, ErrColleagueNotPublished
	}
	g, err := openColleagueRegister(rec, target, st.Value)
	if err != nil {
		return Contact{}, fmt.Errorf("%w: their register does not open", ErrColleagueNotPublished)
	}
	inv := colleagueInvitation(rec, target, g.Mailbox, g.Relay)
	ct, err := c.AcceptWith(ctx, inv.Code(), name, nil)
	if err != nil {
		return Contact{}, err
	}
	c.log.Info("reached a colleague through the directory", "contact", target.Short())
	return ct, nil
}

// ---- receiving a colleague ----

// introduceColleague handles an introduction on this device's colleague
// mailbox (handled false: mb is no colleague mailbox of the held
// generation). It is accepted only if its MAC verifies under the colleague
// invitation and the introducer is staff or an administrator of the held
// directory, not blocked and not yet a contact; the contact is named with
// the directory's name. The colleague capability is not revoked: it serves
// every colleague until the generation changes. The new contact has no
// route of ours yet: the route it is given (rotateRoute) is a fresh
// mailbox, and until it has it, its session messages on the colleague
// mailbox are matched to it by their session (colleagueSender).
func (c *Client) introduceColleague(t *tx, cs []*contactRecord, mb protocol.MailboxID, ct *content, cert *keys.DeviceCertificate, now time.Time, res *received) (handled bool, err error) {
	rec, err := t.Reach()
	if err != nil {
		return true, err
	}
	if rec == nil || len(rec.Mailbox) != 16 || !bytes.Equal(rec.Mailbox, mb[:]) {
		return false, nil
	}
	d, _, err := c.heldDirectory(t)
	if err != nil {
		return true, err
	}
	if d == nil || !bytes.Equal(rec.Org, d.Org[:]) {
		return true, errNotColleague
	}
	inv := colleagueInvitation(rec, c.idFP, mb, c.relay)
	introducer := cert.Identity.Fingerprint()
	replyRelay := c.relay
	if ct.Type == contentIntroRelay {
		if !c.peerRelayAllowed(ct.ReplyRelay) {
			return true, ErrDecrypt
		}
		replyRelay = ct.ReplyRelay
	}
	want := introductionMAC(inv.introKey(), c.relay, mb, c.idFP, introducer, ct.Sender, ct.ReplyMailbox, ct.ReplyCap, ct.ReplyRelay)
	if !hmac.Equal(want[:], ct.IntroMAC[:]) {
		return true, errBadIntroduction
	}
	name := ct.Name
	if s := d.Person(introducer); s != nil {
		name = s.Name
	} else if !slices.Contains(d.Admins, introducer) {
		c.log.Info("refused an introduction on the colleague mailbox from someone not in the directory", "mailbox", mb.Short())
		return true, errNotColleague
	}
	if introducer == c.idFP {
		return true, errNotColleague
	}
	p, err := t.personByIdentity(introducer)
	if err != nil {
		return true, err
	}
	if p != nil {
		if p.Blocked {
			return true, ErrUnknownSender
		}
		return true, ErrContactExists
	}
	for _, r := range cs {
		if bytes.Equal(r.DeviceID, ct.Sender[:]) {
			return true, ErrContactExists
		}
	}
	if checkName(name) != nil {
		return true, errNotColleague
	}
	nc := newContactRecord(uniqueName(cs, name), fp(introducer), ct.Cert, ct.Sender[:], replyRelay, now)
	nc.SendMbx, nc.SendCap = ct.ReplyMailbox[:], ct.ReplyCap[:]
	nc.HelloMbx = bytes.Clone(mb[:])
	nc.NeedRoute = true
	if err := t.newContact(nc, now); err != nil {
		return true, err
	}
	if err := nameCollision(t, cs, nc, name, now, res); err != nil {
		return true, err
	}
	res.route, res.share = nc.ID, nc.Person.ID
	res.events = append(res.events, Event{Kind: EventContact, Contact: nc.Person.Name, Change: ContactAdded})
	c.log.Info("contact added from the colleague mailbox", "mailbox", mb.Short())
	return true, nil
}

// colleagueSender finds the contact who wrote session message env on
// this device's colleague mailbox mb (nil: none, or mb is no colleague
// mailbox). A colleague writes there between its introduction and the
// route it is given; among the contacts introduced on mb, the one whose
// session answered the message's Init, whose Init it is (the initiator's
// certificate names its device), or whose session opens it.
func (c *Client) colleagueSender(t *tx, mb protocol.MailboxID, env []byte) (*contactRecord, error) {
	rec, err := t.Reach()
	if err != nil || rec == nil || !bytes.Equal(rec.Mailbox, mb[:]) || len(env) < protocol.EnvelopeHeaderSize {
		return nil, err
	}
	ds, err := t.Devices()
	if err != nil {
		return nil, err
	}
	var cands []*store.Device
	for _, d := range ds {
		if !d.Revoked && bytes.Equal(d.HelloMbx, mb[:]) {
			cands = append(cands, d)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	msg := env[protocol.EnvelopeHeaderSize:]
	in, err := session.MessageInit(msg)
	if err != nil {
		return nil, nil
	}
	for _, d := range cands {
		sr, err := t.sessionRecord(d.ID)
		if err != nil {
			return nil, err
		}
		if in != nil && sr.answered(in.ID()) {
			return t.contactOf(d)
		}
		if in == nil {
			// A trial on a copy of the session: the caller opens it
			// again with the stored one.
			cur, err := c.loadSession(sr.State)
			if err != nil {
				return nil, err
			}
			if cur != nil {
				if _, err := cur.Open(msg); err == nil {
					return t.contactOf(d)
				}
			}
		}
	}
	if in == nil {
		return nil, nil
	}
	spk, err := t.prekey(in.SignedPrekeyID())
	if err != nil {
		return nil, nil
	}
	var opk *identity.Prekey
	if id, ok := in.OneTimePrekeyID(); ok {
		if opk, err = t.prekey(id); err != nil {
			return nil, nil
		}
	}
	s, err := session.Respond(c.dev, spk, opk, in, c.sessionOptions())
	if err != nil {
		return nil, nil
	}
	dev := s.PeerCertificate().DeviceID()
	for _, d := range cands {
		if fpOf(d.DeviceID) == dev {
			return t.contactOf(d)
		}
	}
	return nil, nil
}
