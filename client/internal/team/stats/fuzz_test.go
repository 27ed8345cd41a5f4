package stats

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzParseEvent: any input never panics and fails only with
// ErrMalformed; an accepted event is valid and encodes to the same bytes.
func FuzzParseEvent(f *testing.F) {
	for _, e := range scenario() {
		b, err := e.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(make([]byte, EventSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEvent(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || e != (Event{}) {
				t.Fatalf("unexpected failure %v", err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
		out, err := e.MarshalBinary()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("re-encoding differs (%v):\n%x\n%x", err, data, out)
		}
		if added, err := New(nil).Add(e); err != nil || !added {
			t.Fatalf("a decoded event is not counted: %v", err)
		}
	})
}

// FuzzParseRecord: any input never panics and fails only with
// ErrMalformed; an accepted record encodes to the same bytes.
func FuzzParseRecord(f *testing.F) {
	rs, _ := buildLog(f, team, entries())
	for _, r := range rs {
		b, err := r.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(make([]byte, RecordSize))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseRecord(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected failure %v", err)
			}
			return
		}
		out, err := r.MarshalBinary()
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("re-encoding differs (%v):\n%x\n%x", err, data, out)
		}
	})
}

// FuzzVerifyLog: any log file never panics; ParseLog fails only with
// ErrMalformed and VerifyLog only with a *LogError; the only log of the
// seeds' entries that verifies is the committed one, or a prefix of it.
func FuzzVerifyLog(f *testing.F) {
	rs, l := buildLog(f, team, entries())
	file := encodeLog(f, rs)
	head := l.Head()
	f.Add(file, false)
	f.Add(file, true)
	f.Add(file[:3*RecordSize], false)
	f.Add(append(bytes.Clone(file[RecordSize:]), file[:RecordSize]...), false)
	f.Fuzz(func(t *testing.T, data []byte, useHead bool) {
		records, err := ParseLog(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("unexpected failure %v", err)
			}
			return
		}
		var trusted *Head
		if useHead {
			trusted = &head
		}
		got, err := VerifyLog(team, records, trusted)
		if err != nil {
			var le *LogError
			if !errors.As(err, &le) || got != (Head{}) {
				t.Fatalf("unexpected failure %v", err)
			}
			return
		}
		// Forging a chain needs a SHA-256 preimage, so what verifies is
		// a prefix of the seed log (all of it with the head).
		if !bytes.HasPrefix(file, data) || (useHead && !bytes.Equal(file, data)) {
			t.Fatalf("a log other than the seed's verified:\n%x", data)
		}
		if n := len(records); n > 0 && got != (Head{Seq: uint64(n), Hash: rs[n-1].Hash}) {
			t.Fatalf("head %v", got)
		}
	})
}

// FuzzAddOrder: the figures of a set of events do not depend on the order
// they are counted in, nor on repeats.
func FuzzAddOrder(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3})
	f.Add([]byte{24, 23, 22, 21, 20, 0, 0, 0, 5, 5})
	f.Add(bytes.Repeat([]byte{7, 3, 19}, 20))
	want := scenarioFigures()
	f.Fuzz(func(t *testing.T, order []byte) {
		events := scenario()
		// Each byte moves one event to the front; then the rest as
		// they are; repeats are counted again.
		var seq []Event
		for _, b := range order {
			seq = append(seq, events[int(b)%len(events)])
		}
		seq = append(seq, events...)
		if got := load(t, seq).Snapshot(); !reflect.DeepEqual(got, want) {
			t.Fatalf("figures depend on the order:\n got %+v\nwant %+v", got, want)
		}
	})
}
