package queue

import (
	"testing"
)

// The figures of SPEC.md 15.6: sealing and opening one register value,
// and the token of a conversation.
//
//	go test -run '^$' -bench . ./client/internal/team/queue/

func BenchmarkSealValue(b *testing.B) {
	s := newTestSpace(b)
	v := sampleValues()[3]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Seal(conv(1), v); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenValue(b *testing.B) {
	s := newTestSpace(b)
	sealed := mustSeal(b, s, conv(1), sampleValues()[3])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Open(conv(1), sealed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToken(b *testing.B) {
	k := mustClaimKey(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = k.Token(conv(1))
	}
}
