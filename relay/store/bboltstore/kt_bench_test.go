package bboltstore

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkKTAppend: one device-list publish through the store (list
// record, leaf, tree nodes, signed head, one durable commit each), with
// the relay's real hybrid head signature ("signed") and without it
// (the store and the tree alone). db-bytes/entry is the growth of the
// database's used size (bbolt's high-water mark, not the file's
// preallocation) per append: "new" publishes a 6 KiB list for a new
// identity each time, "update" republishes one identity's list (the list
// record is replaced, so only the log grows; heads beyond KeptHeads are
// dropped). Run with -benchtime 5000x or more so that pages average out.
func BenchmarkKTAppend(b *testing.B) {
	list := make([]byte, 6<<10) // a typical 3-device list is about 6 KiB
	for _, c := range []struct {
		name           string
		signed, update bool
	}{{"signed-new", true, false}, {"unsigned-new", false, false}, {"unsigned-update", false, true}} {
		b.Run(c.name, func(b *testing.B) {
			s, _ := openTest(b)
			sign, _ := testSigner(b)
			if !c.signed {
				head := make([]byte, 3457)
				sign = func(uint64, [32]byte) ([]byte, error) { return head, nil }
			}
			used := func() int64 {
				var n int64
				s.db.View(func(tx *bolt.Tx) error { n = tx.Size(); return nil })
				return n
			}
			before := used()
			b.ResetTimer()
			for i := range b.N {
				p := testPublish(byte(i), 1, 0)
				p.Identity[1], p.Identity[2] = byte(i>>8), byte(i>>16)
				if c.update {
					p = testPublish(1, uint64(i)+1, uint64(i))
				}
				p.List = list
				if _, err := s.PublishDeviceList(ctx, p, sign); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(used()-before)/float64(b.N), "db-bytes/entry")
		})
	}
}
