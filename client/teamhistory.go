package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/group"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/client/internal/team/stats"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Queue history (protocol/SPEC.md 15.9 "Queue history"). A staff device
// that joins the staff group (a new staff member's, after AddStaff, or
// any device admitted later) receives the team's later messages through
// the group, not the earlier ones. So when the intake admits it, it
// records the device in the team record (in the transaction that stores
// the state listing it joined), and at the next flush sends it, in its
// pairwise session only, every open conversation: the register as the
// relay holds it and the messages the intake holds, in as many contents
// as the limits need. A send that fails is tried again at the next
// flush; the receiver stores it idempotently.

// maxHistoryTries bounds the failed sends of the history to one device:
// then it is given up (logged).
const maxHistoryTries = 8

// noteNewStaffDevices, on a team's intake, records in the team record the
// staff devices that next lists joined and held did not (a device that
// joined, or joined again with another mailbox), for flushHistory. It runs
// in the transaction that stores next and reports whether it recorded any.
func (c *Client) noteNewStaffDevices(t *tx, held, next *group.State) (bool, error) {
	team, err := t.Team(t.GroupConversationID(next.Group[:]))
	if err != nil || team == nil || !team.Intake {
		return false, err
	}
	added := false
	for _, m := range next.Members {
		if bytes.Equal(m.Identity[:], team.IntakeIdentity) {
			continue // the team person's own devices hold the conversations themselves
		}
		for _, d := range m.Devices {
			if !d.Joined {
				continue
			}
			if held != nil {
				if _, hd := held.Device(d.ID); hd != nil && hd.Joined && hd.Mailbox == d.Mailbox {
					continue
				}
			}
			if slices.ContainsFunc(team.History, func(h store.TeamHistory) bool { return bytes.Equal(h.Device, d.ID[:]) }) {
				continue
			}
			team.History = append(team.History, store.TeamHistory{Device: bytes.Clone(d.ID[:]), Identity: bytes.Clone(m.Identity[:])})
			added = true
		}
	}
	if !added {
		return false, nil
	}
	return true, t.PutTeam(team)
}

// flushHistory sends the queue history to each staff device team owes it
// to; the caller holds teamMu. A device no longer listed joined is
// dropped; one the send fails for is tried again at the next flush (at
// most maxHistoryTries times).
func (c *Client) flushHistory(ctx context.Context, team *store.TeamRecord) {
	if len(team.History) == 0 {
		return
	}
	convs, err := c.historySnapshot(ctx, team)
	if err != nil {
		c.log.Warn("could not read the team's open conversations yet; will retry", "err", err)
		return
	}
	var g [16]byte
	copy(g[:], team.Group)
	bodies, skipped := historyBodies(g, convs)
	if skipped > 0 {
		c.log.Info("left messages too large out of a queue history", "count", skipped)
	}
	for _, h := range team.History {
		err := c.sendHistory(ctx, team, h, bodies)
		sent := err == nil
		if err != nil {
			c.log.Warn("could not send the open conversations to a new staff device yet; will retry", "err", err)
		}
		if uerr := c.st.update(func(t *tx) error {
			r, err := t.Team(team.ID)
			if err != nil || r == nil {
				return err
			}
			i := slices.IndexFunc(r.History, func(x store.TeamHistory) bool { return bytes.Equal(x.Device, h.Device) })
			if i < 0 {
				return nil
			}
			done := sent
			if !sent {
				r.History[i].Tries++
				if done = r.History[i].Tries >= maxHistoryTries; done {
					c.log.Warn("gave up sending the open conversations to a staff device")
				}
			}
			if done {
				r.History = slices.Delete(r.History, i, i+1)
			}
			return t.PutTeam(r)
		}); uerr != nil {
			c.log.Warn("could not record a history as sent", "err", uerr)
			return
		}
	}
}

// sendHistory sends bodies to the staff device h names, if the staff
// group still lists it joined for the same person; nil also when it does
// not (nothing to send it to).
func (c *Client) sendHistory(ctx context.Context, team *store.TeamRecord, h store.TeamHistory, bodies []*queueHistory) error {
	var r *contactRecord
	err := c.st.view(func(t *tx) error {
		grec, err := t.Group(team.ID)
		if err != nil || grec == nil || grec.Removed {
			return err
		}
		s, err := groupOf(grec)
		if err != nil {
			return err
		}
		dev := fpOf(h.Device)
		m, d := s.Device(dev)
		if m == nil || !d.Joined || !bytes.Equal(m.Identity[:], h.Identity) {
			return nil
		}
		recs, err := c.groupDevices(t, s, []keys.Fingerprint{dev})
		if len(recs) > 0 {
			r = recs[0]
		}
		return err
	})
	if err != nil {
		return err
	}
	if r == nil {
		c.log.Info("dropped a history for a device that is no longer on the staff")
		return nil
	}
	// The team's secrets first, in the same session: a history is taken
	// only by a device that holds them, and a device that joined without
	// AddStaff (or whose secrets were lost on the way) has none. One that
	// holds them already ignores them (not a newer count).
	sec := c.teamSecretsContent(team)
	copy(sec.MsgID[:], randomID(msgIDSize))
	if err := c.sendSession(ctx, r, sec); err != nil && !errors.Is(err, ErrQueued) {
		return err
	}
	for _, b := range bodies {
		ct := &content{Type: contentQueueHistory, Sender: c.devID, SentMS: uint64(c.now().UnixMilli()), Team: &teamContent{History: b}}
		copy(ct.MsgID[:], randomID(msgIDSize))
		// Queued (the relay unreachable) is sent: the outbox holds the
		// sealed envelope and delivers it.
		if err := c.sendSession(ctx, r, ct); err != nil && !errors.Is(err, ErrQueued) {
			return err
		}
	}
	return nil
}

// historySnapshot is team's open conversations, oldest message first in
// each, in ascending order of conversation ID. Each register is read
// from the relay first (kept if newer than the one held): a claim
// announced to the staff group may not have reached the intake yet.
func (c *Client) historySnapshot(ctx context.Context, team *store.TeamRecord) ([]queueHistoryConv, error) {
	var targets []*queueTarget
	err := c.st.view(func(t *tx) error {
		qs, err := t.Queues(team.Group)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if len(q.Person) == 0 {
				continue
			}
			qt := &queueTarget{q: q}
			copy(qt.conv[:], q.Conversation)
			if err := c.completeTarget(t, qt); err != nil {
				return err
			}
			targets = append(targets, qt)
		}
		return nil
	})
	if err != nil || len(targets) == 0 {
		return nil, err
	}
	write, err := protocol.CapabilityTokenFromBytes(team.WriteCap)
	if err != nil {
		return nil, errStoreCorrupt
	}
	var open []*queueTarget
	for _, qt := range targets {
		st, err := c.getClaim(ctx, qt, write, qt.space.Token(qt.conv))
		if err != nil {
			return nil, err
		}
		if st.Version > qt.q.Version {
			view := queue.NewView()
			if _, _, err := qt.space.Learn(view, qt.conv, st.Version, st.Value); err != nil {
				c.log.Info("a queue register read does not open; the one held goes", "err", err)
			} else if err := c.keepRegister(qt, view); err != nil {
				return nil, err
			}
		}
		v := queue.Initial(qt.q.Opened, qt.q.Urgent)
		if qt.q.Version > 0 {
			if v, err = qt.space.Open(qt.conv, qt.q.Sealed); err != nil {
				return nil, fmt.Errorf("client: a queue register held: %w", err)
			}
		}
		if !v.State.Closed() && checkName(qt.q.Outsider) == nil {
			open = append(open, qt)
		}
	}
	out := make([]queueHistoryConv, 0, len(open))
	err = c.st.view(func(t *tx) error {
		byConv := map[string]int{} // the outsider's direct conversation → its index in out
		for _, qt := range open {
			hc := queueHistoryConv{Conversation: qt.conv, Outsider: qt.q.Outsider, Opened: min(qt.q.Opened, queue.MaxTime), Urgent: qt.q.Urgent, Role: queueRole(qt.q)}
			if qt.q.Version > 0 {
				hc.Version, hc.Sealed = qt.q.Version, qt.q.Sealed
			}
			byConv[string(t.DirectConversationID(qt.q.Person))] = len(out)
			out = append(out, hc)
		}
		return t.Messages(func(r *messageRecord) error {
			i, ok := byConv[string(r.Conversation)]
			if !ok {
				return nil
			}
			if m, ok := c.historyMessageOf(r); ok {
				out[i].Messages = append(out[i].Messages, m)
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		ms := out[i].Messages
		slices.SortStableFunc(ms, func(a, b queueHistoryMsg) int { return cmpUint(a.Message.SentMS, b.Message.SentMS) })
		if len(ms) > maxHistoryThread {
			ms = ms[len(ms)-maxHistoryThread:]
		}
		out[i].Messages = ms
	}
	slices.SortFunc(out, func(a, b queueHistoryConv) int { return bytes.Compare(a.Conversation[:], b.Conversation[:]) })
	return out, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// historyMessageOf is a message of the intake's conversation with an
// outsider as a history carries it: the outsider's (incoming) or the
// team's (outgoing: a staff reply the intake forwarded, or the team
// person's own). Notices, recalled, disappearing and unsent messages are
// left out.
func (c *Client) historyMessageOf(r *messageRecord) (queueHistoryMsg, bool) {
	var hm queueHistoryMsg
	if r.Notice || !r.Recalled.IsZero() || !r.Expires.IsZero() || r.SendError != "" || len(r.Attachments) > MaxAttachments {
		return hm, false
	}
	id, err := hex.DecodeString(r.ID)
	if err != nil || len(id) != replyIDSize {
		return hm, false
	}
	copy(hm.ID[:], id)
	hm.Kind = historyOutsider
	if r.Outgoing {
		hm.Kind = historyTeam
	}
	in := &content{Type: contentText, Sender: c.devID, SentMS: uint64(min(max(r.Time.UnixMilli(), 0), queue.MaxTime)),
		Text: r.Text, Subject: r.Subject, Urgent: r.Urgent}
	if r.Outgoing && len(r.Staff) == len(in.Sender) {
		// A staff reply: its sender ID names the staff member who wrote
		// it (SPEC 15.9 "Queue history"), which a receiver shows as the
		// live reply's author; a client that predates it ignores it.
		in.Sender = keys.Fingerprint(r.Staff)
	}
	copy(in.MsgID[:], r.ContentID)
	for i := range r.Attachments {
		a, err := attachmentRefOf(&r.Attachments[i])
		if err != nil {
			return hm, false
		}
		in.Attachments = append(in.Attachments, a)
	}
	headers := in.Subject != "" || in.Urgent
	switch {
	case len(in.Attachments) > 0 && headers:
		in.Type = contentAttachmentHeaders
	case len(in.Attachments) > 0:
		in.Type = contentAttachment
	case headers:
		in.Type = contentTextHeaders
	}
	hm.Message = in
	return hm, true
}

// historyBodies cuts convs into history bodies within the limits: at
// most maxHistoryConversations conversations and maxHistoryMessages
// messages of each per body, at most maxHistorySize bytes; a
// conversation whose messages do not fit one body goes on in the next.
// A message too large for a body of its own is left out (counted in
// skipped).
func historyBodies(g [16]byte, convs []queueHistoryConv) (bodies []*queueHistory, skipped int) {
	const base = 16 + 1 // group ID, count
	var (
		cur  = &queueHistory{Group: g}
		size = base
	)
	next := func() {
		if len(cur.Conversations) > 0 {
			bodies = append(bodies, cur)
		}
		cur, size = &queueHistory{Group: g}, base
	}
	for _, hc := range convs {
		head := 16 + 1 + len(hc.Outsider) + 8 + 1 + 8 + len(hc.Sealed) + 1
		if hc.Role != ([16]byte{}) {
			head += len(hc.Role)
		}
		entry := hc
		entry.Messages = nil
		if len(cur.Conversations) == maxHistoryConversations || size+head > maxHistorySize {
			next()
		}
		cur.Conversations = append(cur.Conversations, entry)
		size += head
		for _, m := range hc.Messages {
			b, err := m.Message.appendUnsigned(nil)
			if err != nil || base+head+1+replyIDSize+4+len(b) > maxHistorySize {
				skipped++
				continue
			}
			n := 1 + replyIDSize + 4 + len(b)
			e := &cur.Conversations[len(cur.Conversations)-1]
			if len(e.Messages) == maxHistoryMessages || size+n > maxHistorySize {
				next()
				cur.Conversations = append(cur.Conversations, entry)
				size += head
				e = &cur.Conversations[0]
			}
			e.Messages = append(e.Messages, m)
			size += n
		}
	}
	next()
	return bodies, skipped
}

// receiveQueueHistory takes a queue history from device from, in the
// receive transaction: only from a device of the team's intake person
// (as the team's secrets, receiveTeamSecrets), for a team this device
// holds the secrets of. Every register must open under the team's keys
// for its conversation, or nothing is taken; a register is taken only
// above the version held, and a message stored already is not stored
// again.
func (c *Client) receiveQueueHistory(t *tx, from *contactRecord, ct *content, now time.Time, res *received) error {
	h := ct.Team.History
	gconv := t.GroupConversationID(h.Group[:])
	team, err := t.Team(gconv)
	if err != nil {
		return err
	}
	grec, err := t.Group(gconv)
	if err != nil {
		return err
	}
	if team == nil || team.Intake || grec == nil || grec.Removed {
		c.log.Info("dropped a queue history for a team this device does not hold")
		return nil
	}
	gs, err := groupOf(grec)
	if err != nil {
		return err
	}
	sender := fpOf(from.Person.Identity)
	if from.Person.Self || !bytes.Equal(sender[:], team.IntakeIdentity) || !gs.IsAdmin(sender) || gs.Member(c.idFP) == nil {
		c.log.Info("dropped a queue history from a device that is not the team's intake")
		return nil
	}
	sp, err := spaceOf(team)
	if err != nil {
		return err
	}
	regs := make([]queue.Register, len(h.Conversations))
	for i, hc := range h.Conversations {
		if regs[i], err = sp.OpenRegister(hc.Conversation, hc.Version, hc.Sealed, queue.Initial(hc.Opened, hc.Urgent)); err != nil {
			c.log.Info("dropped a queue history whose register does not open", "err", err)
			return nil
		}
	}
	changed := false
	for i, hc := range h.Conversations {
		q, err := c.queueRecord(t, team, hc.Conversation, now)
		if err != nil {
			return err
		}
		if q.Opened == 0 {
			q.Opened, q.Urgent = hc.Opened, hc.Urgent
		}
		if q.Outsider == "" {
			q.Outsider = hc.Outsider
		}
		if len(q.Role) == 0 && hc.Role != ([16]byte{}) {
			q.Role = bytes.Clone(hc.Role[:]) // roles.go
			res.roles = true
		}
		took := hc.Version > q.Version
		if took {
			q.Version, q.Sealed = hc.Version, bytes.Clone(hc.Sealed)
		}
		if err := t.PutQueue(q); err != nil {
			return err
		}
		if took {
			changed = true
			if err := c.keepRegisterEvents(t, [16]byte(team.Group), stats.Token(sp.Token(hc.Conversation)), regs[i].Value, now); err != nil {
				return err
			}
		}
		for _, hm := range hc.Messages {
			in := hm.Message
			var atts []attachmentRecord
			if in.Type == contentAttachment || in.Type == contentAttachmentHeaders {
				atts = attachmentRecords(in.Attachments)
			}
			m := &Message{
				ID: hex.EncodeToString(hm.ID[:]), From: q.Outsider, To: team.Name, Text: in.Text, Subject: in.Subject, Urgent: in.Urgent,
				Attachments: publicAttachments(atts), Time: time.UnixMilli(int64(min(in.SentMS, 1<<62))).UTC(), Received: now,
				contentID: bytes.Clone(in.MsgID[:]),
			}
			if hm.Kind == historyTeam {
				m.From, m.To = team.Name, q.Outsider
				// The staff member who wrote it, when the intake names one
				// the staff group lists (not the team person): as a live
				// reply shows it.
				if w := in.Sender; !bytes.Equal(w[:], team.IntakeIdentity) && gs.Member(w) != nil {
					if m.From, err = c.staffName(t, gs, w); err != nil {
						return err
					}
					m.Outgoing = w == c.idFP
				}
			}
			stored, err := storeQueueMessage(t, q, m, atts)
			if err != nil {
				return err
			}
			changed = changed || stored
		}
	}
	if changed {
		res.events = append(res.events, Event{Kind: EventQueue, Team: team.Name})
	}
	return nil
}
