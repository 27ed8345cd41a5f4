package ui

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/relay/relaytest"
)

// roleFixture is an organisation on one relay whose administrator alice
// publishes a directory: alice and bob (contacts) are staff of Pharmacy,
// carol (nobody's contact) of Ward 4; the role accounts "Pharmacy on
// call" and "Ward 4 on call", both vacant. Both devices hold the
// directory; their clients are closed, for the apps to open. It returns
// the homes and the client options with the enrolment.
func roleFixture(t *testing.T) (aliceHome, bobHome string, copts *client.Options) {
	t.Helper()
	srv := relaytest.New(t, nil)
	aliceHome, alice, bobHome, bob := pair(t, srv)
	bg := context.Background()
	enrol := &client.DirectoryEnrolment{Administrators: []keys.Fingerprint{alice.Whoami().Identity}}
	rand.Read(enrol.Organisation[:])
	copts = &client.Options{KDF: testKDF, Directory: enrol}
	alice.Close()
	bob.Close()
	alice, err := client.Dial(bg, aliceHome, []byte(alicePass), copts)
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if bob, err = client.Dial(bg, bobHome, []byte(bobPass), copts); err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	var carol keys.Fingerprint
	rand.Read(carol[:])
	spec, err := json.Marshal(map[string]any{
		"administrators": []string{alice.Whoami().Identity.String()},
		"teams":          []map[string]string{{"name": "Pharmacy"}, {"name": "Ward 4"}},
		"staff": []map[string]any{
			{"identity": alice.Whoami().Identity.String(), "name": "Alice Adams", "title": "Pharmacist", "teams": []string{"Pharmacy"}},
			{"identity": bob.Whoami().Identity.String(), "name": "Bob Baker", "title": "Pharmacist", "teams": []string{"Pharmacy"}},
			{"identity": carol.String(), "name": "Carol Cole", "title": "Nurse", "teams": []string{"Ward 4"}},
		},
		"roles": []map[string]string{{"name": "Pharmacy on call", "team": "Pharmacy"}, {"name": "Ward 4 on call", "team": "Ward 4"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.PublishDirectory(bg, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.Sync(bg); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{alice, bob} {
		if rs, err := c.Roles(); err != nil || len(rs) != 2 || rs[0].Holder != "" {
			t.Fatalf("roles %+v, %v", rs, err)
		}
	}
	return aliceHome, bobHome, copts
}

// roles is GET /api/roles in the app.
func (a *app) roles() rolesJSON {
	a.t.Helper()
	resp, body := a.do("GET", "/api/roles", "", nil)
	var out rolesJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil {
		a.t.Fatalf("roles: %d %s", resp.StatusCode, body)
	}
	return out
}

// roleNamed is the role named name in all.
func roleNamed(t *testing.T, all rolesJSON, name string) roleJSON {
	t.Helper()
	for _, r := range all.Roles {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no role %q in %+v", name, all)
	return roleJSON{}
}

// The roles' API: bob (staff of Pharmacy) sees both role accounts and
// may take only his team's; each refusal says why and changes nothing;
// he takes it; alice, the administrator, sees him hold it (the role
// event arrives on her event stream), sets herself as holder, refuses
// to set carol (another team's), and leaves it vacant; bob's app shows
// each change.
func TestRolesAPI(t *testing.T) {
	aliceHome, bobHome, copts := roleFixture(t)
	b := newApp(t, bobHome, &Options{Passphrase: []byte(bobPass), Client: copts})
	b.login()
	a := newApp(t, aliceHome, &Options{Passphrase: []byte(alicePass), Client: copts})
	a.login()
	const onCall = "/api/roles/Pharmacy%20on%20call"

	all := b.roles()
	if all.Administrator || len(all.Roles) != 2 {
		t.Fatalf("bob's roles %+v", all)
	}
	r := roleNamed(t, all, "Pharmacy on call")
	if r.Team != "Pharmacy" || r.Holder != "" || r.Mine || !r.CanTake || r.CanLeave || r.Staff != nil {
		t.Fatalf("bob's Pharmacy on call %+v", r)
	}
	if w := roleNamed(t, all, "Ward 4 on call"); w.CanTake || w.CanLeave {
		t.Fatalf("bob's Ward 4 on call %+v", w)
	}

	refusals := []struct {
		path, body string
		status     int
		msg        string
	}{
		{onCall + "/leave", "", http.StatusConflict, "Pharmacy on call is vacant: there is nothing to leave."},
		{"/api/roles/Ward%204%20on%20call/take", "", http.StatusForbidden,
			"Only staff of Ward 4 take Ward 4 on call: the organisation directory does not list you in Ward 4."},
		{"/api/roles/Night%20porter/take", "", http.StatusNotFound, `The organisation directory lists no role account named "Night porter".`},
		{onCall + "/holder", `{"staff":"bob"}`, http.StatusForbidden, "Only an administrator of the organisation sets who holds Pharmacy on call."},
	}
	for _, rf := range refusals {
		resp, body := b.do("POST", rf.path, rf.body, nil)
		if resp.StatusCode != rf.status || errorOf(t, body) != rf.msg {
			t.Fatalf("POST %s: %d %s, want %d %q", rf.path, resp.StatusCode, body, rf.status, rf.msg)
		}
	}
	if r := roleNamed(t, b.roles(), "Pharmacy on call"); r.Holder != "" || r.Sequence != 0 {
		t.Fatalf("a refusal changed the role: %+v", r)
	}

	// alice's event stream, before bob takes the role.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // hang guard
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.ts.URL+"/api/events", nil)
	resp, err := a.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)

	resp, body := b.do("POST", onCall+"/take", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("take: %d %s", resp.StatusCode, body)
	}
	var took rolesJSON
	if err := json.Unmarshal([]byte(body), &took); err != nil {
		t.Fatal(err)
	}
	if r := roleNamed(t, took, "Pharmacy on call"); r.Holder != client.Me || !r.Mine || r.CanTake || !r.CanLeave || r.Sequence != 1 {
		t.Fatalf("after take: %+v", r)
	}
	if resp, body := b.do("POST", onCall+"/take", "", nil); resp.StatusCode != http.StatusConflict || errorOf(t, body) != "You hold Pharmacy on call already." {
		t.Fatalf("take again: %d %s", resp.StatusCode, body)
	}

	// The role record reaches alice's app: the role event, then her view.
	var ev map[string]string
	for event := ""; sc.Scan(); {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			event = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok && event == "role" {
			if err := json.Unmarshal([]byte(v), &ev); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	if ev["role"] != "Pharmacy on call" || ev["team"] != "Pharmacy" {
		t.Fatalf("alice's role event %v (stream: %v)", ev, sc.Err())
	}
	all = a.roles()
	r = roleNamed(t, all, "Pharmacy on call")
	if !all.Administrator || r.Holder != "bob" || r.Mine || !r.CanTake || r.Sequence != 1 {
		t.Fatalf("alice's Pharmacy on call %+v", r)
	}
	var names []string
	for _, s := range r.Staff {
		names = append(names, s.Name+"="+s.Shown)
	}
	if strings.Join(names, ",") != "me=Alice Adams,bob=Bob Baker" || r.Staff[1].Identity != r.HolderIdentity {
		t.Fatalf("alice's picker %+v", r.Staff)
	}
	if resp, body := a.do("POST", onCall+"/leave", "", nil); resp.StatusCode != http.StatusConflict ||
		errorOf(t, body) != "You do not hold Pharmacy on call: bob does, and only the holder leaves it." {
		t.Fatalf("alice leaves bob's role: %d %s", resp.StatusCode, body)
	}

	// The administrator's picker.
	for _, rf := range []struct{ body, msg string }{
		{`{"staff":"Carol Cole"}`, "Carol Cole is not staff of Pharmacy: only its staff may hold Pharmacy on call."},
		{`{"staff":"Bob Baker"}`, "Bob Baker holds Pharmacy on call already."},
	} {
		if resp, body := a.do("POST", onCall+"/holder", rf.body, nil); resp.StatusCode != http.StatusConflict || errorOf(t, body) != rf.msg {
			t.Fatalf("holder %s: %d %s", rf.body, resp.StatusCode, body)
		}
	}
	resp, body = a.do("POST", onCall+"/holder", `{"staff":"me"}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set alice: %d %s", resp.StatusCode, body)
	}
	if r := roleNamed(t, a.roles(), "Pharmacy on call"); !r.Mine || r.Sequence != 2 {
		t.Fatalf("alice set herself: %+v", r)
	}
	// bob's app takes alice's record as it arrives (a hang guard, not a
	// timing assertion).
	waitRole(t, b, "Pharmacy on call", "alice", 2)
	if r := roleNamed(t, b.roles(), "Pharmacy on call"); r.Mine || !r.CanTake || r.CanLeave {
		t.Fatalf("bob after alice took it: %+v", r)
	}

	resp, body = a.do("POST", onCall+"/holder", `{"staff":""}`, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("set vacant: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", onCall+"/holder", `{"staff":""}`, nil); resp.StatusCode != http.StatusConflict ||
		errorOf(t, body) != "Pharmacy on call is vacant already." {
		t.Fatalf("vacant again: %d %s", resp.StatusCode, body)
	}
	waitRole(t, b, "Pharmacy on call", "", 3)
}

// waitRole waits until the app shows role held by holder at seq.
func waitRole(t *testing.T, a *app, role, holder string, seq uint64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // a hang guard
	for {
		r := roleNamed(t, a.roles(), role)
		if r.Holder == holder && r.Sequence == seq {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %+v, want held by %q at %d", role, r, holder, seq)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
