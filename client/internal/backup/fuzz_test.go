package backup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
)

// Run the targets with -fuzzminimizetime 1s: their seeds are kilobytes
// long, and the default minimisation (60 s for every new input) leaves
// little of a short run for fuzzing.

// FuzzParseRecoveryKey: never panics; a key it accepts prints as a text
// that parses back to the same key.
func FuzzParseRecoveryKey(f *testing.F) {
	f.Add(testKey(1).SecretText())
	f.Add("000002 000004 000006 000009 000003 000005 000008 000007 000001 000004 000006 000009 000000 000003 000005 000002")
	f.Add("655357-655358-655353")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseRecoveryKey(s)
		if err != nil {
			var ke *RecoveryKeyError
			if !errors.As(err, &ke) || ke.Group < 0 || ke.Group > Groups {
				t.Fatalf("error %v is not a RecoveryKeyError with a group", err)
			}
			return
		}
		again, err := ParseRecoveryKey(k.SecretText())
		if err != nil || !again.Equal(k) {
			t.Fatal("round trip failed")
		}
	})
}

// fuzzFile is a valid backup of fuzzRecords under testKey(1): 3 chunks.
var fuzzRecords = []Record{{RecordIdentity, pattern(1, 1000)}, {RecordMessages, pattern(2, ChunkSize)}, {RecordContacts, pattern(3, 5000)}}

var fuzzFile = sync.OnceValue(func() []byte { return write(&testing.T{}, testKey(1), fuzzRecords) })

// FuzzReader applies a script of 4-byte edits to a valid backup (flip a
// byte, cut, duplicate or drop a range, append), as whole chunks are too
// large for the fuzzer to find by mutation, or reads the raw input as a
// file when the script is a single byte. It never panics, and a file that
// reads without error has exactly the original records: no change goes
// unnoticed.
func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 10})                    // flip a header byte
	f.Add([]byte{0, 0, 1, 200})                   // flip a chunk byte
	f.Add([]byte{1, 0, 1, 0})                     // cut
	f.Add([]byte{2, 0, 0, 1})                     // duplicate a chunk
	f.Add([]byte{3, 0, 0, 1})                     // drop a chunk
	f.Add([]byte{4, 9, 9, 9})                     // append
	f.Add([]byte{5})                              // raw: empty
	f.Add(append([]byte{5}, Magic...))            // raw: only the magic
	f.Add(append([]byte{5}, fuzzFile()[:200]...)) // raw: a prefix
	f.Fuzz(func(t *testing.T, script []byte) {
		orig := fuzzFile()
		var file []byte
		if len(script) > 0 && script[0] == 5 {
			file = script[1:]
		} else {
			file = edit(orig, script)
		}
		got, err := readAll(file, testKey(1))
		if err != nil {
			return
		}
		if len(got) != len(fuzzRecords) {
			t.Fatalf("an edited file read as %d records", len(got))
		}
		for i := range got {
			if got[i].Type != fuzzRecords[i].Type || !bytes.Equal(got[i].Data, fuzzRecords[i].Data) {
				t.Fatal("an edited file read as other records")
			}
		}
	})
}

func edit(orig, script []byte) []byte {
	b := bytes.Clone(orig)
	for len(script) >= 4 && len(b) > 0 {
		op, arg := script[0]%5, int(binary.BigEndian.Uint16(script[2:4]))
		chunk := func(i int) (int, int) {
			s := HeaderSize + (i%3)*CipherChunkSize
			return min(s, len(b)), min(s+CipherChunkSize, len(b))
		}
		switch op {
		case 0:
			i := (int(script[1])<<16 | arg) % len(b)
			b[i] ^= 1 << (script[1] % 8)
		case 1:
			b = b[:(int(script[1])<<16|arg)%len(b)]
		case 2:
			s, e := chunk(arg)
			b = append(b[:e:e], append(bytes.Clone(b[s:e]), b[e:]...)...)
		case 3:
			s, e := chunk(arg)
			b = append(b[:s:s], b[e:]...)
		case 4:
			b = append(b, script[1:4]...)
		}
		script = script[4:]
	}
	return b
}

// FuzzRecordStream seals arbitrary plaintext as a backup's chunks (as only
// a holder of the key could), with a fuzzed record of filler in front so
// that records straddle chunk boundaries, and reads it: the record parser
// never panics, and the records it returns, framed again, are exactly a
// prefix of the plaintext.
func FuzzRecordStream(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 2, 'h', 'i'}, uint16(0))
	f.Add([]byte{0, 0, 0, 0, 0}, uint16(1))
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff}, uint16(3))
	f.Add([]byte{2, 0, 0, 0, 10, 1, 2}, uint16(ChunkSize-8))
	f.Add([]byte{2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0}, uint16(ChunkSize-5))
	f.Fuzz(func(t *testing.T, tail []byte, filler uint16) {
		plain := []byte{byte(RecordProfile)}
		plain = binary.BigEndian.AppendUint32(plain, uint32(filler))
		plain = append(plain, make([]byte, filler)...)
		plain = append(plain, tail...)
		var buf bytes.Buffer
		w, err := newWriter(&buf, testKey(1), testSalt)
		if err != nil {
			t.Fatal(err)
		}
		rest := plain
		for len(rest) > ChunkSize {
			w.buf = append(w.buf[:0], rest[:ChunkSize]...)
			if err := w.seal(false); err != nil {
				t.Fatal(err)
			}
			rest = rest[ChunkSize:]
		}
		w.buf = append(w.buf[:0], rest...)
		if err := w.seal(true); err != nil {
			t.Fatal(err)
		}
		r, err := NewReader(&buf, testKey(1))
		if err != nil {
			t.Fatal(err)
		}
		var framed []byte
		for {
			rec, err := r.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrMalformed) {
					t.Fatalf("authenticated plaintext gave %v", err)
				}
				if err == io.EOF && !bytes.Equal(framed, plain) {
					t.Fatal("EOF before the end of the plaintext")
				}
				return
			}
			if rec.Type == 0 || len(rec.Data) > MaxRecordSize {
				t.Fatalf("record type %d of %d bytes", rec.Type, len(rec.Data))
			}
			framed = append(framed, byte(rec.Type))
			framed = binary.BigEndian.AppendUint32(framed, uint32(len(rec.Data)))
			framed = append(framed, rec.Data...)
			if !bytes.HasPrefix(plain, framed) {
				t.Fatal("records differ from the plaintext")
			}
		}
	})
}
