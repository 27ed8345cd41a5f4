package backup

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkWrite and BenchmarkRead: throughput over records of 64 KiB
// (go test -bench . ./client/internal/backup).
func BenchmarkWrite(b *testing.B) {
	data := pattern(1, 64<<10)
	w, err := newWriter(io.Discard, testKey(1), testSalt)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteRecord(RecordMessages, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	data := pattern(1, 64<<10)
	recs := make([]Record, 256) // 16 MiB
	for i := range recs {
		recs[i] = Record{RecordMessages, data}
	}
	file := write(b, testKey(1), recs)
	b.SetBytes(int64(len(recs) * len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewReader(bytes.NewReader(file), testKey(1))
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}
