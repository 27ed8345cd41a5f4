package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/client/internal/team/queue"
	"github.com/postern/postern/client/internal/team/stats"
	"github.com/postern/postern/keys"
)

// The team log (protocol/SPEC.md 15.8 "The team log"; 15.9 "The team
// log on the intake"): the intake keeps a hash-chained, content-free log
// of the exports staff report, the blocks it carries out, its staff
// changes and the agent's escalations. An entry names who acted by
// identity fingerprint and what it was about by a token, never by a name
// or content.

// TeamLogEntry is one entry of a team's log, as TeamLog returns it.
type TeamLogEntry struct {
	Seq  uint64
	Time time.Time
	// Kind is export, block, unblock, staff_added, staff_removed or
	// escalation; Detail what the kind says more (export: conversation
	// or message; block: new, replies or service; escalation: unclaimed,
	// unanswered or urgent_reminder), "" for none.
	Kind, Detail string
	// Actor is the identity of who acted (the team's own for its
	// agent's escalations and for what the intake did itself).
	Actor keys.Fingerprint
	// Subject is what it was about, 64 hex digits: a conversation token
	// (export, escalation, block and unblock: the outsider's conversation
	// with the team) or a staff member's identity fingerprint.
	Subject string
	Hash    string // the entry's chain hash, 64 hex digits
}

// TeamLog is a team's log, verified.
type TeamLog struct {
	Entries []TeamLogEntry
	// HeadSeq and HeadHash name the newest entry (0 and the log's start
	// hash when it is empty): keep them elsewhere to find a log cut or
	// rewritten later (SPEC 15.8 "What the log proves").
	HeadSeq  uint64
	HeadHash string
}

// appendTeamLog chains e to the log of the team whose staff group is gid,
// in transaction t.
func (c *Client) appendTeamLog(t *tx, gid []byte, e stats.Entry) error {
	team := stats.TeamID(gid)
	l := stats.NewLog(team)
	h, err := t.TeamLogHead(gid)
	if err != nil {
		return err
	}
	if h != nil {
		l = stats.ResumeLog(stats.Head{Seq: h.Seq, Hash: [sha256.Size]byte(h.Hash)})
	}
	r, err := l.Append(e)
	if err != nil {
		return err
	}
	b, err := r.MarshalBinary()
	if err != nil {
		return err
	}
	return t.AppendTeamLog(gid, r.Seq, b, r.Hash[:])
}

// TeamLog reads and verifies the log of team, on the team's own profile
// (ErrNotTeamAdmin elsewhere: the intake keeps it). A log that does not
// verify is an error wrapping the finding (stats' ErrLog…), with the
// entries read.
func (c *Client) TeamLog(team string) (TeamLog, error) {
	var (
		gid  []byte
		recs []stats.Record
	)
	err := c.st.view(func(t *tx) error {
		rec, err := t.lookupTeam(team)
		if err != nil {
			return err
		}
		if !rec.Intake {
			return ErrNotTeamAdmin
		}
		gid = rec.Group
		h, err := t.TeamLogHead(gid)
		if err != nil || h == nil {
			return err
		}
		if h.Seq > stats.MaxLogEntries {
			return errStoreCorrupt
		}
		for seq := uint64(1); seq <= h.Seq; seq++ {
			b, err := t.TeamLogRecord(gid, seq)
			if err != nil {
				return err
			}
			if b == nil {
				return fmt.Errorf("%w: entry %d of the team log is missing", stats.ErrLogRemoved, seq)
			}
			r, err := stats.ParseRecord(b)
			if err != nil {
				return fmt.Errorf("%w: entry %d: %v", stats.ErrLogEdited, seq, err)
			}
			recs = append(recs, r)
		}
		return nil
	})
	if err != nil {
		return TeamLog{}, err
	}
	var out TeamLog
	for _, r := range recs {
		e := r.Entry
		out.Entries = append(out.Entries, TeamLogEntry{Seq: r.Seq, Time: e.Time, Kind: e.Kind.String(), Detail: logDetail(e),
			Actor: keys.Fingerprint(e.Actor), Subject: hex.EncodeToString(e.Subject[:]), Hash: hex.EncodeToString(r.Hash[:])})
	}
	head, err := stats.VerifyLog(stats.TeamID(gid), recs, nil)
	if err != nil {
		return out, err
	}
	out.HeadSeq, out.HeadHash = head.Seq, hex.EncodeToString(head.Hash[:])
	return out, nil
}

// logDetail names an entry's detail.
func logDetail(e stats.Entry) string {
	switch e.Kind {
	case stats.LogExport:
		return map[uint8]string{stats.ExportConversation: "conversation", stats.ExportMessage: "message"}[e.Detail]
	case stats.LogBlock:
		return map[uint8]string{stats.BlockNew: "new", stats.BlockReplies: "replies", stats.BlockAll: "service"}[e.Detail]
	case stats.LogEscalation:
		return stats.Escalation(e.Detail).String()
	}
	return ""
}

// blockDetail is the team log's detail of a restriction level.
func blockDetail(l Restriction) uint8 {
	switch l {
	case RestrictedNew:
		return stats.BlockNew
	case RestrictedReplies:
		return stats.BlockReplies
	}
	return stats.BlockAll
}

// conversationToken is the token (claim token, SPEC 15.4) of queue
// conversation conv of team rec: what events and log entries name it by.
func conversationToken(rec *store.TeamRecord, conv queue.ConversationID) (stats.Token, error) {
	sp, err := spaceOf(rec)
	if err != nil {
		return stats.Token{}, err
	}
	return stats.Token(sp.Token(conv)), nil
}

// logRestriction appends, on the intake, a block (level > 0) or unblock
// entry about the outsider whose identity is outsider, by actor. The
// subject is the token of the outsider's queue conversation (the one it
// has or would have), so that no name is in the log.
func (c *Client) logRestriction(team string, outsider, actor keys.Fingerprint, level Restriction) error {
	return c.st.update(func(t *tx) error {
		rec, err := t.lookupTeam(team)
		if err != nil || !rec.Intake {
			return err
		}
		return c.appendRestriction(t, rec, outsider, actor, level)
	})
}

// appendRestriction is logRestriction's entry, appended to team rec's log
// in t.
func (c *Client) appendRestriction(t *tx, rec *store.TeamRecord, outsider, actor keys.Fingerprint, level Restriction) error {
	tok, err := conversationToken(rec, queueConversationOf(rec.ClaimKey, outsider))
	if err != nil {
		return err
	}
	e := stats.Entry{Time: c.now(), Kind: stats.LogUnblock, Actor: actor, Subject: tok}
	if level > 0 {
		e.Kind, e.Detail = stats.LogBlock, blockDetail(level)
	}
	return c.appendTeamLog(t, rec.Group, e)
}

// logRestrictions logs a restriction (level 0: its lifting) of person
// that this device carried out: in the log of by's team by its actor, or,
// for a plain Restrict or Unrestrict (by nil), by this person in the log
// of each team this profile is the intake of whose queue holds person (a
// restriction of the team's outsider is a block of the team's, whichever
// way it was made). A failure is logged: the restriction stands.
func (c *Client) logRestrictions(person *store.Person, level Restriction, by *restrictionBy) {
	outsider := fpOf(person.Identity)
	var err error
	if by != nil {
		err = c.logRestriction(by.team, outsider, by.actor, level)
	} else {
		err = c.st.update(func(t *tx) error {
			ts, err := t.Teams()
			if err != nil {
				return err
			}
			for _, rec := range ts {
				if !rec.Intake {
					continue
				}
				qs, err := t.Queues(rec.Group)
				if err != nil {
					return err
				}
				if !slices.ContainsFunc(qs, func(q *store.QueueRecord) bool { return bytes.Equal(q.Person, person.ID) }) {
					continue
				}
				if err := c.appendRestriction(t, rec, outsider, c.idFP, level); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil {
		c.log.Warn("could not log a restriction in the team log", "err", err)
	}
}

// logStaff appends a staff added (or removed) entry on the intake.
func (c *Client) logStaff(gid []byte, member keys.Fingerprint, added bool) error {
	kind := stats.LogStaffRemoved
	if added {
		kind = stats.LogStaffAdded
	}
	return c.st.update(func(t *tx) error {
		return c.appendTeamLog(t, gid, stats.Entry{Time: c.now(), Kind: kind, Actor: c.idFP, Subject: stats.Token(member)})
	})
}

// exportEventID is the ID of the export-made event of the export report
// (0x22 op 3) msgID sent by device dev about conversation tok: the same
// on the reporting device and the intake, so that a report received
// twice counts once.
func exportEventID(tok stats.Token, dev keys.Fingerprint, msgID [msgIDSize]byte) stats.EventID {
	h := sha256.New()
	h.Write([]byte("postern.v1 team-event"))
	h.Write(tok[:])
	h.Write([]byte{byte(stats.ExportMade)})
	h.Write(dev[:])
	h.Write(msgID[:])
	return stats.EventID(h.Sum(nil)[:stats.EventIDSize])
}

// keepExport keeps, in t, the export-made event of an export of team
// rec's conversation tok; on the intake it also appends the export entry
// to the team log by actor (detail ExportConversation or ExportMessage).
// An event kept already changes nothing.
func (c *Client) keepExport(t *tx, rec *store.TeamRecord, tok stats.Token, id stats.EventID, actor keys.Fingerprint, detail uint8, now time.Time) error {
	if t.HasTeamEvent(rec.Group, id[:]) {
		return nil
	}
	e := stats.Event{ID: id, Type: stats.ExportMade, Time: time.UnixMilli(now.UnixMilli()).UTC(), Queue: stats.QueueID(rec.Group), Conversation: tok}
	b, err := e.MarshalBinary()
	if err != nil {
		return err
	}
	if err := t.PutTeamEvent(rec.Group, b); err != nil {
		return err
	}
	if !rec.Intake {
		return nil
	}
	return c.appendTeamLog(t, rec.Group, stats.Entry{Time: now, Kind: stats.LogExport, Detail: detail, Actor: actor, Subject: tok})
}

// deliveryFailed keeps, on the intake, a delivery-failed event for queue
// conversation conv of team rec: a message of the team to the
// conversation (a patient's message forwarded to the staff, or a staff
// reply to the patient) that will never be delivered. key names the
// message, so that a failure found twice counts once.
func (c *Client) deliveryFailed(t *tx, rec *store.TeamRecord, conv queue.ConversationID, key []byte, now time.Time) error {
	tok, err := conversationToken(rec, conv)
	if err != nil {
		return err
	}
	h := sha256.New()
	h.Write([]byte("postern.v1 team-event"))
	h.Write(tok[:])
	h.Write([]byte{byte(stats.DeliveryFailed)})
	h.Write(key)
	e := stats.Event{ID: stats.EventID(h.Sum(nil)[:stats.EventIDSize]), Type: stats.DeliveryFailed,
		Time: time.UnixMilli(now.UnixMilli()).UTC(), Queue: stats.QueueID(rec.Group), Conversation: tok}
	b, err := e.MarshalBinary()
	if err != nil {
		return err
	}
	return t.PutTeamEvent(rec.Group, b)
}

// outboxGaveUp, in the transaction that gives up outbox entry message
// msgID, keeps a delivery-failed event if this profile is a team's intake
// and the message was a staff reply it forwarded to an outsider (a
// message of its direct conversation with someone who has a queue
// conversation).
func (c *Client) outboxGaveUp(t *tx, msgID string, now time.Time) error {
	m, err := t.MessageByID(msgID)
	if err != nil || m == nil || !m.Outgoing {
		return err
	}
	ts, err := t.Teams()
	if err != nil {
		return err
	}
	for _, rec := range ts {
		if !rec.Intake {
			continue
		}
		qs, err := t.Queues(rec.Group)
		if err != nil {
			return err
		}
		for _, q := range qs {
			if len(q.Person) > 0 && bytes.Equal(t.DirectConversationID(q.Person), m.Conversation) {
				return c.deliveryFailed(t, rec, queue.ConversationID(q.Conversation), []byte(msgID), now)
			}
		}
	}
	return nil
}
