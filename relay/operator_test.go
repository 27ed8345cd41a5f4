package relay_test

import (
	"bytes"
	"log/slog"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

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

// syncBuffer is a bytes.Buffer safe for the relay's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestConnectionLogsAtDebug: one log pair per connection is too many for
// the info level: connection open and close are logged at debug only.
func TestConnectionLogsAtDebug(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		var logs syncBuffer
		srv := relaytest.New(t, &relaytest.Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: level}))})
		c := dial(t, srv.URL)
		c.ws.Close(websocket.StatusNormalClosure, "")
		srv.Close()
		got := logs.String()
		opened, closed := strings.Contains(got, "connection opened"), strings.Contains(got, "connection closed")
		if level == slog.LevelInfo && (opened || closed) {
			t.Errorf("at info, the log has connection open/close lines:\n%s", got)
		}
		if level == slog.LevelDebug && !(opened && closed) {
			t.Errorf("at debug, the log lacks connection open/close lines:\n%s", got)
		}
	}
}
