package client

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestTeamReplyData: a staff reply with a file given as data (the web
// app's uploads) reaches the patient from the team with the file; a reply
// with nothing, or too many files, is refused before anything is sent.
func TestTeamReplyData(t *testing.T) {
	t.Parallel()
	f := newTeamFixture(t)
	ctx := testCtx(t)
	if _, err := f.pat.Send(ctx, "Pharmacy", "Which dose on Sundays?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	it := queueOf(t, f.staff[0][0], "pat")
	f.settleQueue(t, it.ID)
	staff := f.staff[0][0]
	if _, err := staff.ReplyQueueData(ctx, it.ID, "", nil); !errors.Is(err, ErrInvalidText) {
		t.Fatalf("an empty reply: %v", err)
	}
	many := make([]FileData, MaxAttachments+1)
	for i := range many {
		many[i] = FileData{Name: "f.txt", Size: 1, Data: strings.NewReader("x")}
	}
	if _, err := staff.ReplyQueueData(ctx, it.ID, "files", many); !errors.Is(err, ErrTooManyFiles) {
		t.Fatalf("too many files: %v", err)
	}
	if th, err := staff.QueueThread(it.ID); err != nil || len(th) != 1 {
		t.Fatalf("a refused reply was stored: %+v, %v", th, err)
	}
	plan := []byte("Sunday: one tablet in the morning.\n")
	m, err := staff.ReplyQueueData(ctx, it.ID, "The plan is attached.", []FileData{{Name: "dir/plan.txt", Size: int64(len(plan)), Data: bytes.NewReader(plan)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Attachments) != 1 || m.Attachments[0].Name != "plan.txt" {
		t.Fatalf("reply %+v", m)
	}
	syncAll(t, 2, f.intake, f.pat)
	got := messagesLike(t, f.pat, "The plan is attached.")
	if len(got) != 1 || got[0].From != "Pharmacy" || len(got[0].Attachments) != 1 || got[0].Attachments[0].Name != "plan.txt" {
		t.Fatalf("patient got %+v", got)
	}
	var buf bytes.Buffer
	if err := f.pat.ReadAttachment(ctx, got[0].ID, 0, 0, &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), plan) {
		t.Fatalf("the patient's file holds %q", buf.Bytes())
	}
}

// TestTeamQueueEvent: a colleague's claim reaches another staff device
// as EventQueue naming the team, after its register is held (Queue
// shows the new owner when the event arrives).
func TestTeamQueueEvent(t *testing.T) {
	t.Parallel()
	f := newTeamFixture(t)
	ctx := testCtx(t)
	if _, err := f.pat.Send(ctx, "Pharmacy", "Is my order ready?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	it := queueOf(t, f.staff[0][0], "pat")
	f.settleQueue(t, it.ID)
	ben := f.staff[1][0]
	evs, err := ben.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.staff[0][0].Claim(ctx, it.ID); err != nil {
		t.Fatal(err)
	}
	for round := 0; ; round++ {
		if round == 10 {
			t.Fatal("no EventQueue on a colleague's device")
		}
		syncAll(t, 1, ben)
		got := false
		for drained := false; !drained; {
			select {
			case ev := <-evs:
				if ev.Kind == EventQueue {
					if ev.Team != "Pharmacy" || ev.Kind.String() != "queue" {
						t.Fatalf("event %+v", ev)
					}
					got = true
				}
			default:
				drained = true
			}
		}
		if got {
			break
		}
	}
	if q := queueOf(t, ben, "pat"); q.State != "claimed" || q.Owner != "ann" {
		t.Fatalf("ben's queue at the event: %+v", q)
	}
}
