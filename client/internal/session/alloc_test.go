package session

import "testing"

// Allocation budgets of the steady-state hot paths (the next message of the
// current chain, no DH or PQ step), asserted on allocations, not time.
// Seal: the message (one buffer holding AD || message, sealed in place) and
// the header and body AEADs (the body key changes with every message).
// Open: one scratch buffer (plaintext, decrypted header, AD) and the header
// and body AEADs. The state is not copied on either path.
const (
	sealAllocBudget = 3
	openAllocBudget = 3
)

func TestSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes escape analysis and adds allocations")
	}
	a, r := steady(t)
	const runs = 100
	msgs := make([][]byte, 0, runs+1)
	seal := testing.AllocsPerRun(runs, func() {
		m, err := a.Seal(text100, padTo1024)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	})
	i := 0
	open := testing.AllocsPerRun(runs, func() {
		if _, err := r.Open(msgs[i]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	t.Logf("allocations per message: Seal %.1f (budget %d), Open %.1f (budget %d)", seal, sealAllocBudget, open, openAllocBudget)
	if seal > sealAllocBudget {
		t.Errorf("Seal: %.1f allocations per message, budget %d", seal, sealAllocBudget)
	}
	if open > openAllocBudget {
		t.Errorf("Open: %.1f allocations per message, budget %d", open, openAllocBudget)
	}
}
