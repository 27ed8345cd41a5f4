package group

import "testing"

// TestMaxStateSizeInSpec pins the figure SPEC.md section 15.5 gives.
func TestMaxStateSizeInSpec(t *testing.T) {
	if MaxStateSize != 161590 {
		t.Fatalf("MaxStateSize %d: update SPEC.md 15.5", MaxStateSize)
	}
}
