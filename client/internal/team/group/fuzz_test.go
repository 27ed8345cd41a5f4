package group

import (
	"bytes"
	"testing"
)

// FuzzParse: Parse never panics, and what it accepts re-encodes to the
// same bytes.
func FuzzParse(f *testing.F) {
	p := people()
	f.Add(signed(f, sample(f, false), p[0]))
	f.Add(signed(f, sample(f, true), p[0]))
	f.Add([]byte{tagState, encodingVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		stored, serr := ParseStored(b)
		if err == nil && serr != nil {
			t.Fatalf("Parse accepts what ParseStored refuses: %v", serr)
		}
		if serr == nil {
			again, err := stored.Bytes()
			if err != nil || !bytes.Equal(again, b) {
				t.Fatalf("ParseStored: accepted input re-encodes differently (%v)", err)
			}
		}
		if err != nil {
			return
		}
		again, err := s.Bytes()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted input re-encodes differently (%v)", err)
		}
		_ = s.Clone()
		for i := range s.Members {
			_ = s.DisplayName(&s.Members[i])
		}
	})
}
