package main

import (
	"os"
	"strconv"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdFlipbyte is "flipbyte FILE OFFSET": it inverts the byte at OFFSET of
// FILE (from the end when negative), to damage a file on purpose.
func cmdFlipbyte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	p := ts.MkAbs(args[0])
	b, err := os.ReadFile(p)
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	if off < 0 {
		off += len(b)
	}
	if off < 0 || off >= len(b) {
		ts.Fatalf("offset %s outside %s (%d bytes)", args[1], args[0], len(b))
	}
	b[off] ^= 0xff
	ts.Check(os.WriteFile(p, b, 0o600))
}
