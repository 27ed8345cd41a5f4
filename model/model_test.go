package model

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// The tests need Debian's spin and gcc (spin preprocesses the model with
// gcc, which also compiles pan). Without them they are skipped, except in
// CI (CI set, or POSTERN_TEST_SPIN=require as .ci/run sets), where they
// fail: there the model must not go unchecked.

const spinEnv = "POSTERN_TEST_SPIN"

func tools(t *testing.T) (spin, cc string) {
	t.Helper()
	required := os.Getenv("CI") != "" || os.Getenv(spinEnv) == "require"
	missing := func(what string, err error) {
		t.Helper()
		if required {
			t.Fatalf("no %s to check the claim model: %v (CI or %s=require is set; install Debian's spin and gcc: .ci/run does)", what, err, spinEnv)
		}
		t.Skipf("no %s (install Debian's spin and gcc to check the claim model)", what)
	}
	spin, err := exec.LookPath("spin")
	if err != nil {
		missing("spin", err)
	}
	cc, err = exec.LookPath("gcc")
	if err != nil {
		missing("gcc", err)
	}
	return spin, cc
}

// A run of the checker: pan's output and the figures read from it.
type run struct {
	out      string
	errors   string // pan's "errors: N"
	states   string // states stored
	seconds  string // pan's elapsed time
	violated string // the named boolean of the first failed assertion
	dir      string
}

var (
	errorsRe   = regexp.MustCompile(`errors: (\d+)`)
	statesRe   = regexp.MustCompile(`(\d+) states, stored`)
	elapsedRe  = regexp.MustCompile(`pan: elapsed time ([0-9.e+]+) seconds`)
	violatedRe = regexp.MustCompile(`assertion violated (\w+)`)
)

// check builds pan from claim.pml with the given spin defines in a
// temporary directory and runs an exhaustive safety search: assertions
// and invalid end states (deadlocks), with partial-order reduction and
// lossless state compression.
func check(t *testing.T, spin, cc string, optimise bool, defines ...string) run {
	t.Helper()
	src, err := os.ReadFile("claim.pml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "claim.pml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	// A hang guard only: the largest check takes some seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	do := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	do(spin, append(append([]string{}, defines...), "-a", "claim.pml")...)
	opt := "-O0" // the broken variants stop at their first violation
	if optimise {
		opt = "-O2"
	}
	// MEMLIM (MB) stops a search that outgrows the machine instead of
	// letting it swap; such a search is reported incomplete below.
	do(cc, opt, "-DSAFETY", "-DCOLLAPSE", "-DMEMLIM=3072", "-o", "pan", "pan.c")
	out := do(filepath.Join(dir, "pan"), "-m100000")
	r := run{out: out, dir: dir}
	if m := errorsRe.FindStringSubmatch(out); m != nil {
		r.errors = m[1]
	}
	if m := statesRe.FindStringSubmatch(out); m != nil {
		r.states = m[1]
	}
	if m := elapsedRe.FindStringSubmatch(out); m != nil {
		r.seconds = m[1]
	}
	if m := violatedRe.FindStringSubmatch(out); m != nil {
		r.violated = m[1]
	}
	if r.errors == "" || r.states == "" {
		t.Fatalf("pan's output has no result:\n%s", out)
	}
	return r
}

// trail replays pan's counterexample with spin, for the failure message.
func (r run) trail(spin string) string {
	cmd := exec.Command(spin, "-t", "-p", "-g", "claim.pml")
	cmd.Dir = r.dir
	out, err := cmd.CombinedOutput()
	if err != nil && len(out) == 0 {
		return err.Error()
	}
	lines := strings.Split(string(out), "\n")
	if len(lines) > 200 {
		lines = lines[len(lines)-200:]
	}
	return strings.Join(lines, "\n")
}

// The bounds checked exhaustively; model/README.md gives their figures.
var bounds = []struct {
	name    string
	defines []string
}{
	// Claim, assign, resolve, archive, reopen by the patient's message,
	// removal, a restart and a duplicated team message.
	{"defaults", nil},
	// Longer runs without the patient: four operations (claim races,
	// assignment chains, resolve and archive), removal and a restart.
	{"four operations", []string{"-DOPS=4", "-DPMSG=0", "-DDUPS=0"}},
	// Two conversations: the admin's scan after a removal covers both.
	{"two conversations", []string{"-DNCONV=2", "-DPMSG=0", "-DDUPS=0"}},
	// The role account: its holder's device claims the new conversation;
	// one change of holder (a handover or a release) races one staff
	// operation and the removal.
	{"role handover", roleBounds},
	// One change of holder with a relay restart (no staff operation).
	{"role handover, restart", []string{"-DROLES=1", "-DOPS=0", "-DPMSG=0", "-DDUPS=0"}},
	// Two changes of holder (there and back, or through vacant), devices
	// learning them at times of their own.
	{"two role changes", []string{"-DROLES=2", "-DOPS=0", "-DPMSG=0", "-DDUPS=0", "-DRESTARTS=0"}},
}

// roleBounds are the bounds with a role account's handover in them, for
// the checks about it.
var roleBounds = []string{"-DROLES=1", "-DOPS=1", "-DPMSG=0", "-DDUPS=0", "-DRESTARTS=0"}

func TestClaimModel(t *testing.T) {
	spin, cc := tools(t)
	for _, b := range bounds {
		t.Run(b.name, func(t *testing.T) {
			r := check(t, spin, cc, true, b.defines...)
			if r.errors != "0" {
				t.Fatalf("pan found %s error(s) (%s):\n%s\ncounterexample:\n%s", r.errors, r.violated, r.out, r.trail(spin))
			}
			for _, bad := range []string{"Search not completed", "max search depth too small", "out of memory"} {
				if strings.Contains(r.out, bad) {
					t.Fatalf("the search is incomplete (%s):\n%s", bad, r.out)
				}
			}
			t.Logf("%s: %s states stored, %s s", b.name, r.states, r.seconds)
		})
	}
}

// Each broken variant of the protocol must be caught, and by the property
// it breaks; a model whose checks cannot fail proves nothing.
func TestClaimModelBroken(t *testing.T) {
	spin, cc := tools(t)
	variants := []struct {
		define  string
		breaks  []string // the properties pan may name
		defines []string // the bounds, if not the defaults
	}{
		{"BROKEN_NO_CAS", []string{"stays_claimed", "never_two_owners"}, nil},
		{"BROKEN_ADOPT_NO_VERSION", []string{"never_two_owners"}, nil},
		{"BROKEN_APPLY_ANY", []string{"converged"}, nil},
		{"BROKEN_NO_REREAD", []string{"converged"}, nil},
		{"BROKEN_NO_REVOKE", []string{"staff_owner", "converged"}, nil},
		{"BROKEN_REVOKE_ONLY_REMOVED", []string{"staff_owner"}, nil},
		{"BROKEN_HANDOVER_ANY", []string{"stays_claimed"}, roleBounds},
	}
	for _, v := range variants {
		t.Run(v.define, func(t *testing.T) {
			r := check(t, spin, cc, false, append([]string{"-D" + v.define}, v.defines...)...)
			if r.errors == "0" {
				t.Fatalf("pan found no error in %s:\n%s", v.define, r.out)
			}
			if !slices.Contains(v.breaks, r.violated) {
				t.Fatalf("%s: pan reports %q, want one of %v:\n%s", v.define, r.violated, v.breaks, r.out)
			}
			t.Logf("%s: %s violated after %s states", v.define, r.violated, r.states)
		})
	}
}

// Each witness is an event the properties must be checked against: pan
// must find a run where it happens (claim.pml lists them), or the model
// has lost the behaviour it was written to explore.
func TestClaimModelWitnesses(t *testing.T) {
	spin, cc := tools(t)
	witnesses := []string{
		1: "a SetClaim loses a race",
		2: "a remaining member's SetClaim is refused",
		3: "the removed member's SetClaim is refused",
		4: "a restart drops the answer of an applied write",
		5: "the admins reassign a removed member's conversation",
		6: "a reopen lands",
		7: "a team message is delivered twice",
		8: "a team message arrives older than the view",
		// In the role's bounds:
		9:  "a handover from the previous holder lands",
		10: "a release lands",
		11: "a handover or release loses a race",
	}
	for n, event := range witnesses {
		if n == 0 {
			continue
		}
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var defines []string
			if n >= 9 {
				defines = roleBounds
			}
			r := check(t, spin, cc, false, append([]string{fmt.Sprintf("-DWITNESS=%d", n)}, defines...)...)
			if r.violated != "unreached" {
				t.Fatalf("no run where %s (witness %d):\n%s", event, n, r.out)
			}
		})
	}
}
