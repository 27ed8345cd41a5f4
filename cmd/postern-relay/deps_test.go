package main

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/postern/postern/relay/store/bboltstore"
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

// TestRelayDoesNotImportBackend: package relay (and the packages it
// imports) reach storage only through relay/store's interfaces; the bbolt
// backend is chosen and opened here, in cmd/postern-relay, so that a
// second backend needs no change to the relay.
func TestRelayDoesNotImportBackend(t *testing.T) {
	const backend = "github.com/postern/postern/relay/store/bboltstore"
	out, err := exec.Command("go", "list", "-deps", "github.com/postern/postern/relay").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps relay: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps relay listed only %d packages", len(deps))
	}
	found := false
	for _, d := range deps {
		if d == backend {
			t.Errorf("package relay depends on %s", backend)
		}
		found = found || d == "github.com/postern/postern/relay/store"
	}
	if !found {
		t.Errorf("package relay does not depend on relay/store: the listing is not what this test expects")
	}
}

// testStore opens the store in dir as serve does, for relays built in
// tests.
func testStore(t *testing.T, dir string) *bboltstore.Store {
	t.Helper()
	st, err := openStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
