package store

import (
	"bytes"
	"fmt"
	"time"
)

// The team agent's records (client agent.go; protocol/SPEC.md section
// 15.2 "The team agent"), in BucketTeamAgent: what escalations were sent
// about each open conversation, and the content-free events of the team's
// figures that are not in the queue's registers (messages arrived,
// escalations). Keys are index("record", team, token) and index("event",
// team, event ID); the values repeat them, so that a team's entries are
// found by a scan.

// AgentRecord is the escalation record of one queue conversation.
type AgentRecord struct {
	V     int    `json:"v"`
	Team  []byte `json:"team"`  // the staff group's ID (16)
	Token []byte `json:"token"` // the conversation's claim token (32)
	// Received, Business, Urgent, Reminders: hours.Record.
	Received  time.Time `json:"received"`
	Business  bool      `json:"business,omitempty"`
	Urgent    bool      `json:"urgent,omitempty"`
	Reminders int       `json:"reminders,omitempty"`
}

// TeamEvent is one content-free event (stats.Event's 75-byte encoding).
type TeamEvent struct {
	V     int    `json:"v"`
	Team  []byte `json:"team"`
	Event []byte `json:"event"`
}

func (t *Tx) agentRecordKey(team, token []byte) []byte {
	return t.Index(BucketTeamAgent, []byte("record"), team, token)
}

// AgentRecord returns the record of conversation token in team, or nil.
func (t *Tx) AgentRecord(team, token []byte) (*AgentRecord, error) {
	var r AgentRecord
	ok, err := t.Get(BucketTeamAgent, t.agentRecordKey(team, token), &r)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(r.Team, team) || !bytes.Equal(r.Token, token) {
		return nil, ErrCorrupt
	}
	return &r, nil
}

// PutAgentRecord stores r.
func (t *Tx) PutAgentRecord(r *AgentRecord) error {
	if len(r.Team) != 16 || len(r.Token) != 32 {
		return fmt.Errorf("store: an agent record's team or token: %w", ErrCorrupt)
	}
	r.V = 1
	return t.Put(BucketTeamAgent, t.agentRecordKey(r.Team, r.Token), r)
}

// PruneAgentRecords deletes team's records whose token keep refuses.
func (t *Tx) PruneAgentRecords(team []byte, keep func(token []byte) bool) error {
	var gone [][]byte
	err := t.Each(BucketTeamAgent, func(_, v []byte) error {
		var r AgentRecord
		if err := Unmarshal(v, &r); err != nil {
			return err
		}
		if r.V == 1 && r.Token != nil && bytes.Equal(r.Team, team) && !keep(r.Token) {
			gone = append(gone, t.agentRecordKey(r.Team, r.Token))
		}
		return nil
	})
	for _, k := range gone {
		if err == nil {
			err = t.Delete(BucketTeamAgent, k)
		}
	}
	return err
}

// PutTeamEvent keeps event ev (its ID is ev[2:18]) of team; keeping one
// again changes nothing.
func (t *Tx) PutTeamEvent(team, ev []byte) error {
	if len(team) != 16 || len(ev) < 18 {
		return fmt.Errorf("store: a team event: %w", ErrCorrupt)
	}
	k := t.Index(BucketTeamAgent, []byte("event"), team, ev[2:18])
	var old TeamEvent
	if ok, err := t.Get(BucketTeamAgent, k, &old); err != nil || ok {
		return err
	}
	return t.Put(BucketTeamAgent, k, &TeamEvent{V: 1, Team: team, Event: ev})
}

// TeamEvents calls fn with every event kept of team.
func (t *Tx) TeamEvents(team []byte, fn func(ev []byte) error) error {
	return t.Each(BucketTeamAgent, func(_, v []byte) error {
		var e TeamEvent
		if err := Unmarshal(v, &e); err != nil {
			return err
		}
		if e.Event == nil || !bytes.Equal(e.Team, team) {
			return nil
		}
		return fn(e.Event)
	})
}
