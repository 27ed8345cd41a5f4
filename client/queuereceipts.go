package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Queue receipts (protocol/SPEC.md section 15.9 "Queue receipts"). A
// staff device that marks an outsider's messages of a queue conversation
// read (ReadQueue, or MarkRead of those messages) tells the staff group
// who read which (contentQueueReceipt, the staff's form of queue.Receipt);
// every staff device keeps it on the message (ReadBy). The intake, on
// the first such receipt for a message, marks its own copy read and
// sends the outsider the ordinary read receipt of section 9 (content
// 0x16), which names no staff member and no team-internal conversation;
// and it keeps the time for the team agent, for which a read stops the
// reminders of an urgent message.

// QueueRead is one staff member's read of an outsider's message in a
// queue conversation.
type QueueRead struct {
	// By is the staff member's name as this device shows it (Me for this
	// person).
	By string
	// At is when they read it: their device's clock, bounded below by the
	// message's sent time and above by the receipt's arrival here.
	At time.Time
}

// ReadQueue marks every unread message of the outsider in queue
// conversation id read, as MarkRead does: on this person's other devices,
// and, from a staff member who may send, in a queue receipt to the team's
// staff, which the team's intake reports to the outsider as read (naming
// nobody). An observer's reads are kept on its devices only: its group
// messages are not accepted. Opening a conversation (postern team show,
// the web app's queue page) calls it. A receipt whose relay cannot be
// reached waits in the outbox; none is a failure of the read.
func (c *Client) ReadQueue(ctx context.Context, id string) error {
	qt, err := c.loadQueue(id)
	if err != nil {
		return err
	}
	var ids []string
	err = c.st.view(func(t *tx) error {
		return t.Messages(func(r *messageRecord) error {
			if bytes.Equal(r.Conversation, qt.q.ID) && unread(r) && outsiderMessage(qt.q, r) {
				ids = append(ids, r.ID)
			}
			return nil
		})
	})
	if err != nil || len(ids) == 0 {
		return err
	}
	return c.MarkRead(ctx, ids...)
}

// outsiderMessage reports whether r, a message of queue conversation q,
// is one of the outsider's (forwarded by the intake) rather than a staff
// reply: its ID is made from one of the outsider's devices.
func outsiderMessage(q *store.QueueRecord, r *messageRecord) bool {
	if r.Outgoing || r.Notice || len(r.ContentID) != msgIDSize {
		return false
	}
	for _, s := range q.Senders {
		if localMessageID(fpOf(s), [msgIDSize]byte(r.ContentID)) == r.ID {
			return true
		}
	}
	return false
}

// outsiderQueueMessage returns the outsider's message of queue
// conversation q whose content message ID is mid, or nil.
func outsiderQueueMessage(t *tx, q *store.QueueRecord, mid [msgIDSize]byte) (*messageRecord, error) {
	for _, s := range q.Senders {
		m, err := t.MessageByID(localMessageID(fpOf(s), mid))
		if err != nil {
			return nil, err
		}
		if m != nil && bytes.Equal(m.Conversation, q.ID) && outsiderMessage(q, m) {
			return m, nil
		}
	}
	return nil, nil
}

// queueReadBatch is the outsider's messages of one queue conversation
// that this device read.
type queueReadBatch struct {
	group []byte // the staff group's ID
	conv  queue.ConversationID
	ids   []queue.MessageID
}

// errQueueReceipts wraps a failure to keep queue receipts (a full outbox,
// a receipt that could not be sealed): MarkRead then records the reads
// without them.
var errQueueReceipts = errors.New("client: queue receipts not kept")

// queueReads is what recordQueueReads put in the outbox: the sequence
// numbers of the queue receipts and their envelopes, sent after the
// commit.
type queueReads struct {
	seqs []uint64
	envs [][]byte
}

// recordQueueReads, in MarkRead's transaction t that stores the read of
// ids, records this person as their reader and, with withReceipts, puts a
// receipt for the staff of each queue conversation they belong to in the
// outbox, each sealed with the sender key it advances (as a session
// envelope is, outbox.go): the read and its receipts commit together, and
// a relay that cannot be reached leaves the receipt there, to be sent when
// it is back (also by a new Client on the same home), so that the team
// agent's reminders stop. IDs of anything but an outsider's queue message
// are skipped. A receipt that cannot be kept is an error matching
// errQueueReceipts.
func (c *Client) recordQueueReads(t *tx, ids []string, now time.Time, withReceipts bool, qr *queueReads) error {
	qr.seqs, qr.envs = nil, nil
	var batches []*queueReadBatch
	for _, id := range ids {
		m, err := t.MessageByID(id)
		if err != nil {
			return err
		}
		if m == nil || len(m.Conversation) == 0 {
			continue
		}
		q, err := t.Queue(m.Conversation)
		if err != nil {
			return err
		}
		if q == nil || !outsiderMessage(q, m) {
			continue
		}
		if _, err := addReadBy(t, m.ID, c.idFP, now); err != nil {
			return err
		}
		var b *queueReadBatch
		for _, x := range batches {
			if bytes.Equal(x.conv[:], q.Conversation) && bytes.Equal(x.group, q.Team) {
				b = x
			}
		}
		if b == nil {
			b = &queueReadBatch{group: q.Team, conv: queue.ConversationID(q.Conversation)}
			batches = append(batches, b)
		}
		b.ids = append(b.ids, queue.MessageID(m.ContentID))
	}
	if !withReceipts {
		return nil
	}
	for _, b := range batches {
		for ids := b.ids; len(ids) > 0; ids = ids[min(len(ids), queue.MaxReceiptMessages):] {
			n := min(len(ids), queue.MaxReceiptMessages)
			body, err := queue.Receipt{ForStaff: true, Conversation: b.conv, Reader: c.idFP, Messages: ids[:n]}.MarshalBinary()
			if err != nil {
				return fmt.Errorf("%w: %w", errQueueReceipts, err)
			}
			ct := &content{Type: contentQueueReceipt, Sender: c.devID, SentMS: uint64(now.UnixMilli()), Team: &teamContent{Receipt: body}}
			seq, env, err := c.enqueueTeamGroup(t, b.group, ct)
			if errors.Is(err, ErrNotStaff) {
				// An observer (or a removed member): its reads are its
				// own; the staff would drop its group message anyway.
				break
			}
			if err != nil {
				return fmt.Errorf("%w: %w", errQueueReceipts, err)
			}
			qr.seqs, qr.envs = append(qr.seqs, seq), append(qr.envs, env)
		}
	}
	return nil
}

// sendQueueReceipts, after MarkRead committed the reads and their queue
// receipts (qr), sends what waits in the outbox, those receipts among it.
func (c *Client) sendQueueReceipts(ctx context.Context, qr *queueReads) error {
	if len(qr.seqs) == 0 {
		return nil
	}
	if h := c.envelopeHook.Load(); h != nil {
		for _, env := range qr.envs {
			(*h)(true, env)
		}
	}
	own := make(map[uint64]bool, len(qr.seqs))
	for _, seq := range qr.seqs {
		own[seq] = true
	}
	var errs []error
	queued := false
	for _, err := range c.flushOutboxSet(ctx, own, false) {
		switch {
		case err == nil:
		case errors.Is(err, ErrQueued) || errors.Is(err, ErrStore):
			queued = true
		default:
			c.log.Info("could not send a queue receipt", "err", err)
			errs = append(errs, err)
		}
	}
	if queued {
		c.log.Info("a queue receipt waits in the outbox")
		c.kickOutbox()
	}
	return errors.Join(errs...)
}

// enqueueTeamGroup seals ct for the staff of team group gid with this
// device's sender key and puts the envelope in the outbox, inside t (the
// transaction that stores the advanced key), and returns its sequence
// number and the envelope. ErrNotStaff: this person may not send to the
// staff.
func (c *Client) enqueueTeamGroup(t *tx, gid []byte, ct *content) (uint64, []byte, error) {
	copy(ct.MsgID[:], randomID(msgIDSize))
	plain, err := groupPlaintext(ct)
	if err != nil {
		return 0, nil, err
	}
	rec, err := t.Group(t.GroupConversationID(gid))
	if err != nil {
		return 0, nil, err
	}
	if rec == nil || rec.Removed {
		return 0, nil, ErrNotStaff
	}
	s, err := groupOf(rec)
	if err != nil {
		return 0, nil, err
	}
	if me := s.Member(c.idFP); me == nil || !me.Role.MaySend() {
		return 0, nil, ErrNotStaff
	}
	env, err := c.sealGroupEnvelope(t, rec, s, plain, ErrNotStaff)
	if err != nil {
		return 0, nil, err
	}
	if err := outboxRoom(t, len(env)); err != nil {
		return 0, nil, err
	}
	seq, err := t.AddOutbox(&store.OutboxEntry{Group: bytes.Clone(gid), Relay: s.Relay, Envelope: env, Created: c.now().UTC()})
	return seq, env, err
}

// sendOutboxFanout sends a group envelope of the outbox to its group's
// fan-out list as the group's state holds it now (members removed since
// get nothing). A group this device no longer holds, or left, gives it
// up; an error matching ErrQueued if the relay cannot be reached or asks
// to retry later.
func (c *Client) sendOutboxFanout(ctx context.Context, it store.OutboxItem) error {
	var s *group.State
	err := c.st.view(func(t *tx) error {
		rec, err := t.Group(t.GroupConversationID(it.Group))
		if err != nil {
			return err
		}
		if rec == nil || rec.Removed {
			return ErrNotStaff
		}
		s, err = groupOf(rec)
		return err
	})
	if errors.Is(err, ErrNotStaff) {
		return err // given up
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrStore, err) // kept: a local failure is no refusal
	}
	send, err := protocol.CapabilityTokenFromBytes(s.SendCap[:])
	if err != nil {
		return errStoreCorrupt
	}
	resp, err := c.anonRequest(ctx, s.Relay, groupConnKey(s.Group), &protocol.SendFanout{Fanout: s.Fanout, Capability: send, Envelope: it.Envelope})
	if err != nil {
		if retryLater(err) {
			return &queuedError{host: relayHost(s.Relay), cause: err}
		}
		return fmt.Errorf("client: send to the team's staff: %w", err)
	}
	if _, ok := resp.(*protocol.FanoutSent); !ok {
		return unexpected(resp)
	}
	return nil
}

// addReadBy records that the staff member reader read message id at at;
// a reader recorded already keeps its first time. It reports whether it
// recorded.
func addReadBy(t *tx, id string, reader keys.Fingerprint, at time.Time) (bool, error) {
	added := false
	_, err := t.UpdateMessage(id, func(r *messageRecord) {
		added = false
		for _, x := range r.ReadBy {
			if bytes.Equal(x.Identity, reader[:]) {
				return
			}
		}
		// A reader is a current member of the staff group: MaxMembers
		// bounds them, and so the list.
		if len(r.ReadBy) < group.MaxMembers {
			r.ReadBy = append(r.ReadBy, store.ReadBy{Identity: bytes.Clone(reader[:]), At: at.UTC()})
			added = true
		}
	})
	return added, err
}

// receiveQueueReceipt applies a queue receipt that arrived in team's
// staff group from member mem's device, inside the receive transaction.
// It is accepted only from a staff member naming themself as the reader
// (a colleague cannot report someone else's read, the team person reads
// its own conversation) and for a conversation this device holds;
// anything else is dropped. Repeats change nothing.
func (c *Client) receiveQueueReceipt(t *tx, team *store.TeamRecord, mem *group.Member, tc *teamContent, sentMS uint64,
	now time.Time, res *received) (drop, err error) {
	r, err := staffReceipt(tc.Receipt)
	if err != nil {
		return ErrDecrypt, nil
	}
	if r.Reader != mem.Identity || bytes.Equal(mem.Identity[:], team.IntakeIdentity) {
		c.log.Info("dropped a queue receipt that names another reader")
		return errGroupObserver, nil
	}
	q, err := t.Queue(t.QueueConversationID(team.Group, r.Conversation[:]))
	if err != nil {
		return nil, err
	}
	if q == nil {
		c.log.Info("dropped a queue receipt for a conversation this device does not hold")
		return nil, nil
	}
	if team.Intake {
		return nil, c.intakeQueueReceipt(t, team, q, r, now, res)
	}
	changed := false
	for _, mid := range r.Messages {
		m, err := outsiderQueueMessage(t, q, mid)
		if err != nil {
			return nil, err
		}
		if m == nil {
			continue // a staff reply, another conversation's, or unknown
		}
		added, err := addReadBy(t, m.ID, r.Reader, receiptTime(sentMS, m.Time, now))
		if err != nil {
			return nil, err
		}
		changed = changed || added
	}
	if changed {
		res.events = append(res.events, Event{Kind: EventQueue, Team: team.Name})
	}
	return nil, nil
}

// intakeQueueReceipt, on the intake, applies queue receipt r for
// conversation q: each of the outsider's messages it names that is still
// unread here is marked read, and unless this profile turned read
// receipts off (SetReadReceipts: the team's setting) the outsider's
// device that sent it is owed the ordinary read receipt, sent after the
// commit (flushTeams) with the outsider's own message IDs. The newest
// message read is kept for the team agent.
func (c *Client) intakeQueueReceipt(t *tx, team *store.TeamRecord, q *store.QueueRecord, r queue.Receipt, now time.Time, res *received) error {
	if len(q.Person) == 0 {
		return nil
	}
	devs, err := t.DevicesOf(q.Person)
	if err != nil {
		return err
	}
	set, err := t.receiptSettings()
	if err != nil {
		return err
	}
	direct := t.DirectConversationID(q.Person)
	type owed struct {
		dev []byte
		ids []byte
	}
	var due []*owed
	qChanged := false
	for _, mid := range r.Messages {
		var m *messageRecord
		for _, d := range devs {
			if m, err = t.MessageByID(localMessageID(fpOf(d.DeviceID), mid)); err != nil {
				return err
			}
			if m != nil && bytes.Equal(m.Conversation, direct) && !m.Outgoing && !m.Notice {
				break
			}
			m = nil
		}
		if m == nil {
			continue
		}
		if sent := uint64(max(m.Time.UnixMilli(), 0)); sent > q.ReadSent || q.ReadAt.IsZero() {
			q.ReadSent, q.ReadAt, qChanged = sent, now.UTC(), true
		}
		if !unread(m) {
			continue // read here already: its receipt went then
		}
		op := syncOp{Kind: syncRead, MS: stampMS(now, store.Stamp{})}
		if !messageIDBytes(m.ID, op.Msg[:]) {
			continue
		}
		if err := t.applySyncOp(&op, c.devID, now, c.log.Warn); err != nil {
			return err
		}
		if set.NoRead || len(m.Sender) == 0 {
			continue
		}
		var o *owed
		for _, x := range due {
			if bytes.Equal(x.dev, m.Sender) {
				o = x
			}
		}
		if o == nil {
			o = &owed{dev: m.Sender}
			due = append(due, o)
		}
		o.ids = append(o.ids, mid[:]...)
	}
	if qChanged {
		if err := t.PutQueue(q); err != nil {
			return err
		}
	}
	if len(due) == 0 {
		return nil
	}
	for _, o := range due {
		team.Outgoing = append(team.Outgoing, store.TeamOutgoing{Kind: outRead, Conversation: bytes.Clone(q.Conversation),
			Person: bytes.Clone(q.Person), Device: bytes.Clone(o.dev), Content: o.ids})
	}
	res.teams = true
	return t.PutTeam(team)
}

// sendQueueRead sends the outsider the read receipt the intake owes for
// o: the ordinary receipt of section 9, from the team. A failure other
// than an unreachable relay (the receipt then waits in the outbox) is
// logged and the receipt dropped, as for any read receipt.
func (c *Client) sendQueueRead(ctx context.Context, o *store.TeamOutgoing) {
	if len(o.Content) == 0 || len(o.Content)%msgIDSize != 0 {
		c.log.Warn("dropped a recorded read receipt that does not parse")
		return
	}
	ids := make([][msgIDSize]byte, len(o.Content)/msgIDSize)
	for i := range ids {
		copy(ids[i][:], o.Content[i*msgIDSize:])
	}
	if err := c.sendReceipt(ctx, o.Device, receiptRead, ids); err != nil {
		c.log.Info("could not send a read receipt for the team", "messages", len(ids), "err", err)
	}
}

// queueReads is how this device shows the readers of m (QueueThread).
func (c *Client) queueReads(t *tx, s *group.State, m *messageRecord) ([]QueueRead, error) {
	var out []QueueRead
	for _, r := range m.ReadBy {
		name, err := c.staffName(t, s, fpOf(r.Identity))
		if err != nil {
			return nil, err
		}
		out = append(out, QueueRead{By: name, At: r.At})
	}
	return out, nil
}
