package relay

// Signed device lists and the key-transparency log (SPEC.md section 10,
// "Key transparency"). The relay verifies a published list with package
// keys, stores it and appends its leaf through store.KTStore in one
// transaction, and signs each new tree head with its audit key. Fetches
// need no authentication and are limited per client address.

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/store"
)

// Limits of the transparency frames (SPEC.md section 6).
const (
	// DeviceListFetchesPerMinute and DeviceListFetchBurst bound the
	// FetchDeviceList requests of one client address (loopback clients
	// are not limited).
	DeviceListFetchesPerMinute = 120
	DeviceListFetchBurst       = 120
	// DeviceListPublishesPerHour and DeviceListPublishBurst bound one
	// device's publishes: each is a leaf kept for good.
	DeviceListPublishesPerHour = 12
	DeviceListPublishBurst     = 6
	// DirectoryPublishesPerHour and DirectoryPublishBurst bound one
	// device's PublishDirectory appends (organisation directories and
	// teams' staff lists, which the relay cannot tell apart), an
	// allowance of their own beside the device lists': a team's intake
	// logs a staff list per AddStaff or RemoveStaff, and a ward set up in
	// one sitting adds tens of staff in a row, where the device lists' 6
	// would fail the seventh with ErrStaffListLog. 64 at once covers a
	// large team's first setup; 240 an hour (one per 15 s) covers a busy
	// shift change and still bounds what one enrolled device can add to
	// the log for good (about 5 800 leaves of 72 bytes a day).
	DirectoryPublishesPerHour = 240
	DirectoryPublishBurst     = 64
	// publishRetries bounds the re-reads when concurrent publishes for
	// one identity race (store.ErrDeviceListMoved).
	publishRetries = 3
)

// ktLog returns the transparency store and the key that signs heads, or
// false when this relay keeps no log (a store without it, or no audit
// key).
func (r *Relay) ktLog() (store.KTStore, *audit.Key, bool) {
	ks, ok := r.st.(store.KTStore)
	if !ok || r.cfg.Audit == nil {
		return nil, nil, false
	}
	return ks, r.cfg.Audit.Key(), true
}

// signHead signs a tree head with the relay's key, now.
func (r *Relay) signHead(key *audit.Key) store.SignHead {
	return func(size uint64, root [32]byte) ([]byte, error) {
		h := &kt.Head{RelayKey: key.Public().Fingerprint(), Size: size, Root: root, Time: r.cfg.Now()}
		sig, err := key.Sign(kt.ContextHead, h.SignedPart())
		if err != nil {
			return nil, err
		}
		h.Signature = sig
		return h.Bytes(), nil
	}
}

func ktStoreCode(err error) protocol.Code {
	switch {
	case errors.Is(err, store.ErrUnknownIdentity):
		return protocol.CodeUnknownIdentity
	case errors.Is(err, store.ErrStaleDeviceList):
		return protocol.CodeStaleDeviceList
	}
	return storeCode(err)
}

func (c *conn) ktRefusal(id uint32, err error) {
	switch code := ktStoreCode(err); code {
	case protocol.CodeUnknownIdentity, protocol.CodeStaleDeviceList:
		c.refuse(id, code, "")
	default:
		c.storeRefusal(id, err)
	}
}

func toProof(p [][32]byte) []protocol.ProofHash {
	out := make([]protocol.ProofHash, len(p))
	for i := range p {
		out[i] = protocol.ProofHash(p[i])
	}
	return out
}

// fetchLogKey answers FetchLogKey with the key that signs tree heads.
func (c *conn) fetchLogKey(id uint32) {
	_, key, ok := c.r.ktLog()
	if !ok {
		c.refuse(id, protocol.CodeNoTransparencyLog, "this relay keeps no transparency log")
		return
	}
	c.send(id, &protocol.LogKey{Key: key.Public().Bytes()})
}

// fetchDeviceList answers FetchDeviceList: the newest list of the
// identity with its proofs, read in one view of the store.
func (c *conn) fetchDeviceList(id uint32, f *protocol.FetchDeviceList) {
	ks, _, ok := c.r.ktLog()
	if !ok {
		c.refuse(id, protocol.CodeNoTransparencyLog, "this relay keeps no transparency log")
		return
	}
	if c.adm.key.IsValid() {
		if ok, wait := c.r.ktFetches.take(c.adm.key, c.r.cfg.Now()); !ok {
			c.rateLimited(id, "device list fetches", wait, fmt.Sprintf("too many device list fetches from this address; retry after %d s", retryAfterSeconds(wait)))
			return
		}
	}
	a, err := ks.KTAnswer(c.ctx, f.Identity, f.KnownSize)
	if err != nil {
		c.ktRefusal(id, err)
		return
	}
	c.send(id, &protocol.DeviceList{List: a.List, Index: a.Index, Inclusion: toProof(a.Inclusion), Head: a.Head, Consistency: toProof(a.Consistency)})
}

// publishDeviceList verifies and stores the authenticated device's
// person's new list and appends it to the log, durably, before answering.
// Devices of the previous list that the new one drops and that are
// enrolled here are revoked as an operator's revoke does: barred and
// their connections closed first, then revoked in the publish's own
// transaction (lifted again if it fails).
func (c *conn) publishDeviceList(id uint32, f *protocol.PublishDeviceList) {
	ks, key, ok := c.r.ktLog()
	if !ok {
		c.refuse(id, protocol.CodeNoTransparencyLog, "this relay keeps no transparency log")
		return
	}
	// The allowance counts appends (each is a leaf kept for good): a
	// refused publish gives its token back. Failed verifications are
	// bounded by the frame rate.
	now := c.r.cfg.Now()
	if ok, wait := c.r.ktPublishes.take(c.device, now); !ok {
		c.rateLimited(id, "device list publishes", wait, fmt.Sprintf("too many device list publishes; retry after %d s", retryAfterSeconds(wait)))
		return
	}
	if !c.appendDeviceList(id, f, ks, key) {
		c.r.ktPublishes.give(c.device, now)
	}
}

// appendDeviceList is publishDeviceList after the rate limit; it reports
// whether a leaf was appended.
func (c *conn) appendDeviceList(id uint32, f *protocol.PublishDeviceList, ks store.KTStore, key *audit.Key) bool {
	var l *keys.DeviceList
	var err error
	offStack(func() { l, err = keys.ParseDeviceList(f.List) })
	if err != nil {
		c.refuse(id, protocol.CodeBadDeviceList, err.Error())
		return false
	}
	if !l.Contains(keys.Fingerprint(c.device)) {
		c.refuse(id, protocol.CodeNotInDeviceList, "the publishing device is not in the list")
		return false
	}
	// The device must be one of this person's: enrolled with a key whose
	// device ID it is (Auth proved that), listed by the person's identity.
	// The relay cannot see device certificates, so a device listed by
	// two identities is allowed; each identity's list is its own claim.
	identity := l.Identity.Fingerprint()
	entry := kt.EntryOf(l, f.List).Bytes()
	for attempt := 0; ; attempt++ {
		prev, err := ks.DeviceList(c.ctx, identity)
		var prevVersion uint64
		var dropped []store.Device
		switch {
		case errors.Is(err, store.ErrUnknownIdentity):
		case err != nil:
			c.ktRefusal(id, err)
			return false
		default:
			prevVersion = prev.Version
			if l.Version <= prevVersion {
				c.refuse(id, protocol.CodeStaleDeviceList, fmt.Sprintf("version %d is not above the stored %d", l.Version, prevVersion))
				return false
			}
			dropped = c.r.droppedDevices(c.ctx, prev.List, l)
		}
		pub, err := c.r.publishRevoking(ks, key, store.Publish{Identity: identity, Version: l.Version, Prev: prevVersion, List: f.List, Entry: entry}, dropped)
		if errors.Is(err, store.ErrDeviceListMoved) && attempt < publishRetries {
			continue
		}
		if err != nil {
			c.ktRefusal(id, err)
			return false
		}
		c.log.Info("device list published", "device", c.device.Short(), "version", l.Version, "devices", len(l.Devices), "revoked", len(pub.Revoked))
		// The answer is what is stored now, read in one view: this list,
		// or a newer one of the identity published meanwhile (which the
		// client then sees and verifies).
		a, err := ks.KTAnswer(c.ctx, identity, 0)
		if err != nil {
			c.ktRefusal(id, err)
			return true
		}
		c.send(id, &protocol.DeviceList{List: a.List, Index: a.Index, Inclusion: toProof(a.Inclusion), Head: a.Head})
		return true
	}
}

// droppedDevices returns the devices of the previous stored list that next
// no longer lists and that are enrolled here and not yet revoked.
func (r *Relay) droppedDevices(ctx context.Context, prevList []byte, next *keys.DeviceList) []store.Device {
	var prev *keys.DeviceList
	var err error
	offStack(func() { prev, err = keys.ParseDeviceList(prevList) })
	if err != nil {
		// The store holds only lists the relay verified; a list that no
		// longer parses is damage, and dropping nothing is the safe side
		// of a revocation the person can repeat.
		r.log.Error("stored device list does not parse", "err", err)
		return nil
	}
	var out []store.Device
	for _, d := range prev.Devices {
		if next.Contains(d.ID) {
			continue
		}
		if dev, err := r.st.Device(ctx, protocol.DeviceID(d.ID)); err == nil && !dev.Revoked {
			out = append(out, dev)
		}
	}
	return out
}

// publishRevoking stores p with the operator's revoke path (barDevice)
// for the dropped devices: bar them and close their connections at once,
// then commit the publish with their revocation, and lift the bars if it
// fails (a suspended device stays barred).
func (r *Relay) publishRevoking(ks store.KTStore, key *audit.Key, p store.Publish, dropped []store.Device) (store.Published, error) {
	var closed int
	for _, d := range dropped {
		p.Revoke = append(p.Revoke, d.ID)
	}
	if len(p.Revoke) > 0 {
		closed = r.evictDevices(p.Revoke, reasonRevoked)
	}
	var pub store.Published
	var err error
	offStack(func() { pub, err = ks.PublishDeviceList(context.Background(), p, r.signHead(key)) })
	if err != nil {
		for _, d := range dropped {
			if d.Suspended {
				r.devs.bar(d.ID, reasonSuspended)
			} else {
				r.devs.unbar(d.ID)
			}
		}
		return pub, err
	}
	for _, d := range pub.Revoked {
		r.log.Info(reasonRevoked, "device", d.Short(), "by", "device list", "connections", closed)
		r.auditEvent(audit.EventDeviceRevoked, audit.Fields{"device": d.String(), "by": "device-list"})
	}
	return pub, nil
}

// ktThrottles makes the transparency rate limits.
func (r *Relay) ktThrottles() {
	r.ktFetches = newThrottle[netip.Addr](float64(DeviceListFetchesPerMinute)/60, DeviceListFetchBurst)
	r.ktPublishes = newThrottle[protocol.DeviceID](float64(DeviceListPublishesPerHour)/3600, DeviceListPublishBurst)
	r.dirPublishes = newThrottle[protocol.DeviceID](float64(DirectoryPublishesPerHour)/3600, DirectoryPublishBurst)
}
