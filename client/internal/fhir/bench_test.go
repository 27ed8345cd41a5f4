package fhir

import (
	"testing"
)

// The figures of an export and its check: the three-message sample, and a
// message with one file of MaxAttachmentSize (an export of about 43 MiB).
// B/op shows what a large export costs in memory.

func bigConversation() *Conversation {
	c := sampleConversation()
	c.Messages = c.Messages[1:2]
	c.Messages[0].Attachments = []Attachment{{Name: "scan.pdf", MediaType: "application/pdf", Data: make([]byte, MaxAttachmentSize)}}
	return c
}

func BenchmarkExport(b *testing.B) {
	s := testSigner(b, "robin")
	for _, bc := range []struct {
		name string
		c    func() *Conversation
	}{{"sample", sampleConversation}, {"32MiB-file", bigConversation}} {
		b.Run(bc.name, func(b *testing.B) {
			c := bc.c()
			b.ReportAllocs()
			for b.Loop() {
				if bc.name == "sample" {
					c = sampleConversation() // its file is a reader
				}
				out, err := Export(c, s, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(out)))
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	s := testSigner(b, "robin")
	for _, bc := range []struct {
		name string
		c    *Conversation
	}{{"sample", sampleConversation()}, {"32MiB-file", bigConversation()}} {
		b.Run(bc.name, func(b *testing.B) {
			out, err := Export(bc.c, s, nil)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(out)))
			b.ReportAllocs()
			for b.Loop() {
				if err := Verify(out, s.Public()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
