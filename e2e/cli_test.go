package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// buildCLI builds cmd/postern once into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "postern")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/postern/postern/cmd/postern").CombinedOutput()
	if err != nil {
		t.Fatalf("build postern: %v\n%s", err, out)
	}
	return bin
}

// cliRunner runs the postern binary with POSTERN_PASSPHRASE set.
type cliRunner struct {
	t     *testing.T
	bin   string
	ctx   context.Context
	calls int
}

func (r *cliRunner) run(home, stdin string, args ...string) string {
	r.t.Helper()
	r.calls++
	cmd := exec.CommandContext(r.ctx, r.bin, append([]string{"--home", home}, args...)...)
	cmd.Env = append(os.Environ(), "POSTERN_PASSPHRASE="+string(pass))
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("postern %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

type cliMessage struct {
	ID       string `json:"id"`
	From     string `json:"from"`
	To       string `json:"to"`
	Text     string `json:"text"`
	Outgoing bool   `json:"outgoing"`
	Notice   bool   `json:"notice"`
}

// TestCLIThousandMessagesEachWayOfflineHalfTheTime is the sessions
// issue's end-to-end requirement: a conversation of 1,000 messages each
// way through a real relay, each side offline half the time, every
// message shown exactly once and in order by the CLI.
//
// What the CLI drives: invite, accept, every sync (the only way a side
// comes online and receives: 80 syncs), one send per offline period (80
// sends, text on standard input with "send NAME -"), and the final
// "inbox --json" of both sides, which the assertions read. What the
// library drives, for time: the homes are made with client.Init at a cheap
// Argon2id cost (the key file records its cost, so every CLI call then
// opens it cheaply; the CLI cannot lower the default of ~0.3 s a call), and
// the other 24 messages of each period are sent with client.Open + Send,
// which, like "postern send", never connects as the device and so never
// receives. In each of the 80 periods one side sends 25 messages while the
// other runs no process at all; then the other side syncs and answers.
func TestCLIThousandMessagesEachWayOfflineHalfTheTime(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI and sends 2,000 messages; run without -short")
	}
	// A hang guard, not a time limit: about 3 minutes under the race
	// detector with the suite on two cores, over 5 on a busier machine.
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	start := time.Now()
	r := &cliRunner{t: t, bin: buildCLI(t), ctx: ctx}
	srv := relaytest.New(t, nil)
	homes := map[string]string{}
	for _, name := range []string{"Alice", "Bob"} {
		homes[name] = filepath.Join(t.TempDir(), name)
		c, err := client.Init(ctx, homes[name], pass, srv.URL, name, opts())
		if err != nil {
			t.Fatalf("init %s: %v", name, err)
		}
		c.Close()
	}
	code := strings.TrimSpace(r.run(homes["Alice"], "", "invite"))
	r.run(homes["Bob"], "", "accept", code, "--as", "Alice")
	if out := r.run(homes["Alice"], "", "sync"); !strings.Contains(out, "0 new messages") {
		t.Fatalf("alice's first sync: %q", out)
	}

	const (
		total  = 1000 // each way
		period = 25   // messages sent while the other side is offline
	)
	peer := map[string]string{"Alice": "Bob", "Bob": "Alice"}
	// want[name] is name's inbox as it must read: outgoing and incoming
	// texts in the order they were stored.
	want := map[string][]cliMessage{}
	sent := map[string]int{}
	for p := 0; p < 2*total/period; p++ {
		from := []string{"Alice", "Bob"}[p%2]
		to := peer[from]
		c, err := client.Open(homes[from], pass, opts())
		if err != nil {
			t.Fatal(err)
		}
		for i := range period {
			text := fmt.Sprintf("%s %04d", from, sent[from])
			sent[from]++
			if i < period-1 {
				if _, err := c.Send(ctx, to, text); err != nil {
					t.Fatalf("period %d: send %q: %v", p, text, err)
				}
			} else {
				c.Close()
				if out := r.run(homes[from], text+"\n", "send", to, "-"); !strings.HasPrefix(out, "Sent to "+to) {
					t.Fatalf("postern send: %q", out)
				}
			}
			want[from] = append(want[from], cliMessage{From: "me", To: to, Text: text, Outgoing: true})
			want[to] = append(want[to], cliMessage{From: from, To: "me", Text: text})
		}
		// The other side comes online.
		if out := r.run(homes[to], "", "sync"); strings.TrimSpace(out) != fmt.Sprintf("%d new messages", period) {
			t.Fatalf("period %d: %s's sync printed %q, want %d new messages", p, to, out, period)
		}
	}
	for name, home := range homes {
		var got []cliMessage
		if err := json.Unmarshal([]byte(r.run(home, "", "inbox", "--json")), &got); err != nil {
			t.Fatalf("%s's inbox --json: %v", name, err)
		}
		if len(got) != len(want[name]) {
			t.Fatalf("%s's inbox has %d messages, want %d", name, len(got), len(want[name]))
		}
		ids := map[string]bool{}
		for i, m := range got {
			w := want[name][i]
			if m.From != w.From || m.To != w.To || m.Text != w.Text || m.Outgoing != w.Outgoing || m.Notice {
				t.Fatalf("%s's inbox[%d] = %+v, want %+v", name, i, m, w)
			}
			if ids[m.ID] {
				t.Fatalf("%s's inbox shows message %s twice", name, m.ID)
			}
			ids[m.ID] = true
		}
	}
	t.Logf("%d messages each way, %d CLI calls, %v", total, r.calls, time.Since(start).Round(time.Second))
}
