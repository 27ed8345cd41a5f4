package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps: the relay binary and packages never link client code or
// private-key code (tailscale's TestDeps pattern).
func TestDeps(t *testing.T) {
	forbidden := []string{
		"github.com/postern/postern/client",
		"github.com/postern/postern/keys/identity",
	}
	for _, pkg := range []string{"github.com/postern/postern/cmd/postern-relay", "github.com/postern/postern/relay/..."} {
		out, err := exec.Command("go", "list", "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		deps := strings.Fields(string(out))
		if len(deps) < 10 {
			t.Fatalf("go list -deps %s listed only %d packages", pkg, len(deps))
		}
		for _, d := range deps {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s", pkg, d)
				}
			}
		}
	}
}
