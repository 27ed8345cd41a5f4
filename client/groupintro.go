package client

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Group members who are not contacts (protocol/SPEC.md section 15.10).
// A member device that cannot write to another member device (they are
// not contacts, and no session joins them) introduces itself through
// that device's group mailbox, whose send capability the signed state
// carries: a group introduction (envelope kind 0x05) sealed under a key
// derived from the group's current header key, so that only the current
// membership can make or open one, and signed by the introducer's device.
// It carries the introducer's certificate, its person's signed device
// list and a route (a mailbox of the introducer's and its send
// capability). The receiver accepts it only from a device its own state
// lists for a member (not removed), in the person's device list where it
// holds one, and only once per device; it answers with its own
// introduction unless the one it got was an answer. Once each side has
// the other's route, the pairwise session starts as for any device (its
// prekey bundle fetched on the route) and the sender-key distributions
// flow as they do between contacts.
//
// A person known this way is not a contact (store.Person.ViaGroup): not
// listed by Contacts, not found by name for a direct message, and what it
// sends outside the group's contents is dropped; it shows in the group's
// member list. MakeContact turns it into an ordinary contact.

const (
	// groupIntroKeyLabel derives the key that seals introductions from
	// the group's header key (HKDF-SHA256, salt the group ID).
	groupIntroKeyLabel = protocol.LabelPrefix + "group-intro-key"
	// groupIntroContext is the signature context of the introducer's
	// device signature.
	groupIntroContext = protocol.LabelPrefix + "group-intro"

	groupIntroVersion byte = 0x01
	// groupIntroAnswer (flags bit 0): the introducer already holds the
	// receiver's route (this introduction answers one of the
	// receiver's): the receiver sends none back.
	groupIntroAnswer byte = 1 << 0

	groupIntroNonceSize = chacha20poly1305.NonceSizeX
	// groupIntroFixed is the size of a body without a device list.
	groupIntroFixed = 1 + group.IDSize + keys.FingerprintSize + 1 + 16 + 32 + keys.DeviceCertificateSize + 2 + keys.SignatureSize
	// maxGroupIntroSize is the largest body (with the largest list).
	maxGroupIntroSize = groupIntroFixed + keys.MaxDeviceListSize
	// groupIntroOverhead is what an envelope adds to its padded body.
	groupIntroOverhead = protocol.EnvelopeHeaderSize + groupIntroNonceSize + padHeaderSize + chacha20poly1305.Overhead
)

// Drop reasons of group introductions (never shown; logged).
var (
	// errGroupIntroNotMember: the introducer's device is not listed for a
	// member in the receiver's state, or not in its person's device list.
	errGroupIntroNotMember = errors.New("client: group introduction from a device that is not a member's")
	// errGroupIntroRepeated: the introducer's device already has a route
	// here (a replay, or a repeated introduction): nothing changes.
	errGroupIntroRepeated = errors.New("client: group introduction from a device that has a route already")
)

// groupIntro is the body of a group introduction.
type groupIntro struct {
	Group      group.ID
	To         keys.Fingerprint // the receiver's device ID
	Answer     bool
	Mailbox    protocol.MailboxID // the introducer's route: where the receiver writes to it
	Capability [32]byte
	Cert       []byte // the introducer's device certificate
	List       []byte // its person's signed device list, or empty
	Signature  []byte
}

// appendUnsigned encodes every field before the signature.
func (g *groupIntro) appendUnsigned(b []byte) ([]byte, error) {
	if len(g.Cert) != keys.DeviceCertificateSize || (len(g.List) != 0 && (len(g.List) < keys.MinDeviceListSize || len(g.List) > keys.MaxDeviceListSize)) {
		return nil, fmt.Errorf("client: group introduction: bad certificate or device list size")
	}
	b = append(b, groupIntroVersion)
	b = append(b, g.Group[:]...)
	b = append(b, g.To[:]...)
	var flags byte
	if g.Answer {
		flags |= groupIntroAnswer
	}
	b = append(b, flags)
	b = append(b, g.Mailbox[:]...)
	b = append(b, g.Capability[:]...)
	b = append(b, g.Cert...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(g.List)))
	return append(b, g.List...), nil
}

// groupIntroSigned is what the introducer signs: the receiving mailbox
// and the unsigned body, so that an introduction is bound to one device's
// mailbox of one group.
func groupIntroSigned(mb protocol.MailboxID, unsigned []byte) []byte {
	return append(append(make([]byte, 0, len(mb)+len(unsigned)), mb[:]...), unsigned...)
}

// marshal encodes g signed by s for the group mailbox mb.
func (g *groupIntro) marshal(s contentSigner, mb protocol.MailboxID) ([]byte, error) {
	unsigned, err := g.appendUnsigned(make([]byte, 0, groupIntroFixed+len(g.List)))
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(groupIntroContext, groupIntroSigned(mb, unsigned))
	if err != nil {
		return nil, err
	}
	if len(sig) != keys.SignatureSize {
		return nil, fmt.Errorf("client: group introduction: signature of %d bytes", len(sig))
	}
	g.Signature = sig
	return append(unsigned, sig...), nil
}

// encode re-encodes a parsed introduction (its signature as parsed).
func (g *groupIntro) encode() ([]byte, error) {
	b, err := g.appendUnsigned(nil)
	if err != nil {
		return nil, err
	}
	return append(b, g.Signature...), nil
}

// parseGroupIntro decodes a body: exact sizes, no trailing bytes, the
// list's length capped before it is read. It returns the body and its
// unsigned prefix; every failure is ErrDecrypt. The certificate, list and
// signature are checked by the receiver.
func parseGroupIntro(b []byte) (*groupIntro, []byte, error) {
	if len(b) < groupIntroFixed || len(b) > maxGroupIntroSize {
		return nil, nil, ErrDecrypt
	}
	r := protocol.NewReader(b)
	g := &groupIntro{}
	if r.U8("version") != groupIntroVersion {
		return nil, nil, ErrDecrypt
	}
	r.Array(g.Group[:], "group")
	r.Array(g.To[:], "receiver")
	flags := r.U8("flags")
	if flags&^groupIntroAnswer != 0 {
		return nil, nil, ErrDecrypt
	}
	g.Answer = flags&groupIntroAnswer != 0
	r.Array(g.Mailbox[:], "mailbox")
	r.Array(g.Capability[:], "capability")
	g.Cert = bytes.Clone(r.Take(keys.DeviceCertificateSize, "certificate"))
	n := int(r.U16("device list length"))
	if r.Err() != nil || (n != 0 && (n < keys.MinDeviceListSize || n > keys.MaxDeviceListSize)) {
		return nil, nil, ErrDecrypt
	}
	g.List = bytes.Clone(r.Take(n, "device list"))
	unsigned := b[:len(b)-r.Len()]
	g.Signature = bytes.Clone(r.Take(keys.SignatureSize, "signature"))
	if r.Finish("group introduction") != nil {
		return nil, nil, ErrDecrypt
	}
	if len(g.List) == 0 {
		g.List = nil
	}
	return g, unsigned, nil
}

// groupIntroKey derives the key that seals introductions of group gid
// from its header key.
func groupIntroKey(headerKey []byte, gid group.ID) ([]byte, error) {
	return hkdf.Key(sha256.New, headerKey, gid[:], groupIntroKeyLabel, chacha20poly1305.KeySize)
}

// groupIntroAD is the associated data of an introduction to mailbox mb.
func groupIntroAD(mb protocol.MailboxID) []byte {
	return append([]byte{protocol.Version, byte(protocol.KindGroupIntro)}, mb[:]...)
}

// sealGroupIntro seals body for group mailbox mb under the key derived
// from headerKey: `0x01 ‖ 0x05 ‖ nonce [24] ‖ XChaCha20-Poly1305(u32 len ‖
// body ‖ zeros)`, padded to a bucket.
func sealGroupIntro(headerKey []byte, gid group.ID, mb protocol.MailboxID, body []byte) ([]byte, error) {
	n, err := protocol.BucketFor(groupIntroOverhead + len(body))
	if err != nil {
		return nil, ErrTooLong
	}
	k, err := groupIntroKey(headerKey, gid)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, err
	}
	plain := make([]byte, n-protocol.EnvelopeHeaderSize-groupIntroNonceSize-chacha20poly1305.Overhead)
	binary.BigEndian.PutUint32(plain, uint32(len(body)))
	copy(plain[padHeaderSize:], body)
	env := make([]byte, protocol.EnvelopeHeaderSize+groupIntroNonceSize, n)
	env[0], env[1] = protocol.Version, byte(protocol.KindGroupIntro)
	rand.Read(env[protocol.EnvelopeHeaderSize:])
	nonce := env[protocol.EnvelopeHeaderSize:]
	return aead.Seal(env, nonce, plain, groupIntroAD(mb)), nil
}

// openGroupIntro opens an introduction delivered to group mailbox mb with
// the key derived from headerKey and returns its body. Every failure is
// ErrDecrypt.
func openGroupIntro(headerKey []byte, gid group.ID, mb protocol.MailboxID, env []byte) ([]byte, error) {
	if protocol.CheckEnvelope(env) != nil || env[1] != byte(protocol.KindGroupIntro) ||
		len(env) < groupIntroOverhead+groupIntroFixed {
		return nil, ErrDecrypt
	}
	k, err := groupIntroKey(headerKey, gid)
	if err != nil {
		return nil, ErrDecrypt
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		return nil, ErrDecrypt
	}
	nonce := env[protocol.EnvelopeHeaderSize : protocol.EnvelopeHeaderSize+groupIntroNonceSize]
	plain, err := aead.Open(nil, nonce, env[protocol.EnvelopeHeaderSize+groupIntroNonceSize:], groupIntroAD(mb))
	if err != nil {
		return nil, ErrDecrypt
	}
	return unpadGroupIntro(plain)
}

// unpadGroupIntro reads `u32 len ‖ body ‖ zeros`: the length within the
// plaintext and the padding all zero.
func unpadGroupIntro(plain []byte) ([]byte, error) {
	if len(plain) < padHeaderSize {
		return nil, ErrDecrypt
	}
	n := binary.BigEndian.Uint32(plain)
	if uint64(n) > uint64(len(plain)-padHeaderSize) || n > maxGroupIntroSize {
		return nil, ErrDecrypt
	}
	body, pad := plain[padHeaderSize:padHeaderSize+int(n)], plain[padHeaderSize+int(n):]
	for _, z := range pad {
		if z != 0 {
			return nil, ErrDecrypt
		}
	}
	return body, nil
}

// canWriteTo reports whether device record d is a route this device
// writes to.
func canWriteTo(d *store.Device) bool {
	return d != nil && !d.Revoked && !d.Refused && len(d.SendMbx) == 16 && len(d.SendCap) == 32
}

// deviceOf returns the record of device dev among person p's, or nil.
func (t *tx) deviceOf(p *store.Person, dev keys.Fingerprint) (*store.Device, error) {
	ds, err := t.DevicesOf(p.ID)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if bytes.Equal(d.DeviceID, dev[:]) {
			return d, nil
		}
	}
	return nil, nil
}

// errSkipIntro: sendGroupIntro has nothing to do.
var errSkipIntro = errors.New("client: no group introduction needed")

// introPlan is one introduction to send: to device dev (target in the
// state), of member, answering or not, with the route given before (nil:
// one is made).
type introPlan struct {
	dev    keys.Fingerprint
	member group.Member
	target group.Device
	answer bool
	route  []byte // mailbox then capability
}

// sendGroupIntros introduces this device to each device in devs that
// group gid lists joined and this device cannot write to (answer: to
// each, as an answer to its introduction). Failures are logged.
func (c *Client) sendGroupIntros(ctx context.Context, cn *conn, gid group.ID, devs []keys.Fingerprint, answer bool) {
	if len(devs) == 0 {
		return
	}
	s, plans, err := c.planGroupIntros(gid, devs, answer)
	if err != nil {
		c.log.Warn("could not read a group to introduce this device to its members", "err", err)
		return
	}
	for i := range plans {
		if err := c.sendPlannedIntro(ctx, cn, s, &plans[i]); err != nil {
			c.log.Warn("could not introduce this device to a group member's device", "device", plans[i].dev.Short(), "err", err)
		}
	}
}

// sendGroupIntro introduces this device to device dev of group gid
// (errSkipIntro: there is nothing to do).
func (c *Client) sendGroupIntro(ctx context.Context, gid group.ID, dev keys.Fingerprint, answer bool) error {
	s, plans, err := c.planGroupIntros(gid, []keys.Fingerprint{dev}, answer)
	if err != nil {
		return err
	}
	if len(plans) == 0 {
		return errSkipIntro
	}
	return c.sendPlannedIntro(ctx, nil, s, &plans[0])
}

// planGroupIntros reads, in one view of the store, the group's state and
// which of devs need an introduction: listed joined for another person,
// this person still a member, the person not blocked and the device not
// revoked, and this device without a route to it (or, answering, any).
func (c *Client) planGroupIntros(gid group.ID, devs []keys.Fingerprint, answer bool) (*group.State, []introPlan, error) {
	var (
		s     *group.State
		plans []introPlan
	)
	err := c.st.view(func(t *tx) error {
		plans = nil
		rec, err := t.Group(t.GroupConversationID(gid[:]))
		if err != nil || rec == nil || rec.Removed {
			return err
		}
		if s, err = groupOf(rec); err != nil {
			return err
		}
		if s.Member(c.idFP) == nil {
			return nil
		}
		for _, dev := range devs {
			m, sd := s.Device(dev)
			if m == nil || !sd.Joined || m.Identity == c.idFP {
				continue
			}
			pl := introPlan{dev: dev, member: *m, target: *sd, answer: answer}
			p, err := t.personByIdentity(m.Identity)
			if err != nil {
				return err
			}
			if p != nil {
				if p.Blocked {
					continue
				}
				d, err := t.deviceOf(p, dev)
				if err != nil {
					return err
				}
				if d != nil {
					if d.Revoked || (canWriteTo(d) && len(d.RecvMbx) == 16 && !answer) {
						continue
					}
					// Holding its route already (its introduction came
					// first), this one answers it.
					pl.answer = answer || canWriteTo(d)
					if len(d.RecvMbx) == 16 && len(d.RecvCap) == 32 {
						pl.route = append(bytes.Clone(d.RecvMbx), d.RecvCap...)
					}
				}
			}
			plans = append(plans, pl)
		}
		return nil
	})
	return s, plans, err
}

// sendPlannedIntro sends introduction pl of group state s: the route
// made first if there is none, then the envelope, on a connection of
// its own per group.
func (c *Client) sendPlannedIntro(ctx context.Context, cn *conn, s *group.State, pl *introPlan) error {
	route := pl.route
	if route == nil {
		var err error
		if route, err = c.groupIntroRoute(ctx, cn, s, &pl.member, pl.dev); err != nil {
			return err
		}
	}
	var list []byte
	if err := c.st.view(func(t *tx) error {
		self, err := t.self()
		if err == nil {
			list = self.DeviceList
		}
		return err
	}); err != nil {
		return err
	}
	g := &groupIntro{Group: s.Group, To: pl.dev, Answer: pl.answer, Cert: c.dev.Certificate().Bytes(), List: list}
	copy(g.Mailbox[:], route[:16])
	copy(g.Capability[:], route[16:])
	body, err := g.marshal(c.dev, pl.target.Mailbox)
	if err != nil {
		return err
	}
	env, err := sealGroupIntro(s.HeaderKey[:], s.Group, pl.target.Mailbox, body)
	if err != nil {
		return err
	}
	if h := c.envelopeHook.Load(); h != nil {
		(*h)(true, env)
	}
	tok, err := protocol.CapabilityTokenFromBytes(pl.target.Capability[:])
	if err != nil {
		return errStoreCorrupt
	}
	resp, err := c.anonRequest(ctx, s.Relay, groupIntroConnKey(s.Group), &protocol.Send{Mailbox: pl.target.Mailbox, Capability: tok, Envelope: env})
	if err != nil {
		return fmt.Errorf("client: send a group introduction: %w", err)
	}
	if _, ok := resp.(*protocol.Sent); !ok {
		return unexpected(resp)
	}
	c.log.Info("introduced this device to a group member's device", "device", pl.dev.Short())
	return nil
}

// groupIntroRoute gives device dev of member m (of state s) a route to
// this device: a spare mailbox, recorded as dev's receiving route (its
// person made, known through the group, if new). It returns the route as
// recorded (another one if one was recorded meanwhile).
func (c *Client) groupIntroRoute(ctx context.Context, cn *conn, s *group.State, m *group.Member, dev keys.Fingerprint) ([]byte, error) {
	mb, tok, fromSpare, err := c.takeSpare(ctx, cn)
	if err != nil {
		return nil, err
	}
	taken := false
	var route []byte
	now := c.now().UTC()
	err = c.st.update(func(t *tx) error {
		taken, route = false, nil
		p, err := t.personByIdentity(m.Identity)
		if err != nil {
			return err
		}
		if p == nil {
			cs, err := t.contacts()
			if err != nil {
				return err
			}
			p = &store.Person{ID: store.NewID(), Identity: bytes.Clone(m.Identity[:]), Name: uniqueName(cs, m.Name), ViaGroup: true, Added: now}
			if err := t.PutPerson(p); err != nil {
				return err
			}
		}
		d, err := t.deviceOf(p, dev)
		if err != nil {
			return err
		}
		if d == nil {
			d = &store.Device{ID: store.NewID(), Person: p.ID, DeviceID: bytes.Clone(dev[:]), Relay: s.Relay, Added: now}
		}
		if len(d.RecvMbx) == 16 && len(d.RecvCap) == 32 {
			route = append(bytes.Clone(d.RecvMbx), d.RecvCap...)
			return nil
		}
		d.RecvMbx, d.RecvCap, taken = bytes.Clone(mb[:]), tok.SecretBytes(), true
		route = append(bytes.Clone(mb[:]), tok.SecretBytes()...)
		return t.PutDevice(d)
	})
	if err != nil || !taken {
		c.returnSpare(mb, tok, fromSpare)
		return route, err
	}
	if !fromSpare {
		if cn, err := c.onConn(ctx, cn); err == nil {
			if err := c.subscribe(ctx, cn, mb); err != nil && !isRefusal(err) {
				c.log.Debug("subscribe to a group introduction's route", "err", err)
			}
		}
	}
	return route, nil
}

// receiveGroupIntro handles a group introduction delivered to this
// device's group mailbox mb, inside the receive transaction. It returns
// the reason to drop it (nothing changed), or records the introducer's
// route and leaves, for after the commit, the answer and this device's
// distribution.
func (c *Client) receiveGroupIntro(t *tx, mb protocol.MailboxID, env []byte, now time.Time, res *received) (drop, err error) {
	rec, err := t.GroupByMailbox(mb[:])
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.Removed {
		return ErrUnknownSender, nil
	}
	s, err := groupOf(rec)
	if err != nil {
		return nil, err
	}
	// The current header key only: a member removed since holds an
	// older one.
	body, err := openGroupIntro(s.HeaderKey[:], s.Group, mb, env)
	if err != nil {
		return ErrDecrypt, nil
	}
	g, unsigned, err := parseGroupIntro(body)
	if err != nil || g.Group != s.Group || g.To != c.devID {
		return ErrDecrypt, nil
	}
	cert, err := keys.ParseDeviceCertificate(g.Cert)
	if err != nil {
		return ErrBadSignature, nil
	}
	id, dev := cert.Identity.Fingerprint(), cert.DeviceID()
	m, _ := s.Device(dev)
	if m == nil || m.Identity != id || id == c.idFP {
		return errGroupIntroNotMember, nil
	}
	if cert.Signing.Verify(groupIntroContext, groupIntroSigned(mb, unsigned), g.Signature) != nil {
		return ErrBadSignature, nil
	}
	var list *keys.DeviceList
	if g.List != nil {
		if list, err = keys.ParseDeviceList(g.List); err != nil || list.Identity.Fingerprint() != id || !list.Contains(dev) {
			return errGroupIntroNotMember, nil
		}
	}
	p, err := t.personByIdentity(id)
	if err != nil {
		return nil, err
	}
	var d *store.Device
	if p != nil {
		if p.Blocked {
			return ErrUnknownSender, nil
		}
		// The device must be in the person's device list this device
		// holds, or in a newer one the introduction carries.
		cur, err := people.Current(p)
		if err != nil {
			return nil, err
		}
		newer := list != nil && list.Version > p.DeviceListVersion
		if cur != nil && !cur.Contains(dev) && !newer {
			return errGroupIntroNotMember, nil
		}
		if d, err = t.deviceOf(p, dev); err != nil {
			return nil, err
		}
		if d != nil && (d.Revoked || d.Refused) {
			// Revoked, or it refused our introduction: no route to it is
			// taken (and none could stop a repeated one being accepted).
			return errGroupIntroNotMember, nil
		}
		if canWriteTo(d) {
			return errGroupIntroRepeated, nil
		}
		if newer {
			if p.ViaGroup {
				p.DeviceList, p.DeviceListVersion = bytes.Clone(g.List), list.Version
				if err := t.PutPerson(p); err != nil {
					return nil, err
				}
			} else if err := c.newDeviceList(t, p, g.List, list, nil, now, res); err != nil {
				return nil, err
			}
		}
	} else {
		cs, err := t.contacts()
		if err != nil {
			return nil, err
		}
		p = &store.Person{ID: store.NewID(), Identity: bytes.Clone(id[:]), Name: uniqueName(cs, m.Name), ViaGroup: true, Added: now}
		if list != nil {
			p.DeviceList, p.DeviceListVersion = bytes.Clone(g.List), list.Version
		}
		if err := t.PutPerson(p); err != nil {
			return nil, err
		}
	}
	if d == nil {
		d = &store.Device{ID: store.NewID(), Person: p.ID, DeviceID: bytes.Clone(dev[:]), Relay: s.Relay, Added: now}
	}
	d.Cert = cert.Bytes()
	d.SendMbx, d.SendCap = bytes.Clone(g.Mailbox[:]), bytes.Clone(g.Capability[:])
	d.Relay, d.ViaInvitation, d.Borrowed = s.Relay, false, false
	if err := t.PutDevice(d); err != nil {
		return nil, err
	}
	task := groupTask{gid: s.Group}
	if !g.Answer {
		task.intro, task.introAnswer = []keys.Fingerprint{dev}, true
	}
	own, err := c.ownKey(rec)
	if err != nil {
		return nil, err
	}
	if own != nil {
		task.dist, task.to = own.Distribution(), []keys.Fingerprint{dev}
	}
	res.groups = append(res.groups, task)
	c.log.Info("a group member's device introduced itself", "device", dev.Short())
	return nil, nil
}

// introCandidates are the devices next lists joined, of other persons,
// that this device introduces itself to if it cannot write to them:
// every one for a first state or a new header key (an introduction under
// the old key may not have opened), else those that joined since held.
func (c *Client) introCandidates(held, next *group.State) []keys.Fingerprint {
	var out []keys.Fingerprint
	for _, m := range next.Members {
		if m.Identity == c.idFP {
			continue
		}
		for _, d := range m.Devices {
			if !d.Joined {
				continue
			}
			if held != nil && held.HeaderKey == next.HeaderKey {
				if _, hd := held.Device(d.ID); hd != nil && hd.Joined {
					continue
				}
			}
			out = append(out, d.ID)
		}
	}
	return out
}

// groupIntroConnKey names the connection introductions of a group go on.
func groupIntroConnKey(gid group.ID) string { return "group-intro:" + hex.EncodeToString(gid[:]) }

// fromGroupPerson reports whether a session content of type typ is read
// from a person known only through a group: the group's own contents and
// what keeps the session and its routes working. Messages, receipts,
// recalls, timers and anything meant for contacts or siblings are not.
func fromGroupPerson(typ byte) bool {
	switch typ {
	case contentGroupState, contentGroupKey, contentGroupJoin,
		contentReset, contentHello, contentRoute, contentRouteRelay, contentRouteAck,
		contentDeviceList, contentHeads:
		return true
	}
	return false
}

// ErrNotKnownThroughGroup: MakeContact names a member of the group who
// is not known only through it (a contact already, or this person), or
// whose device has not introduced itself yet.
var ErrNotKnownThroughGroup = errors.New("client: not a member known only through the group")

// MakeContact makes member (the name the group's member list shows), a
// person known only through group grp, a contact named name: listed by
// Contacts, written to directly, with a direct conversation. The routes
// and sessions the group introduction made are kept; the person's
// identity is the one the group's signed state names (compare safety
// numbers to verify it, as for any contact). The new contact is shared
// with this person's other devices. Each side decides for itself: what
// this person sends them directly is read there once they have made
// this person a contact too (until then their client drops it).
func (c *Client) MakeContact(ctx context.Context, grp, member, name string) (Contact, error) {
	if err := checkName(name); err != nil {
		return Contact{}, err
	}
	var (
		out Contact
		pid []byte
	)
	now := c.now().UTC()
	err := c.st.update(func(t *tx) error {
		rec, err := t.lookupGroup(grp)
		if err != nil {
			return err
		}
		s, err := groupOf(rec)
		if err != nil {
			return err
		}
		var p *store.Person
		for i := range s.Members {
			m := &s.Members[i]
			if m.Identity == c.idFP {
				continue
			}
			one := *m
			one.Role = group.RoleMember
			shown, err := c.memberName(t, s, &one)
			if err != nil {
				return err
			}
			if shown != member {
				continue
			}
			if p, err = t.personByIdentity(m.Identity); err != nil {
				return err
			}
			break
		}
		if p == nil || !p.ViaGroup {
			return fmt.Errorf("%w (%s)", ErrNotKnownThroughGroup, member)
		}
		cs, err := t.contacts()
		if err != nil {
			return err
		}
		for _, r := range cs {
			if r.Person.Name == name && !r.Person.ViaGroup {
				return fmt.Errorf("%w: a contact is named %q", ErrContactExists, name)
			}
		}
		p.ViaGroup, p.Name = false, name
		if err := t.PutPerson(p); err != nil {
			return err
		}
		if _, err := t.DirectConversation(p.ID, now); err != nil {
			return err
		}
		ds, err := t.DevicesOf(p.ID)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if !d.Revoked {
				out = c.contact(&contactRecord{Device: *d, Person: p})
				break
			}
		}
		pid = p.ID
		return nil
	})
	if err != nil {
		return Contact{}, err
	}
	c.contactChanged(name, ContactAdded)
	c.shareContact(ctx, pid)
	c.log.Info("made a person known through a group a contact")
	return out, nil
}

// maintainGroups does, at a maintenance (after a Sync), the group work a
// closed connection may have cut short: this device's join where its
// group mailbox was never made, and its introductions to joined member
// devices it neither writes to nor has ever given a route; the states
// of teams' staff lists held until their log shows them (stafflog.go);
// and, as a group's device publisher, its members' devices linked or
// revoked since (groupdevices.go).
// Failures are logged; the next maintenance tries again.
func (c *Client) maintainGroups(ctx context.Context, cn *conn) {
	c.checkStaffLists(ctx, cn, nil, true)
	type todo struct {
		gid   group.ID
		join  bool
		intro []keys.Fingerprint
	}
	var work []todo
	err := c.st.view(func(t *tx) error {
		recs, err := t.Groups()
		if err != nil || len(recs) == 0 {
			return err
		}
		ps, err := t.Persons()
		if err != nil {
			return err
		}
		ds, err := t.Devices()
		if err != nil {
			return err
		}
		known := map[keys.Fingerprint]bool{} // devices of known persons written to or given a route
		persons := map[string]bool{}
		for _, p := range ps {
			persons[string(p.ID)] = true
		}
		for _, d := range ds {
			if persons[string(d.Person)] && (d.Revoked || canWriteTo(d) || len(d.RecvMbx) == 16) {
				known[fpOf(d.DeviceID)] = true
			}
		}
		for _, rec := range recs {
			if rec.Removed {
				continue
			}
			s, err := groupOf(rec)
			if err != nil {
				return err
			}
			_, me := s.Device(c.devID)
			if me == nil {
				continue
			}
			// Not joined: the mailbox was never made, or the join that
			// named it was lost (a Client closed before it was sent, or
			// the admin never received it); sending it again is a no-op
			// for an admin that admitted it (admitDevice).
			w := todo{gid: s.Group, join: !me.Joined}
			for _, m := range s.Members {
				if m.Identity == c.idFP {
					continue
				}
				for _, d := range m.Devices {
					if d.Joined && !known[d.ID] {
						w.intro = append(w.intro, d.ID)
					}
				}
			}
			if w.join || len(w.intro) > 0 {
				work = append(work, w)
			}
		}
		return nil
	})
	if err != nil {
		c.log.Warn("group maintenance", "err", err)
		return
	}
	for _, w := range work {
		if w.join {
			if err := c.joinGroup(ctx, cn, w.gid); err != nil {
				c.log.Warn("could not join a group yet", "err", err)
			}
		}
		c.sendGroupIntros(ctx, cn, w.gid, w.intro, false)
	}
	// Members' devices linked or revoked since the held states
	// (groupdevices.go).
	c.maintainGroupDevices(ctx)
}
