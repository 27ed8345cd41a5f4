package link

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/postern/postern/protocol"
)

// Run the targets with -fuzzminimizetime 1s: their seeds are kilobytes
// long, and the default minimisation (60 s for every new input) leaves
// little of a short run for fuzzing.

// FuzzParse: Parse never panics, and a code it accepts re-encodes to the
// same text (one code, one text).
func FuzzParse(f *testing.F) {
	c := testCode(f)
	f.Add(c.Text())
	f.Add(CodePrefix)
	f.Add("postern-link:2:AAAA")
	f.Add(payload("ws://127.0.0.1:7878/p", c.Mailbox, c.secret[:], uint64(c.Expires.Unix()), nil))
	f.Add(payload("wss://Relay.example.org/", c.Mailbox, c.secret[:], uint64(c.Expires.Unix()), []byte{1}))
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Parse(s, testNow)
		if err != nil {
			if got != nil {
				t.Fatal("a code with an error")
			}
			return
		}
		if got.Text() != strings.TrimSpace(s) {
			t.Fatalf("re-encoding %q gives %q", s, got.Text())
		}
		if !got.Expires.After(testNow) || got.Expires.After(testNow.Add(MaxLifetime+MaxClockSkew)) {
			t.Fatalf("accepted expiry %v", got.Expires)
		}
	})
}

// FuzzDecodeRequest: the request body decoder (what is left once the AEAD
// has authenticated) never panics, and re-encodes what it accepts.
func FuzzDecodeRequest(f *testing.F) {
	req := testRequest(fixtures())
	good := requestBytes(req.Signing.Bytes(), req.KEM.Bytes(), replyPub(), req.Name)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(requestBytes(req.Signing.Bytes(), req.KEM.Bytes(), replyPub(), "\u202e"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRequest(b)
		if err != nil {
			return
		}
		again := requestBytes(r.Signing.Bytes(), r.KEM.Bytes(), r.replyKey.Bytes(), r.Name)
		copy(again[len(again)-48:], r.ReplyMailbox[:])
		copy(again[len(again)-32:], r.ReplyCapability.SecretBytes())
		if !bytes.Equal(again, b) {
			t.Fatal("re-encoding differs")
		}
	})
}

// FuzzDecodeResponse: the response body decoder never panics, never
// allocates past the limits, and re-encodes what it accepts. (The checks
// of the secret and certificate after it are keys' and identity's, each
// fuzzed there.)
func FuzzDecodeResponse(f *testing.F) {
	good, err := encodeResponse(testResponse(fixtures()))
	if err != nil {
		f.Fatal(err)
	}
	noHist := testResponse(fixtures())
	noHist.History = nil
	nh, _ := encodeResponse(noHist)
	f.Add(good)
	f.Add(nh)
	f.Add(withHistoryFlag(good, 2))
	f.Add(good[:len(good)-3])
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := decodeResponse(b)
		if err != nil {
			return
		}
		r := raw.resp
		out := append(bytes.Clone(raw.identity), raw.cert...)
		out = append(out, byte(len(r.PersonName)))
		out = append(out, r.PersonName...)
		out = binary.BigEndian.AppendUint16(out, uint16(len(r.DeviceList)))
		out = append(out, r.DeviceList...)
		out = binary.BigEndian.AppendUint32(out, uint32(len(r.Contacts)))
		out = append(out, r.Contacts...)
		if h := r.History; h == nil {
			out = append(out, 0)
		} else {
			out = append(out, 1)
			out = append(out, h.BlobID[:]...)
			out = append(out, h.Key[:]...)
			out = append(out, h.Digest[:]...)
			out = binary.BigEndian.AppendUint64(out, h.PlainSize)
			out = binary.BigEndian.AppendUint64(out, h.CipherSize)
		}
		if !bytes.Equal(out, b) {
			t.Fatal("re-encoding differs")
		}
	})
}

// FuzzOpen: opening arbitrary bytes as a request or a response with a
// known code never panics and never authenticates.
func FuzzOpen(f *testing.F) {
	// A fresh code per process: the seed request opens only in the process
	// that sealed it (where it is skipped), so every input a worker opens
	// is a forgery under its own code.
	c, err := NewCode("wss://relay.example.org", protocol.MailboxID{1}, testNow)
	if err != nil {
		f.Fatal(err)
	}
	p, sealed, err := c.SealRequest(testRequest(fixtures()))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add(sealed[:overhead])
	f.Add([]byte{TagResponse, FormatVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		if bytes.Equal(b, sealed) {
			return
		}
		if _, err := c.OpenRequest(b); err == nil {
			t.Fatal("forged request opened")
		}
		if _, err := p.OpenResponse(b); err == nil {
			t.Fatal("forged response opened")
		}
	})
}
