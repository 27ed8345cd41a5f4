package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Team intake and the queue's conversations (protocol/SPEC.md 15.9). The
// intake device forwards each message an outsider sends the team person
// into the staff group (contentQueueMessage); staff devices keep it in
// the queue conversation; staff replies (contentQueueReply) go to the
// staff group, and the intake forwards them to the outsider. What the
// intake has to send is recorded in the team record in the receive
// transaction and sent after it (flushTeams), so a crash or an
// unreachable relay delays it and does not lose it.

// Kinds of store.TeamOutgoing.
const (
	outForward = 1 // a patient's message, into the staff group
	outReply   = 2 // a staff reply, to the patient
	outBlock   = 3 // a staff request: restrict the outsider (Sent holds the level)
	outUnblock = 4 // a staff request: lift the restriction
	outRead    = 5 // a read receipt to the outsider's device (queuereceipts.go)
)

// QueueFilter selects the conversations Queue lists.
type QueueFilter int

const (
	QueueAll       QueueFilter = iota // every conversation
	QueueUnclaimed                    // new: nobody owns it
	QueueMine                         // owned by this person
)

// QueueItem is one queue conversation as this device knows it.
type QueueItem struct {
	ID           string // the conversation's team-wide ID, 32 hex digits
	Team         string
	Conversation string // its conversation in the store (Message.Conversation)
	Outsider     string // who it is with, as the intake named them
	State        string // new, claimed, assigned, resolved, archived
	Owner        string // the owner's name (Me for this person), "" if none
	AssignedBy   string
	Urgent       bool
	Opened       time.Time // the patient's message that opened (or reopened) it
	// FirstResponse is when staff first answered since then (zero: not
	// yet).
	FirstResponse time.Time
	Reopens       int
	Version       uint64 // of its register
	Messages      int
	// Role is the role account the conversation is addressed to (its
	// name in the organisation directory; roles.go), "" if none.
	Role string
}

// Queue returns team's conversations that filter selects: urgent first,
// then the longest waiting (oldest opened) first.
func (c *Client) Queue(team string, filter QueueFilter) ([]QueueItem, error) {
	var out []QueueItem
	err := c.st.view(func(t *tx) error {
		rec, err := t.lookupTeam(team)
		if err != nil {
			return err
		}
		qs, err := t.Queues(rec.Group)
		if err != nil {
			return err
		}
		counts, err := queueCounts(t)
		if err != nil {
			return err
		}
		for _, q := range qs {
			qt := &queueTarget{q: q}
			copy(qt.conv[:], q.Conversation)
			if err := c.completeTarget(t, qt); err != nil {
				return err
			}
			it, v, err := c.itemOf(t, qt)
			if err != nil {
				return err
			}
			it.Messages = counts[string(q.ID)]
			switch {
			case filter == QueueUnclaimed && v.State != queue.New:
			case filter == QueueMine && !(v.State.Open() && v.Owner == c.idFP):
			default:
				out = append(out, it)
			}
		}
		return nil
	})
	slices.SortStableFunc(out, func(a, b QueueItem) int {
		if a.Urgent != b.Urgent {
			if a.Urgent {
				return -1
			}
			return 1
		}
		return a.Opened.Compare(b.Opened)
	})
	return out, err
}

// queueCounts counts the stored messages of every conversation.
func queueCounts(t *tx) (map[string]int, error) {
	n := map[string]int{}
	err := t.Messages(func(r *messageRecord) error {
		n[string(r.Conversation)]++
		return nil
	})
	return n, err
}

func (c *Client) queueItem(id string) (QueueItem, error) {
	qt, err := c.loadQueue(id)
	if err != nil {
		return QueueItem{}, err
	}
	var it QueueItem
	err = c.st.view(func(t *tx) error {
		var err error
		if it, _, err = c.itemOf(t, qt); err != nil {
			return err
		}
		counts, err := queueCounts(t)
		it.Messages = counts[string(qt.q.ID)]
		return err
	})
	return it, err
}

// itemOf describes qt's conversation from its register.
func (c *Client) itemOf(t *tx, qt *queueTarget) (QueueItem, queue.Value, error) {
	v := queue.Initial(qt.q.Opened, qt.q.Urgent)
	if qt.q.Version > 0 {
		var err error
		if v, err = qt.space.Open(qt.conv, qt.q.Sealed); err != nil {
			return QueueItem{}, v, fmt.Errorf("client: a queue register held: %w", err)
		}
	}
	it := QueueItem{
		ID: hex.EncodeToString(qt.q.Conversation), Team: qt.team.Name, Conversation: hex.EncodeToString(qt.q.ID),
		Outsider: qt.q.Outsider, State: v.State.String(), Urgent: v.Urgent, Reopens: int(v.Reopens), Version: qt.q.Version,
		Opened: time.UnixMilli(int64(v.Opened)).UTC(),
	}
	if v.FirstResponse != 0 {
		it.FirstResponse = time.UnixMilli(int64(v.FirstResponse)).UTC()
	}
	var err error
	if it.Owner, err = c.staffName(t, qt.state, v.Owner); err != nil {
		return it, v, err
	}
	if it.AssignedBy, err = c.staffName(t, qt.state, v.AssignedBy); err != nil {
		return it, v, err
	}
	it.Role, err = c.roleName(t, qt.q.Role)
	return it, v, err
}

// staffName is how this device shows the staff member id ("" for none).
func (c *Client) staffName(t *tx, s *group.State, id keys.Fingerprint) (string, error) {
	switch {
	case id == (keys.Fingerprint{}):
		return "", nil
	case id == c.idFP:
		return Me, nil
	}
	if m := s.Member(id); m != nil {
		one := *m
		one.Role = group.RoleMember
		return c.memberName(t, s, &one)
	}
	p, err := t.personByIdentity(id)
	if err != nil || p == nil {
		return "former staff member", err
	}
	return p.Name, nil
}

// QueueThread returns the messages of queue conversation id, oldest
// first: the patient's, forwarded by the intake, and the staff replies.
func (c *Client) QueueThread(id string) ([]Message, error) {
	qt, err := c.loadQueue(id)
	if err != nil {
		return nil, err
	}
	var out []Message
	err = c.st.view(func(t *tx) error {
		return t.Messages(func(r *messageRecord) error {
			if !bytes.Equal(r.Conversation, qt.q.ID) {
				return nil
			}
			m := c.messageFromRecord(r)
			var err error
			m.ReadBy, err = c.queueReads(t, qt.state, r)
			out = append(out, m)
			return err
		})
	})
	slices.SortStableFunc(out, func(a, b Message) int { return a.Time.Compare(b.Time) })
	return out, err
}

// ReplyQueue answers the patient of queue conversation id with text and
// files (either may be empty, not both): a group message to the staff,
// which the intake forwards to the patient, from the team. Files are
// uploaded once to this device's relay and travel as references.
func (c *Client) ReplyQueue(ctx context.Context, id, text string, paths []string) (Message, error) {
	srcs := make([]fileSource, len(paths))
	for i, p := range paths {
		srcs[i] = fileSource{path: p}
	}
	return c.replyQueue(ctx, id, text, srcs)
}

// ReplyQueueData is ReplyQueue for files that are not on the file system
// as plaintext (as SendData is for SendFiles): the web app's uploads.
func (c *Client) ReplyQueueData(ctx context.Context, id, text string, files []FileData) (Message, error) {
	srcs := make([]fileSource, len(files))
	for i := range files {
		f := files[i]
		srcs[i] = fileSource{data: &f}
	}
	return c.replyQueue(ctx, id, text, srcs)
}

func (c *Client) replyQueue(ctx context.Context, id, text string, srcs []fileSource) (Message, error) {
	if len(text) > MaxTextSize {
		return Message{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, len(text), MaxTextSize)
	}
	if !utf8.ValidString(text) || (text == "" && len(srcs) == 0) {
		return Message{}, ErrInvalidText
	}
	if len(srcs) > MaxAttachments {
		return Message{}, fmt.Errorf("%w: %d files, limit %d", ErrTooManyFiles, len(srcs), MaxAttachments)
	}
	qt, err := c.loadQueue(id)
	if err != nil {
		return Message{}, err
	}
	if m := qt.state.Member(c.idFP); m == nil || !m.Role.MaySend() {
		return Message{}, ErrNotStaff
	}
	now := c.now()
	inner := &content{Type: contentText, Sender: c.devID, SentMS: uint64(now.UnixMilli()), Text: text}
	var refs []attachmentRef
	for _, src := range srcs {
		ref, err := c.uploadFile(ctx, src, &SendOptions{})
		if err != nil {
			c.releaseBlobs(ctx, refs)
			return Message{}, err
		}
		refs = append(refs, ref)
	}
	if len(refs) > 0 {
		inner.Type, inner.Attachments = contentAttachment, refs
	}
	copy(inner.MsgID[:], randomID(msgIDSize))
	ct := &content{Type: contentQueueReply, Sender: c.devID, SentMS: inner.SentMS, Team: &teamContent{Conversation: qt.conv}, Inner: inner}
	atts := attachmentRecords(refs)
	m := Message{
		ID: localMessageID(c.devID, inner.MsgID), From: Me, To: qt.q.Outsider, Text: text, Outgoing: true,
		Time: time.UnixMilli(int64(inner.SentMS)).UTC(), Received: now.UTC(), Attachments: publicAttachments(atts),
	}
	err = c.sendTeamGroup(ctx, qt.team.Group, ct, func(t *tx) error {
		q, err := t.Queue(qt.q.ID)
		if err != nil || q == nil {
			return errors.Join(err, ErrUnknownQueueItem)
		}
		_, err = storeQueueMessage(t, q, &m, atts)
		return err
	})
	if err != nil {
		if m.Conversation == "" {
			c.releaseBlobs(ctx, refs)
		}
		return m, err
	}
	// The first answer since the conversation was (re)opened is its
	// first response (queue.Respond): written once, whoever answers.
	if me, err := actorOf(qt.state, c.idFP); err == nil {
		at := uint64(m.Time.UnixMilli())
		err := c.queueWrite(ctx, qt, queue.OpRespond, func(v queue.Value) (queue.Value, error) {
			n, err := queue.Respond(v, me, at)
			if errors.Is(err, queue.ErrState) {
				return queue.Value{}, queue.ErrNoChange // a closed one: the reply went, nothing to record
			}
			return n, err
		})
		if err != nil {
			c.log.Info("could not record a queue conversation's first response", "err", err)
		}
	}
	return m, nil
}

// storeQueueMessage stores m in queue conversation q; it reports whether
// it stored (false: a message with its ID is stored already).
func storeQueueMessage(t *tx, q *store.QueueRecord, m *Message, atts []attachmentRecord) (bool, error) {
	m.Conversation = hex.EncodeToString(q.ID)
	r := &messageRecord{
		ID: m.ID, Conversation: q.ID, From: m.From, To: m.To, Text: m.Text, Subject: m.Subject, Urgent: m.Urgent,
		Time: m.Time, Received: m.Received, Outgoing: m.Outgoing, Attachments: atts, ContentID: m.contentID,
	}
	if m.relayed {
		r.Mailbox, r.Envelope = m.mailbox[:], m.envelope[:]
	}
	stored, err := t.AddMessage(r)
	if err != nil || !stored {
		return stored, err
	}
	m.Read, m.ReadAt = r.Read || !unread(r), r.ReadAt
	m.Folder, err = t.shownFolder(r)
	return true, err
}

// sendTeamGroup seals ct for the staff group gid with this device's
// sender key, runs also (if not nil) in the same transaction, and
// uploads the envelope once to the group's fan-out list.
func (c *Client) sendTeamGroup(ctx context.Context, gid []byte, ct *content, also func(*tx) error) error {
	copy(ct.MsgID[:], randomID(msgIDSize))
	plain, err := groupPlaintext(ct)
	if err != nil {
		return err
	}
	var (
		env []byte
		s   *group.State
	)
	c.ev.order.Lock()
	err = c.st.update(func(t *tx) error {
		rec, err := t.Group(t.GroupConversationID(gid))
		if err != nil {
			return err
		}
		if rec == nil || rec.Removed {
			return ErrNotStaff
		}
		if s, err = groupOf(rec); err != nil {
			return err
		}
		if me := s.Member(c.idFP); me == nil || !me.Role.MaySend() {
			return ErrNotStaff
		}
		if env, err = c.sealGroupEnvelope(t, rec, s, plain, ErrNotStaff); err != nil {
			return err
		}
		if also != nil {
			return also(t)
		}
		return nil
	})
	c.ev.order.Unlock()
	if err != nil {
		return err
	}
	if h := c.envelopeHook.Load(); h != nil {
		(*h)(true, env)
	}
	send, err := protocol.CapabilityTokenFromBytes(s.SendCap[:])
	if err != nil {
		return errStoreCorrupt
	}
	resp, err := c.anonRequest(ctx, s.Relay, groupConnKey(s.Group), &protocol.SendFanout{Fanout: s.Fanout, Capability: send, Envelope: env})
	if err == nil {
		if _, ok := resp.(*protocol.FanoutSent); !ok {
			err = unexpected(resp)
		}
	}
	if err != nil {
		return fmt.Errorf("client: send to the team's staff: %w", err)
	}
	return nil
}

// receiveTeamGroup handles a team content that arrived in the staff
// group's envelope from member mem's device, inside the receive
// transaction. It returns the message stored (nil if none) or the reason
// to drop the envelope.
func (c *Client) receiveTeamGroup(t *tx, grec *store.GroupRecord, s *group.State, mem *group.Member, ct *content,
	mb protocol.MailboxID, envID protocol.EnvelopeID, now time.Time, res *received) (*Message, error, error) {
	team, err := t.Team(grec.ID)
	if err != nil {
		return nil, nil, err
	}
	if team == nil {
		c.log.Info("dropped a team message: this device holds no secrets of the team")
		return nil, nil, nil
	}
	tc := ct.Team
	fromIntake := bytes.Equal(mem.Identity[:], team.IntakeIdentity)
	switch ct.Type {
	case contentQueueChange:
		took, err := c.receiveQueueChange(t, team, tc, now)
		if took && err == nil {
			res.events = append(res.events, Event{Kind: EventQueue, Team: team.Name})
			// A closed conversation's reply routes are dropped (teamroutes.go).
			res.teams = res.teams || len(team.Outgoing) > 0
		}
		return nil, nil, err
	case contentQueueMessage:
		if !fromIntake {
			c.log.Info("dropped a queue message that did not come from the intake")
			return nil, errGroupObserver, nil
		}
		if team.Intake {
			return nil, nil, nil // its own forward: the intake keeps the direct conversation
		}
		q, err := c.queueRecord(t, team, tc.Conversation, now)
		if err != nil {
			return nil, nil, err
		}
		in := ct.Inner
		if q.Opened == 0 {
			q.Opened, q.Urgent = min(in.SentMS, queue.MaxTime), in.Urgent
		}
		q.Outsider, q.Last = tc.Name, now
		if c.noteQueueRole(q, tc) { // roles.go
			res.roles = true
		}
		if !slices.ContainsFunc(q.Senders, func(s []byte) bool { return bytes.Equal(s, in.Sender[:]) }) {
			// The outsider's device: a queue receipt names this message
			// by its content message ID (queuereceipts.go).
			q.Senders = append(q.Senders, bytes.Clone(in.Sender[:]))
		}
		if err := t.PutQueue(q); err != nil {
			return nil, nil, err
		}
		m := c.queueMessageOf(in, tc.Name, team.Name, mb, envID, now)
		return c.storeReceivedQueue(t, q, m, in)
	case contentQueueReply:
		id := t.QueueConversationID(team.Group, tc.Conversation[:])
		q, err := t.Queue(id)
		if err != nil {
			return nil, nil, err
		}
		if q == nil {
			c.log.Info("dropped a queue reply in a conversation this device does not hold")
			return nil, nil, nil
		}
		if team.Intake {
			if mem.Identity == c.idFP {
				return nil, nil, nil
			}
			b, err := ct.Inner.appendUnsigned(nil)
			if err != nil {
				return nil, ErrDecrypt, nil
			}
			team.Outgoing = append(team.Outgoing, store.TeamOutgoing{Kind: outReply, Conversation: bytes.Clone(tc.Conversation[:]),
				Person: bytes.Clone(q.Person), Content: b, Actor: bytes.Clone(mem.Identity[:])})
			res.teams = true
			return nil, nil, t.PutTeam(team)
		}
		from, err := c.staffName(t, s, mem.Identity)
		if err != nil {
			return nil, nil, err
		}
		m := c.queueMessageOf(ct.Inner, from, q.Outsider, mb, envID, now)
		if mem.Identity == c.idFP {
			m.From, m.Outgoing = Me, true
		}
		q.Last = now
		if err := t.PutQueue(q); err != nil {
			return nil, nil, err
		}
		return c.storeReceivedQueue(t, q, m, ct.Inner)
	case contentQueueReceipt:
		drop, err := c.receiveQueueReceipt(t, team, mem, tc, ct.SentMS, now, res)
		return nil, drop, err
	case contentTeamRequest:
		if !team.Intake {
			return nil, nil, nil
		}
		q, err := t.Queue(t.QueueConversationID(team.Group, tc.Conversation[:]))
		if err != nil {
			return nil, nil, err
		}
		if q == nil || len(q.Person) == 0 {
			c.log.Info("dropped a team request for a conversation the intake does not hold")
			return nil, nil, nil
		}
		if tc.Op == teamExport {
			// A report: counted and logged in this transaction, nothing
			// to send.
			tok, err := conversationToken(team, tc.Conversation)
			if err != nil {
				return nil, nil, err
			}
			return nil, nil, c.keepExport(t, team, tok, exportEventID(tok, ct.Sender, ct.MsgID), mem.Identity, tc.Level, now)
		}
		o := store.TeamOutgoing{Kind: outUnblock, Conversation: bytes.Clone(tc.Conversation[:]), Person: bytes.Clone(q.Person),
			Actor: bytes.Clone(mem.Identity[:])}
		if tc.Op == teamBlock {
			o.Kind, o.Sent = outBlock, uint64(tc.Level)
		}
		team.Outgoing = append(team.Outgoing, o)
		res.teams = true
		return nil, nil, t.PutTeam(team)
	}
	return nil, ErrDecrypt, nil
}

// queueRecord returns the record of queue conversation conv of team, a
// new one (not stored) if there is none.
func (c *Client) queueRecord(t *tx, team *store.TeamRecord, conv queue.ConversationID, now time.Time) (*store.QueueRecord, error) {
	id := t.QueueConversationID(team.Group, conv[:])
	q, err := t.Queue(id)
	if err != nil || q != nil {
		return q, err
	}
	return &store.QueueRecord{ID: id, Team: bytes.Clone(team.Group), Conversation: bytes.Clone(conv[:]), Created: now.UTC(), Last: now.UTC()}, nil
}

func (c *Client) queueMessageOf(in *content, from, to string, mb protocol.MailboxID, envID protocol.EnvelopeID, now time.Time) *Message {
	var atts []attachmentRecord
	if in.Type == contentAttachment || in.Type == contentAttachmentHeaders {
		atts = attachmentRecords(in.Attachments)
	}
	return &Message{
		ID: localMessageID(in.Sender, in.MsgID), From: from, To: to, Text: in.Text, Subject: in.Subject, Urgent: in.Urgent,
		Attachments: publicAttachments(atts), Time: time.UnixMilli(int64(min(in.SentMS, 1<<62))).UTC(), Received: now,
		mailbox: mb, envelope: envID, relayed: true, contentID: bytes.Clone(in.MsgID[:]),
	}
}

func (c *Client) storeReceivedQueue(t *tx, q *store.QueueRecord, m *Message, in *content) (*Message, error, error) {
	var atts []attachmentRecord
	if in.Type == contentAttachment || in.Type == contentAttachmentHeaders {
		atts = attachmentRecords(in.Attachments)
	}
	stored, err := storeQueueMessage(t, q, m, atts)
	if err != nil || !stored {
		return nil, nil, err
	}
	return m, nil, nil
}

// intakeMessage, on a team's intake, records a message an outsider sent
// the team person (stored already as an ordinary message) for
// forwarding into the staff group. A staff member writing to the team
// person is not an outsider.
func (c *Client) intakeMessage(t *tx, from *contactRecord, ct *content, now time.Time, res *received) error {
	ts, err := t.Teams()
	if err != nil {
		return err
	}
	for _, team := range ts {
		if !team.Intake {
			continue
		}
		grec, err := t.Group(team.ID)
		if err != nil || grec == nil {
			return err
		}
		s, err := groupOf(grec)
		if err != nil {
			return err
		}
		id := fpOf(from.Person.Identity)
		if s.Member(id) != nil {
			return nil
		}
		conv := queueConversationOf(team.ClaimKey, id)
		q, err := c.queueRecord(t, team, conv, now)
		if err != nil {
			return err
		}
		if q.Opened == 0 {
			q.Opened, q.Urgent = min(ct.SentMS, queue.MaxTime), ct.Urgent
		}
		q.Outsider, q.Person, q.Last = from.Person.Name, bytes.Clone(from.Person.ID), now.UTC()
		if len(q.Role) == 0 {
			// Arrived through an invitation for a role account (roles.go).
			if q.Role, err = invitedRole(t, id); err != nil {
				return err
			}
		}
		if err := t.PutQueue(q); err != nil {
			return err
		}
		fwd := &content{Type: ct.Type, Sender: ct.Sender, MsgID: ct.MsgID, SentMS: ct.SentMS, Text: ct.Text,
			Attachments: ct.Attachments, Subject: ct.Subject, Urgent: ct.Urgent}
		b, err := fwd.appendUnsigned(nil)
		if err != nil {
			c.log.Info("could not forward a message to the team's staff", "err", err)
			return nil
		}
		team.Outgoing = append(team.Outgoing, store.TeamOutgoing{Kind: outForward, Conversation: bytes.Clone(conv[:]),
			Person: bytes.Clone(from.Person.ID), Content: b, Sent: min(ct.SentMS, queue.MaxTime), Urgent: ct.Urgent})
		noticeDue(team, q) // the team notice, once per outsider per version (teamnotice.go)
		res.teams = true
		return t.PutTeam(team)
	}
	return nil
}

// flushTeams sends, on a team's intake, what the receive transactions
// recorded: each item is dropped once it was sent (or can never be);
// the first that cannot be sent yet stops its team's flush until the next
// one.
func (c *Client) flushTeams(ctx context.Context) {
	c.teamMu.Lock()
	defer c.teamMu.Unlock()
	// Secrets owed a replacement first (teamrotate.go): a dropped staff
	// device writes registers until then.
	c.flushRotations(ctx)
	var teams []*store.TeamRecord
	if err := c.st.view(func(t *tx) error {
		ts, err := t.Teams()
		for _, r := range ts {
			if r.Intake && (len(r.Outgoing) > 0 || len(r.History) > 0 || r.NoticeDue) {
				teams = append(teams, r)
			}
		}
		return err
	}); err != nil {
		c.log.Warn("could not read the teams", "err", err)
		return
	}
	for _, team := range teams {
		if team.NoticeDue {
			// To the outsiders' relays, not the staff group's: sent
			// whatever happens to the forwards below.
			c.flushNotices(ctx, team)
		}
		for _, o := range team.Outgoing {
			if err := c.sendOutgoing(ctx, team, &o); err != nil {
				c.log.Warn("could not send a team's message yet; will retry", "err", err)
				break
			}
			if err := c.st.update(func(t *tx) error {
				r, err := t.Team(team.ID)
				if err != nil || r == nil || len(r.Outgoing) == 0 {
					return err
				}
				if first := r.Outgoing[0]; first.Kind == o.Kind && bytes.Equal(first.Content, o.Content) && bytes.Equal(first.Conversation, o.Conversation) {
					r.Outgoing = r.Outgoing[1:]
				}
				return t.PutTeam(r)
			}); err != nil {
				c.log.Warn("could not record a team's message as sent", "err", err)
				break
			}
		}
		// New staff devices' queue history (teamhistory.go), after the
		// forwards: what those put into the group reaches them either way.
		c.flushHistory(ctx, team)
	}
}

// errOutgoingGone marks an outgoing item that can never be sent (its
// outsider or conversation is gone): it is dropped.
var errOutgoingGone = errors.New("client: nothing to send it to")

// sendOutgoing sends one recorded item; nil also when it can never be
// sent (logged).
func (c *Client) sendOutgoing(ctx context.Context, team *store.TeamRecord, o *store.TeamOutgoing) error {
	var conv queue.ConversationID
	copy(conv[:], o.Conversation)
	var (
		q *store.QueueRecord
		r *contactRecord
	)
	err := c.st.view(func(t *tx) error {
		var err error
		if q, err = t.Queue(t.QueueConversationID(team.Group, conv[:])); err != nil || q == nil {
			return errors.Join(err, errOutgoingGone)
		}
		cs, err := t.contacts()
		for _, cr := range cs {
			if bytes.Equal(cr.Person.ID, o.Person) {
				r = cr
				break
			}
		}
		return err
	})
	if errors.Is(err, errOutgoingGone) {
		c.log.Info("dropped a team message whose conversation is gone")
		return nil
	}
	if err != nil {
		return err
	}
	if o.Kind == outRead {
		c.sendQueueRead(ctx, o)
		return nil
	}
	var inner *content
	if len(o.Content) > 0 {
		rd := protocol.NewReader(o.Content)
		in, ok := parseUnsigned(rd)
		if !ok || rd.Finish("message") != nil || !isMessageContent(in.Type) {
			c.log.Warn("dropped a recorded team message that does not parse")
			return nil
		}
		inner = in
	}
	switch o.Kind {
	case outForward:
		if err := c.reopenIfClosed(ctx, team, q, o.Sent, o.Urgent); err != nil {
			return err
		}
		ct := &content{Type: contentQueueMessage, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()),
			Team: &teamContent{Conversation: conv, Name: q.Outsider, Role: queueRole(q)}, Inner: inner}
		err := c.sendTeamGroup(ctx, team.Group, ct, nil)
		if err != nil && !retryLater(err) {
			// The relay refused the staff group's fan-out for good (its
			// send capability revoked, for one): a retry would be refused
			// too and would hold back every later forward.
			c.log.Warn("the relay refused to forward a message to the team's staff", "err", err)
			return c.keepDeliveryFailed(team, conv, o.Content)
		}
		return err
	case outReply:
		if r == nil {
			c.log.Info("dropped a staff reply to an outsider who is no longer a contact")
			return c.keepDeliveryFailed(team, conv, o.Content)
		}
		// The outsider's reply route comes first (teamroutes.go).
		if err := c.giveReplyRoutes(ctx, r); err != nil {
			return err
		}
		now := c.now()
		ct := &content{Type: contentText, Sender: c.devID, SentMS: uint64(now.UnixMilli()), Text: inner.Text}
		if len(inner.Attachments) > 0 {
			ct.Type, ct.Attachments = contentAttachment, inner.Attachments
		}
		copy(ct.MsgID[:], randomID(msgIDSize))
		atts := attachmentRecords(ct.Attachments)
		m := Message{
			ID: localMessageID(c.devID, ct.MsgID), From: Me, To: r.Person.Name, Text: ct.Text,
			Time: time.UnixMilli(int64(ct.SentMS)).UTC(), Received: now.UTC(), Outgoing: true, Attachments: publicAttachments(atts),
		}
		if len(o.Actor) == len(keys.Fingerprint{}) {
			m.staff = bytes.Clone(o.Actor) // who wrote it, for the queue history
		}
		err := c.sendSessionMessage(ctx, r, ct, &m, atts)
		if err != nil && !errors.Is(err, ErrQueued) {
			// Refused (the outsider blocked the team, for one): logged,
			// counted, not retried. One queued and given up later is
			// counted by the outbox (outboxGaveUp).
			c.log.Info("a staff reply could not be forwarded", "err", err)
			return c.keepDeliveryFailed(team, conv, o.Content)
		}
		return nil
	case outDropRoute:
		return c.dropReplyRoutes(ctx, team, q, r) // teamroutes.go
	case outBlock, outUnblock:
		if r == nil {
			return nil
		}
		actor := keys.Fingerprint(team.IntakeIdentity)
		if len(o.Actor) == len(actor) {
			actor = keys.Fingerprint(o.Actor)
		}
		// Carried out, then logged once in the team log, by the staff
		// member who asked.
		err = c.restrictFor(ctx, r.Person.Name, o.Kind == outBlock, Restriction(o.Sent), restrictionBy{team: hex.EncodeToString(team.Group), actor: actor})
		switch {
		case err == nil:
		case errors.Is(err, ErrUnknownContact), errors.Is(err, ErrContactBlocked), errors.Is(err, ErrRestrictionLevel):
			// It can never be carried out: dropped, logged.
			c.log.Info("a staff member's block request cannot be carried out", "err", err)
		default:
			// The relay could not be reached, or the connection closed
			// under it (a Sync replaces it): kept, and carried out at the
			// next flush, so that a block or its lifting is never lost.
			return err
		}
		return nil
	}
	return nil
}

// keepDeliveryFailed keeps a delivery-failed event (deliveryFailed) for
// an outgoing item whose content is content.
func (c *Client) keepDeliveryFailed(team *store.TeamRecord, conv queue.ConversationID, content []byte) error {
	sum := sha256.Sum256(content)
	return c.st.update(func(t *tx) error { return c.deliveryFailed(t, team, conv, sum[:], c.now()) })
}

// reopenIfClosed, on the intake, reads queue conversation q's register
// and, if it is resolved or archived, reopens it for the patient's new
// message sent at sent.
func (c *Client) reopenIfClosed(ctx context.Context, team *store.TeamRecord, q *store.QueueRecord, sent uint64, urgent bool) error {
	var qt *queueTarget
	err := c.st.view(func(t *tx) error {
		qt = &queueTarget{q: q}
		copy(qt.conv[:], q.Conversation)
		return c.completeTarget(t, qt)
	})
	if err != nil {
		return err
	}
	write, err := protocol.CapabilityTokenFromBytes(qt.team.WriteCap)
	if err != nil {
		return errStoreCorrupt
	}
	st, err := c.getClaim(ctx, qt, write, qt.space.Token(qt.conv))
	if err != nil {
		return err
	}
	if st.Version == 0 {
		return nil
	}
	view := queue.NewView()
	if _, _, err := qt.space.Learn(view, qt.conv, st.Version, st.Value); err != nil {
		return fmt.Errorf("client: a queue register: %w", err)
	}
	if err := c.keepRegister(qt, view); err != nil {
		return err
	}
	me, err := actorOf(qt.state, c.idFP)
	if err != nil {
		return err
	}
	if sent == 0 {
		sent = uint64(c.now().UnixMilli())
	}
	err = c.queueWrite(ctx, qt, queue.OpReopen, func(v queue.Value) (queue.Value, error) {
		if !v.State.Closed() {
			return queue.Value{}, queue.ErrNoChange
		}
		return queue.Reopen(v, me, sent, urgent)
	})
	return err
}
