package relay_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/internal/buildinfo"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/audit"
	"github.com/postern/postern/relay/relaytest"
)

// TestAuditLog: enrolling devices and creating invites add content-free
// entries; no entry holds a mailbox ID or an invite code; the log verifies
// after a stop.
func TestAuditLog(t *testing.T) {
	srv := relaytest.New(t, &relaytest.Options{Enrollment: relay.EnrollInvite})
	codes, err := srv.Relay().CreateInvites(bg, 3, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, srv.URL)
	d := newDevice(t)
	wantType[*protocol.Authenticated](t, c.enroll(d, codes[0]))
	id := deviceID(d)
	mb := wantType[*protocol.MailboxCreated](t, c.do(&protocol.CreateMailbox{})).Mailbox
	// Enrolling again is not a new enrolment.
	wantType[*protocol.Authenticated](t, dial(t, srv.URL).enroll(d, codes[1]))
	if err := srv.Relay().SuspendDevice(bg, id); err != nil {
		t.Fatal(err)
	}
	if err := srv.Relay().ReinstateDevice(bg, id); err != nil {
		t.Fatal(err)
	}
	if err := srv.Relay().RevokeDevice(bg, id); err != nil {
		t.Fatal(err)
	}
	c.ws.CloseNow()
	srv.Restart() // stop (signed head) and start again

	b, err := os.ReadFile(filepath.Join(srv.DataDir, audit.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	log := string(b)
	for _, want := range []string{
		`"event":"relay.start","fields":{"blob_quota":`,
		`"frame_burst":4000,"frame_rate":2000,`,         // every setting, including the reloadable limits
		`"trusted_proxies":0,`,                          // a count: the audit log holds no addresses
		`"version":"` + buildinfo.Read().Version + `"}`, // the build, with its commit
		`"commit":"` + buildinfo.Read().Commit + `",`,
		`"event":"invite.created","fields":{"count":3,"ttl_seconds":3600,"via":"relay"}`,
		`"event":"device.enrolled","fields":{"device":"` + id.String() + `"}`,
		`"event":"device.suspended","fields":{"device":"` + id.String() + `"}`,
		`"event":"device.restored","fields":{"device":"` + id.String() + `"}`,
		`"event":"device.revoked","fields":{"device":"` + id.String() + `"}`,
		`"event":"relay.stop"`,
		`"event":"audit.head"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s\n%s", want, log)
		}
	}
	if n := strings.Count(log, `"device.enrolled"`); n != 1 {
		t.Errorf("%d enrolment entries, want 1", n)
	}
	for _, secret := range append([]string{mb.String(), mb.Short()}, codes...) {
		if strings.Contains(strings.ToLower(log), strings.ToLower(secret)) {
			t.Errorf("audit log holds %q", secret)
		}
	}
	if bytes.Contains(b, []byte(strings.ToUpper(codes[0]))) {
		t.Error("audit log holds an invite code")
	}
	srv.Relay().Close()
	rep, err := audit.VerifyDir(srv.DataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Unsigned != 0 || rep.Heads < 2 {
		t.Errorf("report %+v", rep)
	}
}

// TestAuditPurge: a retention purge that deletes something is recorded
// as a count.
func TestAuditPurge(t *testing.T) {
	clk := newClock()
	srv := relaytest.New(t, &relaytest.Options{Now: clk.Now})
	_, _, mb, tok := owner(t, srv.URL)
	wantType[*protocol.Sent](t, dial(t, srv.URL).send(mb, tok, sealed(1)))
	clk.Advance(protocol.DefaultRetention + 2*time.Hour)
	if n, err := srv.Relay().PurgeExpired(bg); err != nil || n != 1 {
		t.Fatalf("purge: %d, %v", n, err)
	}
	srv.Relay().PurgeExpired(bg) // nothing: no entry
	b, _ := os.ReadFile(filepath.Join(srv.DataDir, audit.LogFile))
	if n := strings.Count(string(b), `"event":"retention.purge","fields":{"envelopes":1}`); n != 1 {
		t.Errorf("%d purge entries, want 1:\n%s", n, b)
	}
}
