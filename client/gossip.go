package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/postern/postern/client/internal/people"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
)

// Head gossip (protocol/SPEC.md section 9 "Contacts' device lists").
// After a message to a contact's device, this client sends that device,
// in the same session, the newest heads it keeps of the two relays both
// may have pinned (its own and the device's) when they are newer than the
// ones it last sent there. A receiver compares each head with what it
// holds for that relay: the same size with another root is a fork at
// once; any other size is checked against the relay after the receiving
// transaction (checkGossip). A relay that shows two people different logs
// is caught when either gossips to the other.

const (
	// MaxGossipHeads is the most heads one heads content carries.
	MaxGossipHeads = 4
	// maxGossipHeadSize caps each head's length: this version's heads are
	// kt.HeadSize bytes; longer ones (another head format) are refused,
	// shorter ones that do not parse are ignored.
	maxGossipHeadSize = kt.HeadSize
	// maxVerifiedHeads caps the heads remembered as checked.
	maxVerifiedHeads = 1024
	// gossipCheckTimeout bounds one check of the gossiped heads.
	gossipCheckTimeout = time.Minute
)

var keyGossip = []byte("kt-gossip")

// appendHeads encodes a heads content's body: u8 n || n × (u16 len ||
// head).
func appendHeads(b []byte, heads [][]byte) ([]byte, error) {
	if len(heads) == 0 || len(heads) > MaxGossipHeads {
		return nil, ErrDecrypt
	}
	b = append(b, byte(len(heads)))
	for _, h := range heads {
		if len(h) == 0 || len(h) > maxGossipHeadSize {
			return nil, ErrDecrypt
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(h)))
		b = append(b, h...)
	}
	return b, nil
}

// parseHeads reads what appendHeads writes; nil on any failure.
func parseHeads(r *protocol.Reader) [][]byte {
	n := int(r.U8("head count"))
	if n == 0 || n > MaxGossipHeads {
		return nil
	}
	heads := make([][]byte, 0, n)
	for range n {
		l := int(r.U16("head length"))
		if l == 0 || l > maxGossipHeadSize {
			return nil
		}
		heads = append(heads, bytes.Clone(r.Take(l, "head")))
	}
	if r.Err() != nil {
		return nil
	}
	return heads
}

// gossipRecord is what this device last sent one device record of a
// contact: the size of the head of each relay.
type gossipRecord struct {
	V    int               `json:"v"`
	Sent map[string]uint64 `json:"sent"` // relay URL -> head size
}

// gossipRelays are the relays whose heads are gossiped to a device on
// relay: this client's and the device's. Heads of other relays would tell
// the contact which relays this client's other contacts use.
func (c *Client) gossipRelays(relay string) []string {
	if relay == "" || relay == c.relay {
		return []string{c.relay}
	}
	return []string{c.relay, relay}
}

// gossipFor returns the heads content to send the device with record ID
// deviceRecordID, or nil: the kept heads of gossipRelays newer than the
// ones last sent to it, which are recorded as sent now (a send that then
// fails leaves them unsent until a newer head is kept).
func (c *Client) gossipFor(t *tx, deviceRecordID []byte) *content {
	return c.gossipHeads(t, deviceRecordID, true)
}

// gossipHeads is gossipFor; with record unset it only reports whether
// heads are due (in a read-only transaction), recording nothing.
func (c *Client) gossipHeads(t *tx, deviceRecordID []byte, record bool) *content {
	d, err := t.Device(deviceRecordID)
	if err != nil || d == nil {
		return nil
	}
	key := t.Index(bucketMeta, keyGossip, deviceRecordID)
	var rec gossipRecord
	if _, err := t.Get(bucketMeta, key, &rec); err != nil {
		c.log.Warn("gossip record unreadable", "err", err)
		return nil
	}
	if rec.Sent == nil {
		rec.Sent = make(map[string]uint64)
	}
	var heads [][]byte
	for _, relay := range c.gossipRelays(d.Relay) {
		_, h, err := people.Kept(t.Tx, relay)
		if err != nil || h == nil || h.Size <= rec.Sent[relay] {
			continue
		}
		heads = append(heads, h.Bytes())
		rec.Sent[relay] = h.Size
	}
	if len(heads) == 0 {
		return nil
	}
	rec.V = 1
	if !record {
		return &content{Type: contentHeads, Heads: heads}
	}
	if err := t.Put(bucketMeta, key, &rec); err != nil {
		c.log.Warn("gossip record not stored", "err", err)
		return nil
	}
	ct := &content{Type: contentHeads, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Heads: heads}
	copy(ct.MsgID[:], randomID(msgIDSize))
	return ct
}

// sendGossip sends contact device r the heads gossipFor gives, after a
// message (ct) was sent to it. A failure is logged and not retried:
// gossip is best effort, and the next newer head kept goes with the next
// message.
func (c *Client) sendGossip(ctx context.Context, r *contactRecord, ct *content) {
	if !isMessageContent(ct.Type) {
		return
	}
	// Most messages carry no newer head: a read transaction says so
	// without the cost of a commit.
	var g *content
	if err := c.st.view(func(t *tx) error { g = c.gossipHeads(t, r.ID, false); return nil }); err != nil || g == nil {
		return
	}
	err := c.st.update(func(t *tx) error { g = c.gossipFor(t, r.ID); return nil })
	if err != nil || g == nil {
		return
	}
	if err := c.sendSession(ctx, r, g); err != nil {
		c.log.Info("could not send transparency heads to a contact", "err", err)
	}
}

// pendingHead is a gossiped head to check after the transaction that
// received it.
type pendingHead struct {
	relay  string // the relay whose pinned key signed it
	head   []byte
	from   []byte // the gossiping contact's device record ID
	person []byte // and person record ID
	fork   error  // already found to conflict with the kept head
}

func headKey(h *kt.Head) string {
	return string(h.RelayKey[:]) + string(binary.BigEndian.AppendUint64(nil, h.Size)) + string(h.Root[:])
}

// receiveHeads handles a heads content from contact from, inside the
// receiving transaction t: each head of a relay whose pinned key signed
// it (this client's relay or from's; others are ignored) is compared with
// the head kept for that relay. Conflicts and heads to check against the
// relay are queued for checkGossip, which runs after the transaction.
func (c *Client) receiveHeads(t *tx, from *contactRecord, heads [][]byte) {
	var queued []pendingHead
	for _, b := range heads {
		g, err := kt.ParseHeadUnverified(b)
		if err != nil {
			continue
		}
		matched, allPinned := false, true
		for _, relay := range c.gossipRelays(from.Relay) {
			key, kept, err := people.Kept(t.Tx, relay)
			if errors.Is(err, people.ErrNoKey) {
				allPinned = false
			}
			if err != nil || key == nil || key.Fingerprint() != g.RelayKey {
				continue
			}
			matched = true
			g, err := kt.ParseHead(b, key)
			if err != nil {
				c.log.Warn("ignored a gossiped tree head that is not signed by the relay's key", "relay", relayHost(relay))
				continue
			}
			p := pendingHead{relay: relay, head: b, from: from.ID, person: from.Person.ID}
			switch {
			case kept != nil && g.Size == kept.Size && g.Root == kept.Root:
				continue // what we hold
			case kept != nil && g.Size == kept.Size:
				p.fork = fmt.Errorf("%w: %w: a contact holds a head of %d leaves with another root", people.ErrTransparency, kt.ErrFork, g.Size)
			case c.lists.wasVerified(g):
				continue
			}
			queued = append(queued, p)
		}
		if !matched && allPinned {
			// The contact gossips only heads of its relay and ours, and
			// we pinned a key for both: a head under a third key means
			// one of the relays showed one of us another log key.
			relay := from.Relay
			if relay == "" {
				relay = c.relay
			}
			queued = append(queued, pendingHead{relay: relay, head: b, from: from.ID, person: from.Person.ID,
				fork: fmt.Errorf("%w: %w: a contact holds a head under a log key neither relay showed this device", people.ErrTransparency, kt.ErrFork)})
		}
	}
	if len(queued) > 0 {
		c.lists.queueHeads(queued)
		c.goCheckGossip()
	}
}

func (l *contactLists) wasVerified(h *kt.Head) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.verified[headKey(h)]
}

func (l *contactLists) markVerified(h *kt.Head) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.verified == nil || len(l.verified) >= maxVerifiedHeads {
		l.verified = make(map[string]bool)
	}
	l.verified[headKey(h)] = true
}

func (l *contactLists) queueHeads(ps []pendingHead) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range ps {
		if len(l.pending) >= maxVerifiedHeads {
			return // checks are far behind: drop, gossip comes again
		}
		l.pending = append(l.pending, p)
	}
}

// goCheckGossip starts checkGossip unless it is running or the Client
// is closed. It may be called inside a store transaction: the check
// waits for the store.
func (c *Client) goCheckGossip() {
	l := &c.lists
	l.mu.Lock()
	if l.running {
		l.mu.Unlock()
		return
	}
	l.running = true
	l.checks.Add(1)
	l.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		l.mu.Lock()
		l.running, l.pending = false, nil
		l.mu.Unlock()
		l.checks.Done()
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer l.checks.Done()
		c.checkGossip()
	}()
}

// checkGossip checks the queued gossiped heads until none is left.
func (c *Client) checkGossip() {
	l := &c.lists
	for {
		l.mu.Lock()
		if len(l.pending) == 0 || c.ctx.Err() != nil {
			l.running, l.pending = false, nil
			l.mu.Unlock()
			return
		}
		p := l.pending[0]
		l.pending = l.pending[1:]
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(c.ctx, gossipCheckTimeout)
		err := p.fork
		if err == nil {
			err = c.checkGossipHead(ctx, p)
		}
		cancel()
		if errors.Is(err, people.ErrTransparency) {
			c.gossipFailure(p, err)
		} else if err != nil {
			c.log.Info("could not check a gossiped tree head", "relay", relayHost(p.relay), "err", err)
		}
	}
}

// checkGossipHead checks gossiped head p.head (G) against its relay:
// asked for a list it holds (this person's on this client's relay, the
// contact's on theirs) once with the kept head's size and once with G's,
// the relay must answer with the same current head H both times, and
// prove that the kept head and G are both in it. Two heads that are
// prefixes of one head are consistent with each other. An answer that
// does not verify is a transparency failure (the relay cannot prove that
// G and the kept head belong to one log); other failures are not.
func (c *Client) checkGossipHead(ctx context.Context, p pendingHead) error {
	var (
		key   *keys.SigningPublicKey
		kept  *kt.Head
		probe keys.Fingerprint
	)
	err := c.st.view(func(t *tx) (err error) {
		if key, kept, err = people.Kept(t.Tx, p.relay); err != nil {
			return err
		}
		if p.relay == c.relay {
			probe = c.idFP
			return nil
		}
		person, err := t.Person(p.person)
		if err == nil && person == nil {
			err = ErrUnknownContact
		}
		if err == nil {
			probe = fpOf(person.Identity)
		}
		return err
	})
	if err != nil {
		return err
	}
	g, err := kt.ParseHead(p.head, key)
	if err != nil {
		return err // the pinned key changed meanwhile: nothing to say
	}
	fetch := func(known *kt.Head) (*kt.Head, error) {
		var size uint64
		if known != nil {
			size = known.Size
		}
		resp, err := c.anonRequest(ctx, p.relay, anonKey(p.from), &protocol.FetchDeviceList{Identity: probe, KnownSize: size})
		if err != nil {
			return nil, err
		}
		dl, ok := resp.(*protocol.DeviceList)
		if !ok {
			return nil, unexpected(resp)
		}
		_, h, err := kt.VerifyAnswer(answerOf(dl), key, probe, known)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", people.ErrTransparency, err)
		}
		return h, nil
	}
	for range listFetchAttempts {
		h1, err := fetch(kept)
		if err != nil {
			return err
		}
		h2, err := fetch(g)
		if err != nil {
			return err
		}
		if h1.Size != h2.Size {
			continue // the log grew between the two answers
		}
		if h1.Root != h2.Root {
			return fmt.Errorf("%w: %w: two heads of %d leaves with different roots", people.ErrTransparency, kt.ErrFork, h1.Size)
		}
		c.lists.markVerified(g)
		return nil
	}
	return errors.New("the relay's log moved during every check")
}

// GossipNotice is the text of the notice stored when a head contact name
// gossiped shows that the relay at host does not show both the same log.
func GossipNotice(name, host, reason string) string {
	return "Postern found that the relay " + host + " does not show you and " + name + " the same log of device lists: " + reason + ". Devices either of you sees for the other may not be genuine; check with " + name + " in person."
}

// gossipFailure warns of a gossiped head that does not fit the relay's
// log: EventTransparency and, once, a notice in the conversation with the
// contact who gossiped it.
func (c *Client) gossipFailure(p pendingHead, cause error) {
	var name string
	err := c.st.view(func(t *tx) error {
		person, err := t.Person(p.person)
		if err == nil && person == nil {
			err = ErrUnknownContact
		}
		if err == nil {
			name = person.Name
		}
		return err
	})
	if err != nil {
		return
	}
	host := relayHost(p.relay)
	c.log.Warn("a contact's tree head shows that a relay forked its log", "relay", host, "err", cause)
	terr := &transparencyError{name: name, host: host, err: cause, gossip: true}
	c.warnTransparency(p.person, terr, GossipNotice(name, host, transparencyReason(cause)))
}
