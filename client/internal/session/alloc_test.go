package session

import (
	"bytes"
	"testing"
)

// Allocation budgets of the steady-state hot paths (the next message of the
// current chain, no DH or PQ step), asserted on allocations, not time.
// Seal: the message and the header and body AEADs (the body key changes
// with every message). Open: the plaintext and the two AEADs. SealAppend
// and OpenAppend into a buffer with room: the two AEADs only (the
// associated data and the decrypted header use the session's scratch
// buffer). The state is not copied on any of these paths.
const (
	sealAllocBudget   = 3
	openAllocBudget   = 3
	appendAllocBudget = 2
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

func TestSteadyStateAppendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes escape analysis and adds allocations")
	}
	a, r := steady(t)
	const runs = 100
	msgs := make([][]byte, 0, runs+1)
	buf := make([]byte, 0, 2048)
	seal := testing.AllocsPerRun(runs, func() {
		m, err := a.SealAppend(buf[:0], text100, padTo1024)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, bytes.Clone(m))
	})
	i := 0
	open := testing.AllocsPerRun(runs, func() {
		if _, err := r.OpenAppend(buf[:0], msgs[i]); err != nil {
			t.Fatal(err)
		}
		i++
	})
	// The clone of each message is the test's own allocation.
	seal--
	t.Logf("allocations per message: SealAppend %.1f, OpenAppend %.1f (budget %d)", seal, open, appendAllocBudget)
	if seal > appendAllocBudget || open > appendAllocBudget {
		t.Errorf("SealAppend %.1f, OpenAppend %.1f allocations per message, budget %d", seal, open, appendAllocBudget)
	}
}
