package relay_test

import (
	"os"
	"os/user"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
)

// TestAdminAuditRecordsOSUser: an admin command's audit entry records the
// operating-system user who ran it: from the kernel's peer credentials of
// the admin socket on Linux (a name the request claims is ignored there),
// elsewhere the claimed name, marked as claimed. A call through the
// library API has no operator to record.
func TestAdminAuditRecordsOSUser(t *testing.T) {
	srv := relaytest.New(t, nil)
	serveAdmin(t, srv)
	me, err := user.Current()
	if err != nil {
		t.Skipf("no current user here: %v", err)
	}
	t.Setenv("SUDO_USER", "alice")
	if _, err := admin(t, srv, relay.AdminRequest{Op: "invite.create", Count: 2, OSUser: "mallory"}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Relay().CreateInvites(bg, 3, time.Hour); err != nil {
		t.Fatal(err)
	}
	viaSocket := auditLines(t, srv, `"event":"invite.created"`, `"count":2`)
	viaAPI := auditLines(t, srv, `"event":"invite.created"`, `"count":3`)
	if len(viaSocket) != 1 || len(viaAPI) != 1 {
		t.Fatalf("invite.created entries: %q %q", viaSocket, viaAPI)
	}
	if runtime.GOOS == "linux" {
		uid := strconv.Itoa(os.Getuid())
		if l := auditLines(t, srv, `"count":2`, `"os_uid":"`+uid+`"`, `"os_user":"`+me.Username+`"`); len(l) != 1 {
			t.Errorf("the admin entry does not record uid %s (%s): %s", uid, me.Username, viaSocket[0])
		}
		if l := auditLines(t, srv, `"count":2`, "mallory"); len(l) != 0 {
			t.Errorf("a claimed user name was recorded over the kernel's: %s", l[0])
		}
	} else if l := auditLines(t, srv, `"count":2`, `"os_user":"mallory"`, `"os_user_claimed":true`); len(l) != 1 {
		t.Errorf("the claimed user is not recorded as claimed: %s", viaSocket[0])
	}
	if l := auditLines(t, srv, `"count":2`, `"sudo_user":"alice"`); len(l) != 1 {
		t.Errorf("the sudo user is not recorded: %s", viaSocket[0])
	}
	if l := auditLines(t, srv, `"count":3`, `"os_`); len(l) != 0 {
		t.Errorf("an API call recorded an operator: %s", l[0])
	}
}
