package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/postern/postern/client/internal/link"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// Linking a new device of this person (protocol/SPEC.md section 13, and
// section 9 "Devices" for what follows). The existing device makes a link
// mailbox and shows the code; the new device enrols with keys of its own,
// sends the sealed request there and waits on a reply mailbox of its
// own; the existing device certifies the new device's keys, publishes
// the person's device list with it added, and answers with the identity,
// the certificate, the list and the contacts snapshot, in link envelopes
// (kind 0x03) of up to one envelope's worth each. The new device then
// introduces itself to every device it learned of (hellos, fanout.go).

var (
	// ErrLinkDeclined: the user refused the device that answered the
	// link code. Nothing was sent to it.
	ErrLinkDeclined = errors.New("client: the device was not linked: its request was declined")
	// ErrLinkExpired: the link code expired before the exchange ended.
	ErrLinkExpired = errors.New("client: the link code expired before the other device answered; make a new one")
	// ErrLinkCode: a link code that does not parse, or one that has
	// expired (the error says which).
	ErrLinkCode = errors.New("client: invalid link code")
)

// link envelopes (kind 0x03): version || kind || total u32 || offset u32
// || u32 len || part || zero padding to the bucket. The message itself
// is sealed by the link package; the parts only carry it.
const (
	linkPartHeader = protocol.EnvelopeHeaderSize + 12
	linkPartMax    = protocol.MaxEnvelopeSize - linkPartHeader
)

// linkEnvelopes cuts a sealed link message into link envelopes.
func linkEnvelopes(msg []byte) ([][]byte, error) {
	var out [][]byte
	for off := 0; off < len(msg) || off == 0; {
		n := min(len(msg)-off, linkPartMax)
		size, err := protocol.BucketFor(linkPartHeader + n)
		if err != nil {
			return nil, err
		}
		env := make([]byte, size)
		env[0], env[1] = protocol.Version, byte(protocol.KindLink)
		binary.BigEndian.PutUint32(env[2:], uint32(len(msg)))
		binary.BigEndian.PutUint32(env[6:], uint32(off))
		binary.BigEndian.PutUint32(env[10:], uint32(n))
		copy(env[linkPartHeader:], msg[off:off+n])
		out = append(out, env)
		off += n
		if n == 0 {
			break
		}
	}
	return out, nil
}

// linkAssembler puts link envelopes back together, in order.
type linkAssembler struct {
	max   int // the largest message accepted
	total int
	buf   []byte
}

// add takes the next envelope and reports whether the message is whole.
func (a *linkAssembler) add(env []byte) (bool, error) {
	bad := fmt.Errorf("%w: a link envelope out of order or malformed", link.ErrInvalidMessage)
	if protocol.CheckEnvelope(env) != nil || env[1] != byte(protocol.KindLink) || len(env) < linkPartHeader {
		return false, bad
	}
	total := int(binary.BigEndian.Uint32(env[2:]))
	off := int(binary.BigEndian.Uint32(env[6:]))
	n := int(binary.BigEndian.Uint32(env[10:]))
	if total > a.max || n > len(env)-linkPartHeader || off != len(a.buf) || off+n > total || (a.buf != nil && total != a.total) {
		return false, bad
	}
	if !bytes.Equal(env[linkPartHeader+n:], make([]byte, len(env)-linkPartHeader-n)) {
		return false, bad
	}
	if a.buf == nil {
		a.total, a.buf = total, make([]byte, 0, total)
	}
	a.buf = append(a.buf, env[linkPartHeader:linkPartHeader+n]...)
	return len(a.buf) == a.total, nil
}

// LinkOptions tunes LinkDevice.
type LinkOptions struct {
	// Show is called with the link code (one line beginning
	// "postern-link:") as soon as it is ready; WriteLinkQR draws it.
	Show func(code string)
	// Confirm is called with the name the new device gave itself when its
	// request arrives; false refuses it (ErrLinkDeclined). Nil accepts.
	Confirm func(deviceName string) bool
	// History sends the message history too: encrypted, uploaded to the
	// relay as one blob, and downloaded by the new device.
	History bool
}

// WriteLinkQR draws a link code as a QR code for a terminal (Unicode half
// blocks, or ASCII).
func WriteLinkQR(w io.Writer, code string, ascii bool) error {
	return link.WriteQR(w, code, link.QROptions{ASCII: ascii})
}

// LinkCodeExpiry returns when a link code (LinkOptions.Show) expires,
// for a front-end that shows it; a code that does not parse or has
// expired is ErrLinkCode.
func LinkCodeExpiry(code string) (time.Time, error) {
	lc, err := link.Parse(code, time.Now())
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %w", ErrLinkCode, err)
	}
	return lc.Expires, nil
}

// LinkDevice links a new device to this person: it shows a one-time link
// code (LinkOptions.Show), waits until the code expires (10 minutes) for
// the new device's request, and answers it. A person with keys.MaxDevices
// devices gets ErrTooManyDevices before any code is made.
func (c *Client) LinkDevice(ctx context.Context, o *LinkOptions) (DeviceInfo, error) {
	var opt LinkOptions
	if o != nil {
		opt = *o
	}
	cn, err := c.authConn(ctx)
	if err != nil {
		return DeviceInfo{}, err
	}
	cur, err := c.fetchOwnList(ctx, cn)
	if err != nil {
		return DeviceInfo{}, err
	}
	if len(cur.Devices) >= keys.MaxDevices {
		return DeviceInfo{}, ErrTooManyDevices
	}
	// A connection of its own for the link mailbox: the receive loop
	// never sees link envelopes.
	lc, err := dialRelay(ctx, c.relay, newPushQueue(), c.tlsConf)
	if err != nil {
		return DeviceInfo{}, err
	}
	defer lc.close()
	if err := lc.authenticate(ctx, certSigner{c.dev}, false, ""); err != nil {
		return DeviceInfo{}, fmt.Errorf("client: authenticate: %w", err)
	}
	var code *link.Code
	mb, err := createMailbox(ctx, lc, func(mb protocol.MailboxID) protocol.CapabilityToken {
		code, err = link.NewCode(c.relay, mb, c.now())
		if err != nil {
			return protocol.NewCapabilityToken() // refused below
		}
		return code.Capability()
	})
	if err != nil {
		return DeviceInfo{}, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := lc.ok(dctx, &protocol.DeleteMailbox{Mailbox: mb}); err != nil {
			c.log.Warn("could not delete the link mailbox", "err", err)
		}
	}()
	if code == nil {
		return DeviceInfo{}, fmt.Errorf("client: make a link code: %w", err)
	}
	if opt.Show != nil {
		opt.Show(code.Text())
	}
	wctx, cancel := context.WithDeadline(ctx, code.Expires)
	defer cancel()
	sealed, err := receiveLinkMessage(wctx, lc, mb, link.MaxRequestSize)
	if err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			return DeviceInfo{}, ErrLinkExpired
		}
		return DeviceInfo{}, err
	}
	req, err := code.OpenRequest(sealed)
	if err != nil {
		return DeviceInfo{}, fmt.Errorf("client: the link request: %w", err)
	}
	if opt.Confirm != nil && !opt.Confirm(req.Name) {
		return DeviceInfo{}, ErrLinkDeclined
	}
	return c.answerLink(wctx, cn, lc, code, req, opt.History)
}

// answerLink certifies the requesting device, publishes the list with it,
// records it as a sibling and sends the response.
func (c *Client) answerLink(ctx context.Context, cn, lc *conn, code *link.Code, req *link.Request, history bool) (DeviceInfo, error) {
	now := c.now().UTC()
	cert, err := c.id.Certify(req.Signing, req.KEM, now)
	if err != nil {
		return DeviceInfo{}, err
	}
	newID := cert.DeviceID()
	cur, err := c.fetchOwnList(ctx, cn)
	if err != nil {
		return DeviceInfo{}, err
	}
	if len(cur.Devices) >= keys.MaxDevices {
		return DeviceInfo{}, ErrTooManyDevices
	}
	if cur.Contains(newID) {
		return DeviceInfo{}, fmt.Errorf("client: that device is in this person's list already")
	}
	signed, err := c.id.SignDeviceList(listWith(cur, newID, c.relay, now))
	if err != nil {
		return DeviceInfo{}, err
	}
	// The route the new device writes to this one: a spare mailbox.
	mb, tok, fromSpare, err := c.takeSpare(ctx, cn)
	if err != nil {
		return DeviceInfo{}, err
	}
	if _, err := cn.request(ctx, &protocol.PublishDeviceList{List: signed}); err != nil {
		c.returnSpare(mb, tok, fromSpare)
		return DeviceInfo{}, fmt.Errorf("client: publish device list: %w", err)
	}
	nl, err := c.fetchOwnList(ctx, cn)
	if err != nil {
		return DeviceInfo{}, err
	}
	var snap []byte
	var res received
	err = c.st.update(func(t *tx) error {
		res = received{}
		self, err := t.self()
		if err != nil {
			return err
		}
		d := &store.Device{
			ID: store.NewID(), Person: self.ID, DeviceID: newID[:], Cert: cert.Bytes(),
			Relay: c.relay, OwnName: req.Name, Added: now,
			SendMbx: bytes.Clone(req.ReplyMailbox[:]), SendCap: req.ReplyCapability.SecretBytes(),
			RecvMbx: bytes.Clone(mb[:]), RecvCap: tok.SecretBytes(),
		}
		if err := t.PutDevice(d); err != nil {
			return err
		}
		// The alert, here as on the person's other devices.
		names, err := t.allOwnNames(self)
		if err != nil {
			return err
		}
		if err := c.ownListChanged(t, self, cur, nl, names, &res); err != nil {
			return err
		}
		// Kept as an alert on the other devices only: here the person
		// just linked it (devicealerts.go).
		if err := t.ackDeviceAlerts(newID); err != nil {
			return err
		}
		snap, err = t.exportContacts(c.devID, c.relay, &snapshotRoute{mailbox: mb, cap: tok})
		return err
	})
	if err != nil {
		return DeviceInfo{}, err
	}
	c.emit(res.events...)
	c.queue(res.msgs)
	var hist *link.HistoryRef
	if history {
		// After the snapshot: what arrives from now on reaches the new
		// device itself.
		if hist, err = c.uploadHistory(ctx); err != nil {
			return DeviceInfo{}, fmt.Errorf("%w: %w", ErrHistory, err)
		}
	}
	sealed, err := code.SealResponse(req, &link.Response{
		Identity: c.id, Certificate: cert, PersonName: c.name, DeviceList: signed, Contacts: snap, History: hist,
	})
	if err != nil {
		return DeviceInfo{}, err
	}
	envs, err := linkEnvelopes(sealed)
	if err != nil {
		return DeviceInfo{}, err
	}
	for _, env := range envs {
		if _, err := lc.request(ctx, &protocol.Send{Mailbox: req.ReplyMailbox, Capability: req.ReplyCapability, Envelope: env}); err != nil {
			return DeviceInfo{}, fmt.Errorf("client: send the link response: %w", err)
		}
	}
	c.log.Info("linked a new device", "device", newID.Short())
	c.announceList(ctx, signed, false, newID)
	c.queueInboxSnapshot(newID, history)
	// The groups that list this person's devices list the new one too
	// (groupdevices.go).
	c.maintainGroupDevices(ctx)
	return DeviceInfo{ID: newID, Name: req.Name, Linked: now.Truncate(time.Second), Relay: c.relay}, nil
}

// receiveLinkMessage subscribes lc to mb and reads link envelopes until a
// whole message of at most max bytes has arrived, acknowledging each.
func receiveLinkMessage(ctx context.Context, lc *conn, mb protocol.MailboxID, max int) ([]byte, error) {
	if err := lc.ok(ctx, &protocol.Subscribe{Mailbox: mb}); err != nil {
		return nil, fmt.Errorf("client: subscribe to the link mailbox: %w", err)
	}
	a := &linkAssembler{max: max}
	for {
		f, ok := lc.push.get(ctx.Done())
		if !ok {
			return nil, ctx.Err()
		}
		if f == nil {
			return nil, errConnClosed
		}
		d, ok := f.(*protocol.Deliver)
		if !ok || d.Mailbox != mb {
			continue
		}
		if err := lc.ok(ctx, &protocol.Ack{Mailbox: mb, IDs: []protocol.EnvelopeID{d.ID}}); err != nil {
			return nil, err
		}
		done, err := a.add(d.Envelope)
		if err != nil {
			return nil, err
		}
		if done {
			return a.buf, nil
		}
	}
}

// LinkWith makes home the home of a new device of the person whose other
// device shows code (postern-link:...), named deviceName (OFFICE-PC): it
// enrols on the code's relay, sends the request, waits for the response
// until the code expires, and sets the home up with the person's identity,
// its certificate and the contacts, then introduces itself to every device
// it learned of. The returned Client is connected, as after Dial. When the
// other device sent the message history (LinkOptions.History), it is
// downloaded and imported; if that fails, LinkWith returns the Client
// (linked, usable) with an error matching ErrHistory, and each Sync tries
// again (at most maxHistoryAttempts times in all, then a notice says the
// history did not come).
func LinkWith(ctx context.Context, home string, passphrase []byte, code, deviceName string, opts *Options) (*Client, error) {
	o := opts.defaults()
	if err := checkName(deviceName); err != nil {
		return nil, err
	}
	if len(passphrase) == 0 {
		return nil, ErrEmptyPassphrase
	}
	if exists(filepath.Join(home, KeyFileName)) || exists(filepath.Join(home, StoreFileName)) {
		return nil, ErrExists
	}
	lcode, err := link.Parse(code, o.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLinkCode, err)
	}
	dk, err := identity.NewDeviceKeys()
	if err != nil {
		return nil, err
	}
	lc, err := dialRelay(ctx, lcode.Relay, newPushQueue(), o.TLSConfig)
	if err != nil {
		return nil, err
	}
	defer lc.close()
	if err := lc.authenticate(ctx, dk, true, o.Invite); err != nil {
		return nil, fmt.Errorf("client: enrol: %w", err)
	}
	tok := protocol.NewCapabilityToken()
	reply, err := createMailbox(ctx, lc, fixedCap(tok))
	if err != nil {
		return nil, err
	}
	pending, sealed, err := lcode.SealRequest(&link.Request{
		Signing: dk.Signing(), KEM: dk.KEM(), Name: deviceName, ReplyMailbox: reply, ReplyCapability: tok,
	})
	if err != nil {
		return nil, err
	}
	envs, err := linkEnvelopes(sealed)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithDeadline(ctx, lcode.Expires)
	defer cancel()
	for _, env := range envs {
		if _, err := lc.request(wctx, &protocol.Send{Mailbox: lcode.Mailbox, Capability: lcode.Capability(), Envelope: env}); err != nil {
			if protocol.IsCode(err, protocol.CodeUnknownMailbox) || protocol.IsCode(err, protocol.CodeUnknownCapability) {
				return nil, fmt.Errorf("%w: the other device no longer waits for it; make a new one", ErrLinkCode)
			}
			return nil, fmt.Errorf("client: send the link request: %w", err)
		}
	}
	rsealed, err := receiveLinkMessage(wctx, lc, reply, link.MaxResponseSize)
	if err != nil {
		if wctx.Err() != nil && ctx.Err() == nil {
			return nil, ErrLinkExpired
		}
		return nil, err
	}
	resp, err := pending.OpenResponse(rsealed)
	if err != nil {
		return nil, fmt.Errorf("client: the link response: %w", err)
	}
	dev, err := dk.Certified(resp.Certificate)
	if err != nil {
		return nil, err
	}
	idFP := resp.Identity.Public().Fingerprint()
	l, err := keys.ParseDeviceList(resp.DeviceList)
	if err != nil || l.Identity.Fingerprint() != idFP || !l.Contains(dev.Certificate().DeviceID()) {
		return nil, fmt.Errorf("%w: the device list in the response does not hold this device", link.ErrInvalidMessage)
	}
	snap, err := parseSnapshot(resp.Contacts, idFP)
	if err != nil {
		return nil, err
	}
	c, err := createHome(ctx, home, passphrase, &homeSpec{
		relay: lcode.Relay, personName: resp.PersonName, deviceName: deviceName,
		id: resp.Identity, dev: dev, join: true, enrolled: true,
		mailboxes: []mailboxRecord{{ID: reply[:], Purpose: "contact", Created: o.Now().UTC()}},
		imports: func(t *tx, c *Client) error {
			if err := t.importContacts(snap, c.devID, c.now().UTC()); err != nil {
				return err
			}
			if resp.History != nil {
				if err := t.putPendingHistory(lcode.Relay, resp.History); err != nil {
					return err
				}
			}
			return t.linkedBy(snap, reply, tok)
		},
	}, opts)
	if err != nil {
		return nil, err
	}
	c.sendHellos(ctx)
	if resp.History != nil {
		n, err := c.resumeHistory(ctx)
		if err != nil {
			// Linked all the same: the history is tried again at the
			// next Sync.
			return c, err
		}
		c.log.Info("imported the message history", "messages", n)
	}
	return c, nil
}

// linkedBy records, on a device just linked, the route from the device
// that linked it: the reply mailbox of the link exchange, to which that
// device now writes.
func (t *tx) linkedBy(snap *contactsSnapshot, reply protocol.MailboxID, tok protocol.CapabilityToken) error {
	self, err := t.self()
	if err != nil {
		return err
	}
	var linker []byte
	for _, p := range snap.Persons {
		for _, d := range p.Devices {
			if p.Self && d.Direct {
				linker = d.DeviceID
			}
		}
	}
	ds, err := t.DevicesOf(self.ID)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if linker != nil && bytes.Equal(d.DeviceID, linker) {
			d.RecvMbx, d.RecvCap = reply[:], tok.SecretBytes()
			return t.PutDevice(d)
		}
	}
	return fmt.Errorf("%w: the response names no route to the device that linked this one", errSnapshot)
}
