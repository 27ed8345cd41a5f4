package store

import (
	"bytes"
	"encoding/binary"
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

// The team log (protocol/SPEC.md 15.8 "The team log"), kept on the
// intake in BucketTeamAgent: each record (stats.Record's 147-byte
// encoding) by index("log", team, seq), and the log's head by
// index("log-head", team). A record and the head that names it are
// written in one transaction (AppendTeamLog), so the head never names a
// record that is not there.

// TeamLogRecord is one stored record of a team's log.
type TeamLogRecord struct {
	V      int    `json:"v"`
	Team   []byte `json:"team"`
	Seq    uint64 `json:"seq"`
	Record []byte `json:"record"`
}

// TeamLogHead is the head of a team's log: its last record's sequence
// number and hash.
type TeamLogHead struct {
	V    int    `json:"v"`
	Team []byte `json:"team"`
	Seq  uint64 `json:"seq"`
	Hash []byte `json:"hash"`
}

func (t *Tx) teamLogKey(team []byte, seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return t.Index(BucketTeamAgent, []byte("log"), team, b[:])
}

// TeamLogHead returns the head of team's log, nil if it has no entry.
func (t *Tx) TeamLogHead(team []byte) (*TeamLogHead, error) {
	var h TeamLogHead
	ok, err := t.Get(BucketTeamAgent, t.Index(BucketTeamAgent, []byte("log-head"), team), &h)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(h.Team, team) || h.Seq == 0 || len(h.Hash) != 32 {
		return nil, ErrCorrupt
	}
	return &h, nil
}

// AppendTeamLog stores record rec, number seq (the head's + 1), of team's
// log, and makes it the head.
func (t *Tx) AppendTeamLog(team []byte, seq uint64, rec, hash []byte) error {
	if len(team) != 16 || len(hash) != 32 || seq == 0 {
		return fmt.Errorf("store: a team log record: %w", ErrCorrupt)
	}
	h, err := t.TeamLogHead(team)
	if err != nil {
		return err
	}
	if (h == nil && seq != 1) || (h != nil && seq != h.Seq+1) {
		return fmt.Errorf("store: a team log record out of sequence: %w", ErrCorrupt)
	}
	if err := t.Put(BucketTeamAgent, t.teamLogKey(team, seq), &TeamLogRecord{V: 1, Team: team, Seq: seq, Record: rec}); err != nil {
		return err
	}
	return t.Put(BucketTeamAgent, t.Index(BucketTeamAgent, []byte("log-head"), team), &TeamLogHead{V: 1, Team: team, Seq: seq, Hash: hash})
}

// TeamLogRecord returns record seq of team's log, nil if there is none.
func (t *Tx) TeamLogRecord(team []byte, seq uint64) ([]byte, error) {
	var r TeamLogRecord
	ok, err := t.Get(BucketTeamAgent, t.teamLogKey(team, seq), &r)
	if err != nil || !ok {
		return nil, err
	}
	if !bytes.Equal(r.Team, team) || r.Seq != seq {
		return nil, ErrCorrupt
	}
	return r.Record, nil
}

// HasTeamEvent reports whether event id of team is kept.
func (t *Tx) HasTeamEvent(team, id []byte) bool {
	return t.Has(BucketTeamAgent, t.Index(BucketTeamAgent, []byte("event"), team, id))
}
