package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/postern/postern/client/internal/fhir"
	"github.com/postern/postern/client/internal/team/stats"
	"github.com/postern/postern/keys"
)

// Record export of a queue conversation (protocol/SPEC.md 15.3 and 15.9
// "Exports"): the record export of section 15.3, signed by the staff
// member who makes it, of a team's queue conversation or one message of
// it; every export is reported to the team's intake (a team request, op
// 3), which counts it in the team's figures and appends it to the team
// log, naming neither the conversation's content nor anyone by name.

// ExportQueue writes a record export of queue conversation id (as Claim
// takes it), or of its one message messageID if that is not empty, to w,
// signed with this person's identity key. The outsider is the patient
// side: their messages go from them to the team (the team person and its
// identity), the staff replies from the staff member who wrote each to the
// outsider; the topic is the team's name. Files are fetched and embedded
// as ExportRecord does.
//
// On a staff device the export is first reported to the intake, in the
// staff group: an export that cannot be reported (the relay unreachable,
// or this person an observer, who may not send to the staff group) fails
// with nothing written to w. On the team's own profile it is counted and
// logged there.
func (c *Client) ExportQueue(ctx context.Context, w io.Writer, id, messageID string) (ExportInfo, error) {
	qt, err := c.loadQueue(id)
	if err != nil {
		return ExportInfo{}, err
	}
	var (
		conv *fhir.Conversation
		msgs []*messageRecord
	)
	if qt.team.Intake {
		conv, msgs, err = c.intakeExportMessages(qt, messageID)
	} else {
		conv, msgs, err = c.queueExportMessages(qt, messageID)
	}
	if err != nil {
		return ExportInfo{}, err
	}
	out, info, err := c.signRecord(ctx, conv, msgs)
	if err != nil {
		return ExportInfo{}, err
	}
	tok, err := conversationToken(qt.team, qt.conv)
	if err != nil {
		return ExportInfo{}, err
	}
	detail := stats.ExportConversation
	if messageID != "" {
		detail = stats.ExportMessage
	}
	now := c.now()
	if qt.team.Intake {
		var msgID [msgIDSize]byte
		copy(msgID[:], randomID(msgIDSize))
		err = c.st.update(func(t *tx) error {
			return c.keepExport(t, qt.team, tok, exportEventID(tok, c.devID, msgID), c.idFP, detail, now)
		})
	} else {
		ct := &content{Type: contentTeamRequest, Sender: c.devID, SentMS: uint64(now.UnixMilli()),
			Team: &teamContent{Op: teamExport, Level: detail, Conversation: qt.conv}}
		// sendTeamGroup sets the request's message ID before it runs
		// also: this device counts the same event the intake will.
		err = c.sendTeamGroup(ctx, qt.team.Group, ct, func(t *tx) error {
			return c.keepExport(t, qt.team, tok, exportEventID(tok, c.devID, ct.MsgID), c.idFP, detail, now)
		})
	}
	if err != nil {
		return ExportInfo{}, fmt.Errorf("client: report the export to the team: %w", err)
	}
	n, err := w.Write(out)
	info.Bytes = n
	return info, err
}

// queueExportMessages gathers, on a staff device, what ExportQueue
// exports of qt's conversation, without the files.
func (c *Client) queueExportMessages(qt *queueTarget, messageID string) (*fhir.Conversation, []*messageRecord, error) {
	conv := &fhir.Conversation{Team: qt.team.Name}
	var msgs []*messageRecord
	err := c.st.view(func(t *tx) error {
		self, err := t.self()
		if err != nil {
			return err
		}
		conv.ExportedBy = self.Name
		me := fhir.Party{Name: self.Name, Identity: c.idFP}
		team := fhir.Party{Name: qt.team.Name, Identity: keys.Fingerprint(qt.team.IntakeIdentity)}
		outsider := fhir.Party{Name: qt.q.Outsider}
		// Staff replies name their author as this device shows them:
		// the identity goes with each name the staff group has.
		staff := map[string]keys.Fingerprint{}
		for i := range qt.state.Members {
			m := &qt.state.Members[i]
			if n, err := c.staffName(t, qt.state, m.Identity); err == nil && n != Me {
				staff[n] = m.Identity
			}
		}
		if messageID != "" {
			m, err := t.MessageByID(messageID)
			if err != nil {
				return err
			}
			if m == nil || m.Notice || !bytes.Equal(m.Conversation, qt.q.ID) {
				return fmt.Errorf("%w: %q in this conversation", ErrNoMessage, messageID)
			}
			msgs = []*messageRecord{m}
		} else {
			err := t.Messages(func(m *messageRecord) error {
				if bytes.Equal(m.Conversation, qt.q.ID) && !m.Notice {
					msgs = append(msgs, m)
				}
				return nil
			})
			if err != nil {
				return err
			}
			if len(msgs) == 0 {
				return fmt.Errorf("%w: the conversation has no messages to export", ErrNoMessage)
			}
			// As QueueThread shows them: by the time each was sent.
			slices.SortStableFunc(msgs, func(a, b *messageRecord) int { return a.Time.Compare(b.Time) })
		}
		if len(msgs) > fhir.MaxMessages {
			return fmt.Errorf("%w: %d messages, at most %d", ErrRecordTooLarge, len(msgs), fhir.MaxMessages)
		}
		if cv, err := t.Conversation(qt.q.ID); err != nil {
			return err
		} else if cv != nil {
			if conv.Patient, err = patientReference(cv.Patient); err != nil {
				return err
			}
		}
		for _, m := range msgs {
			fm := fhir.Message{ID: m.ID, Sent: m.Time, Text: m.Text, Urgent: m.Urgent}
			switch {
			case m.Outgoing:
				fm.Sender, fm.Recipients = me, []fhir.Party{outsider}
			case m.From == qt.q.Outsider:
				// The patient's message (the rule the figures count
				// arrivals by, agent.go keepArrivals).
				fm.Sender, fm.Recipients, fm.Received = outsider, []fhir.Party{team}, m.Received
			default:
				fm.Sender, fm.Recipients = fhir.Party{Name: m.From, Identity: staff[m.From]}, []fhir.Party{outsider}
			}
			recallFields(&fm, m, self.Name)
			conv.Messages = append(conv.Messages, fm)
		}
		return nil
	})
	return conv, msgs, err
}

// intakeExportMessages gathers, on the team's intake, what ExportQueue
// exports: the intake holds the conversation as its direct conversation
// with the outsider (their messages, and the staff replies it forwarded
// as its own).
func (c *Client) intakeExportMessages(qt *queueTarget, messageID string) (*fhir.Conversation, []*messageRecord, error) {
	var opts ExportOptions
	err := c.st.view(func(t *tx) error {
		if len(qt.q.Person) == 0 {
			return fmt.Errorf("%w: the team's profile holds no outsider of this conversation", ErrNoMessage)
		}
		if messageID != "" {
			m, err := t.MessageByID(messageID)
			if err != nil {
				return err
			}
			if m == nil || !bytes.Equal(m.Conversation, t.DirectConversationID(qt.q.Person)) {
				return fmt.Errorf("%w: %q in this conversation", ErrNoMessage, messageID)
			}
			opts.MessageID = messageID
			return nil
		}
		p, err := t.Person(qt.q.Person)
		if err != nil {
			return err
		}
		if p == nil {
			return fmt.Errorf("%w: the conversation's outsider is no longer a contact", ErrNoMessage)
		}
		opts.Contact = p.Name
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	conv, msgs, err := c.exportMessages(opts)
	if err != nil {
		return nil, nil, err
	}
	conv.Team = qt.team.Name
	return conv, msgs, nil
}
