package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
)

// Contacts' device lists (protocol/SPEC.md section 9 "Contacts' device
// lists"). Before a message is sealed for a contact, the contact's newest
// signed device list is fetched from their relay (the relay of their
// first device record, where their devices publish) over an
// unauthenticated connection, verified against the log key pinned for
// that relay and the newest head kept for it (people.Accept), and kept in
// the person record, where the send path reads the devices to encrypt to.
// A failed verification writes nothing, warns (EventTransparency and a
// notice in the conversation) and refuses the send.

const (
	// deviceListFresh: a contact's list checked this recently is not
	// fetched again before a send.
	deviceListFresh = 60 * time.Second
	// listFetchAttempts bounds the fetches of one check when the kept
	// head moves meanwhile (another check of the same relay kept a newer
	// one, so the consistency proof asked for is from an older size).
	listFetchAttempts = 3

	transparencyNoticeLabel = protocol.LabelPrefix + "transparency-notice"
)

// contactLists is the Client's in-memory state of contacts' device lists
// and of the head gossip (gossip.go). The zero value is ready.
type contactLists struct {
	mu      sync.Mutex
	checked map[string]time.Time // person record ID -> last successful check

	// Gossip: heads to check after the transaction that received them,
	// whether checkGossip runs (checks counts it, for tests), and heads
	// found consistent with their relay's log.
	pending  []pendingHead
	running  bool
	checks   sync.WaitGroup
	verified map[string]bool
}

// fresh reports whether person was checked successfully less than
// deviceListFresh before now.
func (l *contactLists) fresh(person []byte, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.checked[string(person)]
	return ok && !now.Before(at) && now.Sub(at) < deviceListFresh
}

func (l *contactLists) markChecked(person []byte, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.checked == nil {
		l.checked = make(map[string]time.Time)
	}
	l.checked[string(person)] = now
}

// forget drops what is known of person's last check (the next send
// checks again).
func (l *contactLists) forget(person []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.checked, string(person))
}

// listUnreachableError: the contact's relay could not be asked, or did
// not answer as a relay does (a network failure, a refusal such as a rate
// limit). Nothing was verified and nothing changed; a send goes on with
// the list kept.
type listUnreachableError struct {
	host string
	err  error
}

func (e *listUnreachableError) Error() string {
	return "client: could not fetch a device list from " + e.host + ": " + e.err.Error()
}
func (e *listUnreachableError) Unwrap() error { return e.err }

// transparencyError is ErrTransparency naming the contact and the relay.
type transparencyError struct {
	name, host string
	err        error // wraps people.ErrTransparency and the kt error
	gossip     bool  // found by a head a contact gossiped
}

func (e *transparencyError) Error() string {
	if e.gossip {
		return "client: the relay " + e.host + " does not show you and " + e.name + " the same transparency log: " + transparencyReason(e.err)
	}
	return "client: " + e.name + "'s devices could not be verified with their relay (" + e.host + "): " + transparencyReason(e.err) + "; nothing is sent to " + e.name
}
func (e *transparencyError) Unwrap() error { return e.err }

// transparencyReason is a short reason for a transparency failure, for
// users: no key, list or head bytes.
func transparencyReason(err error) string {
	switch {
	case errors.Is(err, errListWithdrawn):
		return "the relay no longer serves the device list it served before"
	case errors.Is(err, kt.ErrWrongIdentity):
		return "the relay served a device list signed by another identity"
	case errors.Is(err, kt.ErrBadHead):
		return "the relay's tree head is not signed by the key pinned for it"
	case errors.Is(err, kt.ErrInclusion):
		return "the device list is not in the relay's signed log"
	case errors.Is(err, kt.ErrRollback):
		return "the relay served an older log or device list than one already seen"
	case errors.Is(err, kt.ErrFork):
		return "the relay's log forked, or it served another device list under a version already seen"
	case errors.Is(err, keys.ErrBadSignature):
		return "the device list's signature does not verify"
	}
	return "the relay's answer does not check out"
}

// errListWithdrawn: a relay said it holds no list (or no log) for a
// person whose list it served before.
var errListWithdrawn = fmt.Errorf("%w: %w: the relay no longer serves the kept device list", people.ErrTransparency, kt.ErrRollback)

// contactDevicesFresh is what a send does first: refreshDeviceList for
// the person, not forced. A transparency failure (or a local failure)
// refuses the send; a relay that cannot be asked does not: the send goes
// on to the devices of the list kept, and the outbox handles a relay that
// is down.
func (c *Client) contactDevicesFresh(ctx context.Context, person []byte) error {
	err := c.refreshDeviceList(ctx, person, false)
	var u *listUnreachableError
	if errors.As(err, &u) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.log.Info("could not check a contact's device list; sending to the devices of the list kept", "relay", u.host, "err", u.err)
		return nil
	}
	return err
}

// refreshDeviceList fetches and verifies the device list of the contact
// person (a person record ID), unless force is false and it was checked
// successfully less than deviceListFresh ago. The log key of the person's
// relay is pinned on first use. A relay that holds no list for the person
// is no error while none is kept (the contact predates device lists). A
// verification failure writes nothing, emits EventTransparency, stores a
// notice in the conversation (once per distinct failure) and returns an
// error matching ErrTransparency; a relay that cannot be asked gives a
// *listUnreachableError. Device records are not changed.
func (c *Client) refreshDeviceList(ctx context.Context, person []byte, force bool) error {
	if !force && c.lists.fresh(person, c.now()) {
		return nil
	}
	var (
		p      *store.Person
		dev    *store.Device
		pinned *keys.SigningPublicKey
		relay  string
	)
	err := c.st.view(func(t *tx) (err error) {
		if p, dev, err = t.personAndRelay(person); err != nil {
			return err
		}
		relay = dev.Relay
		if relay == "" {
			relay = c.relay // a record written before relays were per device
		}
		pinned, err = people.Pinned(t.Tx, relay)
		return err
	})
	if err != nil {
		return err
	}
	host, key := relayHost(relay), anonKey(dev.ID)
	if pinned == nil {
		resp, err := c.anonRequest(ctx, relay, key, &protocol.FetchLogKey{})
		switch {
		case noList(err):
			return c.noListAnswer(p, host, relay)
		case err != nil:
			return &listUnreachableError{host: host, err: err}
		}
		lk, ok := resp.(*protocol.LogKey)
		if !ok {
			return &listUnreachableError{host: host, err: unexpected(resp)}
		}
		err = c.st.update(func(t *tx) error { _, err := people.Pin(t.Tx, relay, lk.Key); return err })
		if errors.Is(err, people.ErrTransparency) {
			return c.transparencyFailure(p.ID, host, err)
		}
		if err != nil {
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		var known uint64
		if err := c.st.view(func(t *tx) (err error) { known, err = people.KnownSize(t.Tx, relay); return err }); err != nil {
			return err
		}
		resp, err := c.anonRequest(ctx, relay, key, &protocol.FetchDeviceList{Identity: fpOf(p.Identity), KnownSize: known})
		switch {
		case noList(err):
			return c.noListAnswer(p, host, relay)
		case err != nil:
			return &listUnreachableError{host: host, err: err}
		}
		dl, ok := resp.(*protocol.DeviceList)
		if !ok {
			return &listUnreachableError{host: host, err: unexpected(resp)}
		}
		moved := false
		err = c.st.update(func(t *tx) error {
			now, err := people.KnownSize(t.Tx, relay)
			if err != nil {
				return err
			}
			if now != known {
				moved = true
				return nil
			}
			cur, err := t.Person(p.ID) // again, inside the transaction that writes it
			if err == nil && (cur == nil || cur.Self) {
				err = ErrUnknownContact
			}
			if err != nil {
				return err
			}
			_, err = people.Accept(t.Tx, relay, cur, answerOf(dl))
			return err
		})
		switch {
		case errors.Is(err, people.ErrTransparency):
			return c.transparencyFailure(p.ID, host, err)
		case err != nil:
			return err
		case moved && attempt < listFetchAttempts:
			continue
		case moved:
			return &listUnreachableError{host: host, err: errors.New("the relay's log moved during every check")}
		}
		c.lists.markChecked(p.ID, c.now())
		return nil
	}
}

// noList reports a relay's answer that it holds no list for an identity,
// or keeps no transparency log.
func noList(err error) bool {
	return protocol.IsCode(err, protocol.CodeUnknownIdentity) || protocol.IsCode(err, protocol.CodeNoTransparencyLog)
}

// noListAnswer handles a relay that holds no list for p: nothing changes
// if none is kept (p predates device lists); one kept is a list the relay
// withdrew, a transparency failure.
func (c *Client) noListAnswer(p *store.Person, host, relay string) error {
	if p.DeviceListVersion != 0 {
		return c.transparencyFailure(p.ID, host, errListWithdrawn)
	}
	c.lists.markChecked(p.ID, c.now())
	return nil
}

// personAndRelay returns contact person id and its first device record
// that is not revoked (whose relay is where the person's devices
// publish).
func (t *tx) personAndRelay(id []byte) (*store.Person, *store.Device, error) {
	p, err := t.Person(id)
	if err != nil {
		return nil, nil, err
	}
	if p == nil {
		return nil, nil, ErrUnknownContact
	}
	if p.Self {
		return nil, nil, fmt.Errorf("client: this person's own device list is not a contact's")
	}
	ds, err := t.DevicesOf(p.ID)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range ds {
		if !d.Revoked {
			return p, d, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: %s has no device", ErrUnknownContact, p.Name)
}

// TransparencyNotice is the text of the notice stored when the devices of
// contact name could not be verified with their relay (host): reason.
func TransparencyNotice(name, host, reason string) string {
	return "Postern could not verify " + name + "'s devices with their relay (" + host + "): " + reason + ". Nothing is sent to " + name + " until this is resolved."
}

// transparencyFailure reports a failed verification of person's list on
// the relay at host: EventTransparency, and the notice in the
// conversation unless this failure was noticed before. It returns the
// error for the caller.
func (c *Client) transparencyFailure(person []byte, host string, cause error) error {
	c.lists.forget(person)
	var name string
	err := c.st.view(func(t *tx) error {
		p, err := t.Person(person)
		if err == nil && p == nil {
			err = ErrUnknownContact
		}
		if err == nil {
			name = p.Name
		}
		return err
	})
	if err != nil {
		return err
	}
	terr := &transparencyError{name: name, host: host, err: cause}
	c.log.Warn("a contact's device list did not verify; nothing is sent to them", "relay", host, "err", cause)
	c.warnTransparency(person, terr, TransparencyNotice(name, host, transparencyReason(cause)))
	return terr
}

// warnTransparency emits EventTransparency for person (terr names them)
// and stores text as a notice in their conversation unless the same
// notice is stored already. A failure to store it is logged: the warning
// is emitted anyway.
func (c *Client) warnTransparency(person []byte, terr *transparencyError, text string) {
	c.ev.order.Lock()
	defer c.ev.order.Unlock()
	var notice *Message
	err := c.st.update(func(t *tx) error {
		notice = nil
		p, dev, err := t.personAndRelay(person)
		if err != nil {
			return err
		}
		now := c.now().UTC()
		h := sha256.New()
		h.Write([]byte(transparencyNoticeLabel))
		h.Write(p.ID)
		h.Write([]byte(text))
		m := &Message{
			ID: hex.EncodeToString(h.Sum(nil)[:8]), From: p.Name, To: Me, Text: text,
			Time: now, Received: now, Notice: true,
		}
		stored, err := storeMessage(t, &contactRecord{Device: *dev, Person: p}, m)
		if stored {
			notice = m
		}
		return err
	})
	if err != nil {
		c.log.Error("could not store a transparency notice", "err", err)
	}
	c.emit(Event{Kind: EventTransparency, Contact: terr.name, Err: terr})
	if notice != nil {
		c.queue([]Message{*notice})
	}
}
