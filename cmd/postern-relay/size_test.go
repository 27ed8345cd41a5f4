package main

import "testing"

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"4294967296", 4 << 30, true},
		{"4GiB", 4 << 30, true},
		{"512 MiB", 512 << 20, true},
		{"64KiB", 64 << 10, true},
		{"1TiB", 1 << 40, true},
		{"4GB", 0, false},
		{"0", 0, false},
		{"-1", 0, false},
		{"GiB", 0, false},
		{"99999999999TiB", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var b byteSize
			err := b.Set(tt.in)
			if (err == nil) != tt.ok || (tt.ok && int64(b) != tt.want) {
				t.Fatalf("Set(%q) = %d, %v; want %d ok=%v", tt.in, b, err, tt.want, tt.ok)
			}
		})
	}
	b := byteSize(10 << 30)
	if b.String() != "10GiB" {
		t.Errorf("String = %q", b.String())
	}
}
