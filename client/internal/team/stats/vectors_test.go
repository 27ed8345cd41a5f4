package stats

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/team/hours"
)

// The encodings are exchanged between devices and stored: these bytes
// must not change.
func TestEventKnownAnswer(t *testing.T) {
	e := Event{
		ID:           EventID{0x10, 0x11, 15: 0x1f},
		Type:         Escalated,
		Time:         time.Date(2026, 12, 7, 9, 30, 0, 123e6, time.UTC),
		Queue:        QueueID{0x20, 15: 0x2f},
		Conversation: Token{0x30, 31: 0x3f},
		Escalation:   EscalationUrgentReminder,
	}
	const want = "01" + "07" + "1011000000000000000000000000001f" +
		"000001a24fd6b23b" + // 1796635800123 ms
		"2000000000000000000000000000002f" +
		"300000000000000000000000000000000000000000000000000000000000003f" + "03"
	got, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(got) != want {
		t.Fatalf("encoding\n got %x\nwant %s", got, want)
	}
	back, err := ParseEvent(got)
	if err != nil || back != e {
		t.Fatalf("decoded %+v, %v", back, err)
	}
}

// A record's hash is the chain of SPEC 15.8, computed here from the SPEC's
// text rather than the package's functions.
func TestRecordKnownAnswer(t *testing.T) {
	teamID := TeamID{0xab, 15: 0xcd}
	e := Entry{Time: time.UnixMilli(1765099800123).UTC(), Kind: LogBlock, Detail: BlockAll,
		Actor: [32]byte{0x41, 31: 0x42}, Subject: Token{0x51, 31: 0x52}}
	r, err := NewLog(teamID).Append(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	entry, _ := hex.DecodeString("01" + "0000000000000001" + "0000019af825863b" + "02" + "03" +
		"4100000000000000000000000000000000000000000000000000000000000042" +
		"5100000000000000000000000000000000000000000000000000000000000052")
	start := sha256.Sum256(append([]byte("postern.v1 team-log-start\x00"), teamID[:]...))
	hash := sha256.Sum256(append(append([]byte("postern.v1 team-log\x00"), start[:]...), entry...))
	want := append(append(append([]byte{}, entry...), start[:]...), hash[:]...)
	if hex.EncodeToString(got) != hex.EncodeToString(want) {
		t.Fatalf("record\n got %x\nwant %x", got, want)
	}
	if StartHash(teamID) != start {
		t.Fatal("StartHash differs from the SPEC")
	}
}

// The escalations counted are those package hours decides: each wake-up
// of a decision becomes one event, and deciding again with the stored
// record sends (and counts) nothing more.
func TestCountsHoursEscalations(t *testing.T) {
	sched, err := hours.NewSchedule("Europe/Berlin", nil)
	if err != nil {
		t.Fatal(err)
	}
	esc, err := hours.NewEscalator(sched, hours.Options{Team: "Pharmacy", EscalationGroup: "Leads", Urgent: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	s := New(nil)
	var b builder
	received := time.Date(2026, 12, 7, 9, 0, 0, 0, sched.Location())
	count := func(conv int, d hours.Decision, at time.Time) {
		t.Helper()
		for _, w := range d.WakeUps {
			kind, ok := EscalationOf(w.Reason)
			if !ok {
				t.Fatalf("wake-up reason %v has no escalation type", w.Reason)
			}
			e := b.esc(kind, at.Sub(t0), pharmacy, conv)
			if _, err := s.Add(e); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Conversation 1: urgent, unread, unclaimed for an hour and a half.
	// Conversation 2: claimed, not answered for 3 business days.
	convs := map[int]hours.Conversation{
		1: {Received: received, Urgent: true},
		2: {Received: received, Claimed: received.Add(time.Minute)},
	}
	for n, c := range convs {
		var rec hours.Record
		for _, at := range []time.Time{received.Add(90 * time.Minute), received.Add(90 * time.Minute), received.Add(4 * 24 * time.Hour)} {
			d, err := esc.Decide(c, rec, at)
			if err != nil {
				t.Fatal(err)
			}
			count(n, d, at)
			rec = d.Record
		}
	}
	got := s.SnapshotAt(received.Add(5 * 24 * time.Hour)).Queues[0].Escalations
	// Urgent: one escalation (unclaimed) and a reminder at 90 minutes,
	// one more reminder days later; normal: one escalation (unanswered).
	want := Escalations{Unclaimed: 1, Unanswered: 1, UrgentReminder: 2}
	if got != want {
		t.Fatalf("escalations %+v, want %+v", got, want)
	}
}
