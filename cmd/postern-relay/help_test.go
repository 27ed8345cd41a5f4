package main

import (
	"bytes"
	"strings"
	"testing"
)

// help names every command dispatch knows, and a mistyped or missing
// command points to it.
func TestHelpListsEveryCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"help"}, &out, &errb); code != 0 {
		t.Fatalf("help: exit %d, %s", code, errb.String())
	}
	for _, cmd := range []string{"serve", "config check", "invite create", "admin COMMAND", "backup FILE", "restore FILE", "audit verify", "audit export", "version"} {
		if !strings.Contains(out.String(), "\n  "+cmd) {
			t.Errorf("help does not list %q:\n%s", cmd, out.String())
		}
	}
	for _, args := range [][]string{nil, {"serv"}} {
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code != 1 || !strings.Contains(errb.String(), "hint: postern-relay help lists the commands") {
			t.Errorf("%q: exit %d, %q", args, code, errb.String())
		}
	}
}
