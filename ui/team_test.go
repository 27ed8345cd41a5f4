package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// teamSetup is a team on one relay: the intake profile "Pharmacy", its
// staff ann (whose home the app opens: annHome, her client closed) and
// ben, contacts of each other, and the patient pat, a contact of the team only. The intake
// receives and forwards in the background until the test ends, as its
// agent would.
type teamSetup struct {
	r        *relaytest.Server
	annHome  string
	intake   *client.Client
	ben, pat *client.Client
}

const teamPass = "a team member's passphrase, long enough"

func newTeamSetup(t *testing.T) *teamSetup {
	t.Helper()
	ctx := context.Background()
	ts := &teamSetup{r: relaytest.New(t, nil)}
	open := func(name string) (string, *client.Client) {
		home := filepath.Join(t.TempDir(), name)
		c, err := client.Init(ctx, home, []byte(teamPass), ts.r.URL, name, &client.Options{KDF: testKDF})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := c.AcceptTerms(TermsVersion); err != nil {
			t.Fatal(err)
		}
		return home, c
	}
	befriend := func(inviter, accepter *client.Client, as string) {
		code, err := inviter.Invite(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := accepter.Accept(ctx, code, as); err != nil {
			t.Fatal(err)
		}
		if _, err := inviter.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var ann *client.Client
	_, ts.intake = open("Pharmacy")
	ts.annHome, ann = open("ann")
	_, ts.ben = open("ben")
	_, ts.pat = open("pat")
	befriend(ts.intake, ann, "Pharmacy")
	befriend(ts.intake, ts.ben, "Pharmacy")
	befriend(ts.intake, ts.pat, "Pharmacy")
	befriend(ann, ts.ben, "ann") // colleagues, as a team's staff are
	if _, err := ts.intake.CreateTeam(ctx, "Pharmacy"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ann", "ben"} {
		if _, err := ts.intake.AddStaff(ctx, "Pharmacy", n); err != nil {
			t.Fatal(err)
		}
	}
	settled := func() bool {
		for _, c := range []*client.Client{ann, ts.ben} {
			tms, err := c.Teams()
			if err != nil || len(tms) != 1 {
				return false
			}
			for _, m := range tms[0].Staff {
				if m.Joined != m.Devices {
					return false
				}
			}
		}
		return true
	}
	for round := 0; !settled(); round++ {
		if round == 10 {
			t.Fatal("the team did not settle")
		}
		for _, c := range []*client.Client{ts.intake, ann, ts.ben} {
			if _, err := c.Sync(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	ann.Close() // the app opens her home itself
	// The intake's receive loop, until the test ends.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			ts.intake.Sync(ctx) // a failed round is tried again
		}
	}()
	t.Cleanup(func() { close(stop); wg.Wait() })
	return ts
}

// queueOf is the team's queue in the app, with filter.
func (a *app) queueOf(filter string) []queueItemJSON {
	a.t.Helper()
	resp, body := a.do("GET", "/api/teams/Pharmacy/queue?filter="+filter, "", nil)
	var out []queueItemJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
		a.t.Fatalf("queue: %d %s", resp.StatusCode, body)
	}
	return out
}

// The queue's API: a patient's message reaches the staff member's queue;
// refusals change nothing; a claim lost to a colleague is a 409 with the
// sentence; opening the conversation reads it (queue receipts); the owner
// answers with a file and resolves; the figures hold counts only.
func TestTeamQueueAPI(t *testing.T) {
	ts := newTeamSetup(t)
	ctx := context.Background()
	a := newApp(t, ts.annHome, &Options{Passphrase: []byte(teamPass)})
	a.login()

	_, body := a.do("GET", "/api/teams", "", nil)
	var teams []teamJSON
	if err := json.Unmarshal([]byte(body), &teams); err != nil || len(teams) != 1 || teams[0].Name != "Pharmacy" || teams[0].Intake || len(teams[0].Staff) != 3 {
		t.Fatalf("teams %s (%v)", body, err)
	}
	for _, c := range []struct{ method, path, body, want string }{
		{"GET", "/api/teams/Nowhere/queue", "", "There is no such team on this device."},
		{"GET", "/api/teams/Pharmacy/queue?filter=closed", "", "A queue's filter is all, unclaimed or mine."},
		{"GET", "/api/queue/0123456789abcdef0123456789abcdef", "", "There is no such conversation in the team's queue."},
		{"GET", "/api/teams/Nowhere/figures", "", "There is no such team on this device."},
		{"POST", "/api/teams/Pharmacy/block", `{"contact":"pat","level":"forever"}`, "A block's level is new, replies or all."},
		{"POST", "/api/teams/Pharmacy/block", `{"contact":" "}`, "Name the person to block, as the queue shows them."},
		{"POST", "/api/teams/Pharmacy/unblock", `{"contact":"pat","level":"new"}`, "Name the person to unblock, as the queue shows them (and no level)."},
	} {
		resp, body := a.do(c.method, c.path, c.body, nil)
		if got := errorOf(t, body); got != c.want || resp.StatusCode < 400 {
			t.Errorf("%s %s: %d %q, want %q", c.method, c.path, resp.StatusCode, got, c.want)
		}
	}

	if _, err := ts.pat.SendWith(ctx, "Pharmacy", "Can I get a refill of my inhaler?", &client.SendOptions{Urgent: true}); err != nil {
		t.Fatal(err)
	}
	var it queueItemJSON
	waitFor(t, "the patient's message in ann's queue", func() bool {
		q := a.queueOf("unclaimed")
		if len(q) == 1 && q[0].Messages == 1 {
			it = q[0]
			return true
		}
		return false
	})
	if it.Outsider != "pat" || it.State != "new" || !it.Urgent || !it.CanClaim || it.CanAssign || it.Owner != "" {
		t.Fatalf("item %+v", it)
	}
	if q := a.queueOf("mine"); len(q) != 0 {
		t.Fatalf("mine before a claim: %+v", q)
	}
	// Not the owner: resolving, assigning and a reply's missing text are
	// refused, and the conversation stays new.
	for _, c := range []struct{ path, body string }{
		{"/resolve", ""}, {"/assign", `{"contact":"ben"}`}, {"/assign", `{"contact":""}`}, {"/reply", `{"text":"  "}`},
		{"/reply", `{"text":"x","attachments":["nosuchupload"]}`},
	} {
		if resp, body := a.do("POST", "/api/queue/"+it.ID+c.path, c.body, nil); resp.StatusCode < 400 {
			t.Fatalf("%s %s: %d %s", c.path, c.body, resp.StatusCode, body)
		}
	}
	if q := a.queueOf("unclaimed"); len(q) != 1 || q[0].State != "new" {
		t.Fatalf("after refusals: %+v", q)
	}

	// ben claims first (his device syncs to hold the conversation):
	// ann's claim is lost, with the sentence.
	waitFor(t, "the conversation on ben's device", func() bool {
		ts.ben.Sync(ctx)
		q, err := ts.ben.Queue("Pharmacy", client.QueueAll)
		return err == nil && len(q) == 1
	})
	if _, err := ts.ben.Claim(ctx, it.ID); err != nil {
		t.Fatal(err)
	}
	resp, body := a.do("POST", "/api/queue/"+it.ID+"/claim", "", nil)
	if resp.StatusCode != http.StatusConflict || errorOf(t, body) != "Another staff member owns this conversation." {
		t.Fatalf("a lost claim: %d %s", resp.StatusCode, body)
	}
	if q := a.queueOf("all"); len(q) != 1 || q[0].Owner != "ben" || q[0].CanClaim || q[0].CanAssign {
		t.Fatalf("after a lost claim: %+v", q)
	}
	// ben resolves it; the patient's next message reopens it, new.
	if _, err := ts.ben.Resolve(ctx, it.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.pat.Send(ctx, "Pharmacy", "Also: is the pharmacy open on Sunday?"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reopened conversation", func() bool {
		q := a.queueOf("unclaimed")
		return len(q) == 1 && q[0].Messages == 2 && q[0].Reopens == 1
	})
	resp, body = a.do("POST", "/api/queue/"+it.ID+"/claim", "", nil)
	var th queueThreadJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &th) != nil || th.Item.Owner != client.Me || !th.Item.CanAssign ||
		len(th.Messages) != 2 || th.Messages[0].Text != "Can I get a refill of my inhaler?" || th.Messages[0].From != "pat" {
		t.Fatalf("claim: %d %s", resp.StatusCode, body)
	}
	if q := a.queueOf("mine"); len(q) != 1 || q[0].ID != it.ID {
		t.Fatalf("mine: %+v", q)
	}
	// Opening the conversation on the page reads the patient's messages:
	// ben learns that ann read them, the patient that the team did.
	resp, body = a.do("GET", "/api/queue/"+it.ID, "", nil)
	th = queueThreadJSON{}
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &th) != nil || len(th.Messages) != 2 ||
		len(th.Messages[0].ReadBy) != 1 || th.Messages[0].ReadBy[0].By != client.Me || len(th.Messages[1].ReadBy) != 1 {
		t.Fatalf("the conversation opened: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "ann's read on ben's device", func() bool {
		ts.ben.Sync(ctx)
		m, err := ts.ben.QueueThread(it.ID)
		return err == nil && len(m) == 2 && len(m[0].ReadBy) == 1 && m[0].ReadBy[0].By == "ann"
	})
	waitFor(t, "the patient's message read", func() bool {
		ts.pat.Sync(ctx)
		ms, err := ts.pat.Inbox()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Text == "Can I get a refill of my inhaler?" {
				return !m.ReadReceipt.IsZero()
			}
		}
		return false
	})

	if resp, body := a.do("POST", "/api/queue/"+it.ID+"/assign", `{"contact":"nobody"}`, nil); resp.StatusCode != http.StatusNotFound ||
		errorOf(t, body) != "There is no one of that name here." {
		t.Fatalf("assign to nobody: %d %s", resp.StatusCode, body)
	}
	// ann gives it to ben: she may no longer resolve it; ben gives it
	// back, and her queue shows it hers again (his change, received).
	th = queueThreadJSON{} // fields left out are false
	resp, body = a.do("POST", "/api/queue/"+it.ID+"/assign", `{"contact":"ben"}`, nil)
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &th) != nil || th.Item.Owner != "ben" || th.Item.AssignedBy != client.Me || th.Item.CanAssign {
		t.Fatalf("assign: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", "/api/queue/"+it.ID+"/resolve", "", nil); resp.StatusCode != http.StatusForbidden ||
		errorOf(t, body) != "Only the conversation's owner can do this." {
		t.Fatalf("resolve by a former owner: %d %s", resp.StatusCode, body)
	}
	if _, err := ts.ben.Assign(ctx, it.ID, "ann"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ben's assignment on ann's device", func() bool {
		q := a.queueOf("mine")
		return len(q) == 1 && q[0].Owner == client.Me && q[0].AssignedBy == "ben" && q[0].CanAssign
	})
	// The reply with a file, as the page sends it.
	plan := []byte("Sunday 10-12.\n")
	up := a.createUpload("hours.txt", len(plan))
	if resp, body := a.do("PUT", "/api/uploads/"+up.ID, string(plan), putAt(0)); resp.StatusCode >= 300 {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("POST", "/api/queue/"+it.ID+"/reply", `{"text":"Open 10-12 on Sundays.","attachments":[`+quote(up.ID)+`]}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("reply: %d %s", resp.StatusCode, body)
	}
	if resp, _ := a.do("GET", "/api/uploads/"+up.ID, "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the sent upload is kept: %d", resp.StatusCode)
	}
	waitFor(t, "the reply at the patient", func() bool {
		ts.pat.Sync(ctx)
		ms, err := ts.pat.Inbox()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if m.Text == "Open 10-12 on Sundays." {
				if m.From != "Pharmacy" || len(m.Attachments) != 1 || m.Attachments[0].Name != "hours.txt" {
					t.Fatalf("the patient holds %+v", m)
				}
				return true
			}
		}
		return false
	})
	th = queueThreadJSON{}
	resp, body = a.do("POST", "/api/queue/"+it.ID+"/resolve", "", nil)
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &th) != nil || th.Item.State != "resolved" || th.Item.Waiting != 0 || len(th.Messages) != 3 {
		t.Fatalf("resolve: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", "/api/queue/"+it.ID+"/claim", "", nil); resp.StatusCode != http.StatusConflict ||
		errorOf(t, body) != "The conversation's state does not allow this." {
		t.Fatalf("claim of a resolved one: %d %s", resp.StatusCode, body)
	}

	resp, body = a.do("GET", "/api/teams/Pharmacy/figures", "", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"first_response"`) || !strings.Contains(body, `"backlog"`) ||
		strings.Contains(body, "pat") || strings.Contains(body, "inhaler") {
		t.Fatalf("figures: %d %s", resp.StatusCode, body)
	}

	// Blocking: the intake restricts pat.
	if resp, body := a.do("POST", "/api/teams/Pharmacy/block", `{"contact":"pat","level":"replies"}`, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("block: %d %s", resp.StatusCode, body)
	}
	waitFor(t, "the intake's restriction", func() bool {
		cs, err := ts.intake.Contacts()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Name == "pat" {
				return c.RestrictedByMe == client.RestrictedReplies
			}
		}
		return false
	})
	if resp, body := a.do("POST", "/api/teams/Pharmacy/unblock", `{"contact":"pat"}`, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("unblock: %d %s", resp.StatusCode, body)
	}
}
