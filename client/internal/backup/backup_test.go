package backup

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

var testSalt = [SaltSize]byte{1, 2, 3, 4}

// pattern returns n bytes that differ between records (seed) and offsets.
func pattern(seed byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed ^ byte(i) ^ byte(i>>8)
	}
	return b
}

func write(t testing.TB, key RecoveryKey, recs []Record) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := newWriter(&buf, key, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.WriteRecord(r.Type, r.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readAll returns the records read before the first error, and the error
// (nil for a clean io.EOF).
func readAll(b []byte, key RecoveryKey) ([]Record, error) {
	r, err := NewReader(bytes.NewReader(b), key)
	if err != nil {
		return nil, err
	}
	var out []Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			if _, again := r.Next(); again != err {
				return out, errors.New("error not sticky")
			}
			return out, err
		}
		out = append(out, rec)
	}
}

func sameRecords(t *testing.T, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d records, want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].Type != want[i].Type || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("record %d differs", i)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	key := testKey(1)
	cases := map[string][]Record{
		"no records":         nil,
		"one empty record":   {{RecordProfile, nil}},
		"small":              {{RecordIdentity, []byte("identity")}, {RecordContacts, []byte("contacts")}, {0xee, []byte("a type this version does not name")}},
		"exactly one chunk":  {{RecordMessages, pattern(1, ChunkSize-RecordHeaderSize)}},
		"one chunk and one":  {{RecordMessages, pattern(1, ChunkSize-RecordHeaderSize+1)}},
		"records across 4":   {{RecordMessages, pattern(2, 100000)}, {RecordAttachments, pattern(3, 7)}, {RecordConversations, pattern(4, 150000)}},
		"the largest record": {{RecordMessages, pattern(5, MaxRecordSize)}, {RecordProfile, []byte{1}}},
	}
	for name, recs := range cases {
		t.Run(name, func(t *testing.T) {
			b := write(t, key, recs)
			plain := 0
			for _, r := range recs {
				plain += RecordHeaderSize + len(r.Data)
			}
			chunks := max(1, (plain+ChunkSize-1)/ChunkSize)
			if want := HeaderSize + plain + chunks*16; len(b) != want {
				t.Fatalf("file of %d bytes, want %d (%d chunks)", len(b), want, chunks)
			}
			got, err := readAll(b, key)
			if err != nil {
				t.Fatal(err)
			}
			sameRecords(t, got, recs)
		})
	}
	// A fresh salt per file: two backups of the same records differ.
	var a, b bytes.Buffer
	for _, buf := range []*bytes.Buffer{&a, &b} {
		w, err := NewWriter(buf, key)
		if err != nil {
			t.Fatal(err)
		}
		w.WriteRecord(RecordProfile, []byte("same"))
		w.Close()
	}
	if bytes.Equal(a.Bytes()[:HeaderSize], b.Bytes()[:HeaderSize]) || bytes.Equal(a.Bytes()[HeaderSize:], b.Bytes()[HeaderSize:]) {
		t.Fatal("two backups share a salt or a ciphertext")
	}
}

func TestWrongKey(t *testing.T) {
	b := write(t, testKey(1), []Record{{RecordIdentity, []byte("x")}})
	if _, err := readAll(b, testKey(2)); !errors.Is(err, ErrWrongKey) || errors.Is(err, ErrDamaged) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestHeaderDamage(t *testing.T) {
	key := testKey(1)
	b := write(t, key, []Record{{RecordIdentity, []byte("x")}})
	for i := range HeaderSize {
		for _, bit := range []byte{0x01, 0x80} {
			c := bytes.Clone(b)
			c[i] ^= bit
			_, err := readAll(c, key)
			var want error
			switch {
			case i < len(Magic):
				want = ErrNotBackup
			case i == len(Magic):
				want = ErrUnsupportedVersion
			default:
				want = ErrDamaged
			}
			if !errors.Is(err, want) {
				t.Fatalf("header byte %d ^ %#x: %v, want %v", i, bit, err, want)
			}
		}
	}
	// A header altered and its checksum recomputed (not accidental damage)
	// is refused by the key check, as a wrong key.
	c := bytes.Clone(b)
	c[30] ^= 1
	copy(c[signedHeaderSize+32:HeaderSize], headerSum(c[:signedHeaderSize+32]))
	if _, err := readAll(c, key); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("altered salt with a fixed checksum: %v", err)
	}
	// Parameters this version does not allow, with a valid checksum.
	for _, i := range []int{len(Magic) + 1, len(Magic) + 4} {
		c := bytes.Clone(b)
		c[i] ^= 1
		copy(c[signedHeaderSize+32:HeaderSize], headerSum(c[:signedHeaderSize+32]))
		if _, err := readAll(c, key); !errors.Is(err, ErrMalformed) {
			t.Fatalf("header parameter byte %d changed: %v", i, err)
		}
	}
	for _, in := range [][]byte{nil, []byte("PK\x03\x04 a zip file, not a backup"), []byte("postern-backuq")} {
		if _, err := readAll(in, key); !errors.Is(err, ErrNotBackup) {
			t.Fatalf("%q: %v, want ErrNotBackup", in, err)
		}
	}
}

func TestTruncation(t *testing.T) {
	key := testKey(1)
	recs := []Record{{RecordMessages, pattern(1, 70000)}, {RecordMessages, pattern(2, 70000)}, {RecordProfile, []byte("last")}}
	b := write(t, key, recs) // 3 chunks, the last short
	cases := []struct {
		name string
		n    int
		want error
		recs int // records returned before the error
		text string
	}{
		{"inside the magic", 5, ErrTruncated, 0, "header"},
		{"inside the header", HeaderSize - 1, ErrTruncated, 0, "header"},
		{"after the header", HeaderSize, ErrTruncated, 0, "no chunk 0"},
		{"after chunk 0", HeaderSize + CipherChunkSize, ErrTruncated, 0, "not its final chunk"},
		{"after chunk 1 (record 0 ends in chunk 1, which fails)", HeaderSize + 2*CipherChunkSize, ErrTruncated, 0, "not its final chunk"},
		{"inside the final chunk", len(b) - 1, ErrDamaged, 1, "cut inside it"},
		{"inside chunk 1", HeaderSize + CipherChunkSize + 100, ErrDamaged, 0, "cut inside it"},
		{"inside a tag", HeaderSize + 10, ErrDamaged, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(b[:tc.n], key)
			if !errors.Is(err, tc.want) || len(got) != tc.recs || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("%d records, %v; want %d, %v %q", len(got), err, tc.recs, tc.want, tc.text)
			}
		})
	}
}

func TestChunkDamage(t *testing.T) {
	key := testKey(1)
	// Record 0 ends in chunk 0; record 1 spans chunks 0 and 1; record 2
	// is wholly inside chunk 1; record 3 is in chunk 2.
	recs := []Record{
		{RecordIdentity, pattern(1, 1000)},
		{RecordMessages, pattern(2, ChunkSize)},
		{RecordContacts, pattern(3, 1000)},
		{RecordMessages, pattern(4, ChunkSize)},
	}
	b := write(t, key, recs)
	chunk := func(i int) []byte {
		return b[HeaderSize+i*CipherChunkSize : min(len(b), HeaderSize+(i+1)*CipherChunkSize)]
	}
	if n := (len(b) - HeaderSize + CipherChunkSize - 1) / CipherChunkSize; n != 3 {
		t.Fatalf("%d chunks, want 3", n)
	}
	join := func(parts ...[]byte) []byte {
		out := bytes.Clone(b[:HeaderSize])
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	flip := func(i, off int) []byte {
		c := bytes.Clone(b)
		c[HeaderSize+i*CipherChunkSize+off] ^= 0x10
		return c
	}
	cases := []struct {
		name string
		file []byte
		want error
		recs int
		text string
	}{
		{"a byte of chunk 1", flip(1, 500), ErrDamaged, 1, "chunk 1 does not authenticate"},
		{"the tag of chunk 0", flip(0, CipherChunkSize-1), ErrDamaged, 0, "chunk 0 does not"},
		{"a byte of the final chunk", flip(2, 3), ErrDamaged, 3, "chunk 2 does not"},
		{"chunks 0 and 1 swapped", join(chunk(1), chunk(0), chunk(2)), ErrOutOfOrder, 0, "chunk 1 of the backup is found at position 0"},
		{"chunk 0 duplicated", join(chunk(0), chunk(0), chunk(1), chunk(2)), ErrOutOfOrder, 1, "chunk 0 of the backup is found at position 1"},
		{"chunk 1 dropped", join(chunk(0), chunk(2)), ErrOutOfOrder, 1, "chunk 2 of the backup is found at position 1"},
		{"the final chunk first", join(chunk(2)), ErrOutOfOrder, 0, "chunk 2"},
		{"a chunk of another backup", join(chunk(0), write(t, key, recs)[HeaderSize+CipherChunkSize:][:0], altChunk(t, key, recs, 1), chunk(2)), ErrDamaged, 1, "chunk 1 does not"},
		{"data appended", append(bytes.Clone(b), 0), ErrDamaged, 3, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(tc.file, key)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("%v; want %v %q", err, tc.want, tc.text)
			}
			if len(got) != tc.recs {
				t.Fatalf("%d records before the error, want %d", len(got), tc.recs)
			}
			sameRecords(t, got, recs[:tc.recs])
		})
	}
	// A full final chunk followed by extra bytes.
	full := write(t, key, []Record{{RecordMessages, pattern(1, 2*ChunkSize-RecordHeaderSize)}})
	if _, err := readAll(append(full, make([]byte, 20)...), key); !errors.Is(err, ErrDamaged) {
		t.Fatalf("bytes after a full final chunk: %v", err)
	}
	if _, err := readAll(append(bytes.Clone(full), full[HeaderSize:HeaderSize+CipherChunkSize]...), key); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "after the final chunk") {
		t.Fatalf("a chunk after the final chunk: %v", err)
	}
}

// altChunk is chunk i of a backup of the same records under the same key
// with another salt.
func altChunk(t *testing.T, key RecoveryKey, recs []Record, i int) []byte {
	var buf bytes.Buffer
	w, err := newWriter(&buf, key, [SaltSize]byte{9})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		w.WriteRecord(r.Type, r.Data)
	}
	w.Close()
	return buf.Bytes()[HeaderSize+i*CipherChunkSize : HeaderSize+(i+1)*CipherChunkSize]
}

// TestMalformedRecords seals, under the right key, plaintexts that break
// the record framing: they authenticate and are still refused.
func TestMalformedRecords(t *testing.T) {
	key := testKey(1)
	cases := map[string]struct {
		chunks [][]byte // plaintext of each chunk; the last is final
		recs   int
		text   string
	}{
		"type 0":                      {[][]byte{{0, 0, 0, 0, 1, 7}}, 0, "type 0"},
		"record above the limit":      {[][]byte{{5, 1, 0, 0, 1}}, 0, "at most"},
		"record cut by the end":       {[][]byte{append([]byte{5, 0, 0, 0, 1, 7}, 5, 0, 0, 0, 9, 1)}, 1, "cut by the end"},
		"header cut by the end":       {[][]byte{{5, 0, 0}}, 0, "cut by the end"},
		"empty final chunk after one": {[][]byte{append([]byte{5, 0, 0, 0xff, 0xfb}, pattern(0, ChunkSize-5)...), {}}, 1, "empty final chunk"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := newWriter(&buf, key, testSalt)
			if err != nil {
				t.Fatal(err)
			}
			for i, p := range tc.chunks {
				w.buf = append(w.buf[:0], p...)
				if err := w.seal(i == len(tc.chunks)-1); err != nil {
					t.Fatal(err)
				}
			}
			got, err := readAll(buf.Bytes(), key)
			if !errors.Is(err, ErrMalformed) || len(got) != tc.recs || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("%d records, %v; want %d, ErrMalformed %q", len(got), err, tc.recs, tc.text)
			}
		})
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk full")
	}
	f.after--
	return len(p), nil
}

func TestWriterErrors(t *testing.T) {
	key := testKey(1)
	w, err := newWriter(io.Discard, key, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(0, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("type 0: %v", err)
	}
	if err := w.WriteRecord(RecordMessages, make([]byte, MaxRecordSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("large record: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(RecordProfile, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("Close twice: %v", err)
	}
	if _, err := newWriter(&failWriter{}, key, testSalt); err == nil {
		t.Error("header write error not reported")
	}
	w, _ = newWriter(&failWriter{after: 1}, key, testSalt)
	if err := w.WriteRecord(RecordMessages, make([]byte, 2*ChunkSize)); err == nil || err.Error() != "disk full" {
		t.Fatalf("chunk write error: %v", err)
	}
	if err := w.WriteRecord(RecordProfile, nil); err == nil || w.Close() == nil {
		t.Fatal("write error not sticky")
	}
}

// TestConstantMemory: writing allocates nothing per record, and reading
// allocates the returned record only, whatever the backup's size.
func TestConstantMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	key := testKey(1)
	w, err := newWriter(io.Discard, key, testSalt)
	if err != nil {
		t.Fatal(err)
	}
	data := pattern(1, 40000)
	if a := testing.AllocsPerRun(200, func() { w.WriteRecord(RecordMessages, data) }); a != 0 {
		t.Errorf("WriteRecord allocates %v times per record", a)
	}
	recs := make([]Record, 300)
	for i := range recs {
		recs[i] = Record{RecordMessages, data}
	}
	r, err := NewReader(bytes.NewReader(write(t, key, recs)), key)
	if err != nil {
		t.Fatal(err)
	}
	r.Next() // the buffer reaches its size
	if a := testing.AllocsPerRun(200, func() {
		if _, err := r.Next(); err != nil {
			t.Fatal(err)
		}
	}); a > 1 {
		t.Errorf("Next allocates %v times per record (the record's data only is expected)", a)
	}
	if c := cap(r.buf); c > 2*(ChunkSize+len(data)) {
		t.Errorf("reader buffer grew to %d bytes", c)
	}
}
