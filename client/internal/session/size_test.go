package session

import "testing"

func TestSizesInSpec(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"MessageOverhead", MessageOverhead, 97},
		{"PQOverhead", PQOverhead, 2280},
		{"InitSize", InitSize, 15519},
		{"InitSizeNoOneTime", InitSizeNoOneTime, 14351},
		{"MaxStateSize", MaxStateSize, 180008},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, SPEC.md section 11 says %d", c.name, c.got, c.want)
		}
	}
}
