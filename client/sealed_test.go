package client

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

type testDevice struct {
	dev *identity.Device
	id  keys.Fingerprint
}

func newTestDevice(tb testing.TB) testDevice {
	tb.Helper()
	id, err := identity.GenerateIdentity()
	if err != nil {
		tb.Fatal(err)
	}
	dev, err := identity.NewDevice(id)
	if err != nil {
		tb.Fatal(err)
	}
	return testDevice{dev: dev, id: dev.Certificate().DeviceID()}
}

func TestSealedRoundTripAndSizes(t *testing.T) {
	t.Parallel()
	from, to := newTestDevice(t), newTestDevice(t)
	mb := protocol.MailboxID{9}
	for _, n := range []int{0, 1, 600, 4000, MaxTextSize} {
		ct := &content{Type: contentText, Sender: from.id, SentMS: 42, Text: string(bytes.Repeat([]byte("a"), n))}
		signed, err := ct.marshalSigned(from.dev, to.id, mb)
		if err != nil {
			t.Fatal(err)
		}
		env, err := sealEnvelope(to.dev.Certificate().KEM, mb, signed)
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.CheckEnvelope(env); err != nil {
			t.Fatalf("%d: %v", n, err)
		}
		if want, _ := protocol.BucketFor(sealedOverhead + len(signed)); len(env) != want {
			t.Fatalf("%d: envelope %d bytes, want bucket %d", n, len(env), want)
		}
		plain, err := openEnvelope(to.dev, mb, env)
		if err != nil {
			t.Fatal(err)
		}
		// Texts travel only in sessions: a sealed one is refused.
		if _, _, err := parseContent(plain); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("%d: a sealed text parsed: %v", n, err)
		}
		// Another device cannot open it.
		if _, err := openEnvelope(from.dev, mb, env); !errors.Is(err, ErrDecrypt) {
			t.Fatal(err)
		}
	}
	ct := &content{Type: contentText, Sender: from.id, Text: string(make([]byte, MaxTextSize+1))}
	if _, err := ct.marshalSigned(from.dev, to.id, mb); !errors.Is(err, ErrTooLong) {
		t.Fatal(err)
	}
}

func TestUnpad(t *testing.T) {
	t.Parallel()
	p := make([]byte, 40)
	binary.BigEndian.PutUint32(p, 10)
	if c, err := unpad(p); err != nil || len(c) != 10 {
		t.Fatal(c, err)
	}
	p[30] = 1 // non-zero padding
	if _, err := unpad(p); !errors.Is(err, ErrDecrypt) {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(p, 37) // beyond the plaintext
	if _, err := unpad(p); !errors.Is(err, ErrDecrypt) {
		t.Fatal(err)
	}
}

// seedContents returns valid encoded contents (with dummy signatures) for
// the fuzz corpus.
func seedContents() [][]byte {
	sig := make([]byte, keys.SignatureSize)
	text := &content{Type: contentText, Text: "hello"}
	intro := &content{Type: contentIntroduction, Name: "bob", Cert: make([]byte, keys.DeviceCertificateSize)}
	var out [][]byte
	refusal := &content{Type: contentRefusal, Invitation: protocol.MailboxID{7}}
	introRelay := &content{Type: contentIntroRelay, Name: "bob", Cert: make([]byte, keys.DeviceCertificateSize), ReplyRelay: "wss://relay.example.org"}
	for _, c := range []*content{text, intro, refusal, introRelay} {
		b, _ := c.appendUnsigned(nil)
		b = binary.BigEndian.AppendUint16(b, uint16(len(sig)))
		b = append(b, sig...)
		p := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
		out = append(out, append(append(p, b...), 0, 0, 0))
	}
	return out
}

// FuzzOpenSealed fuzzes everything after decryption: the padding check and
// the content parser. What parses must re-encode to the same bytes.
func FuzzOpenSealed(f *testing.F) {
	for _, s := range seedContents() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := unpad(p)
		if err != nil {
			return
		}
		c, unsigned, err := parseContent(b)
		if err != nil {
			if !errors.Is(err, ErrDecrypt) {
				t.Fatalf("error %v is not ErrDecrypt", err)
			}
			return
		}
		re, err := c.appendUnsigned(nil)
		if err != nil || !bytes.Equal(re, unsigned) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		if len(b) != len(unsigned)+2+keys.SignatureSize {
			t.Fatal("length")
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	from, to := newTestDevice(b), newTestDevice(b)
	mb := protocol.MailboxID{1}
	rcpt := to.dev.Certificate().KEM
	// A refusal: the smallest content that travels sealed (texts travel
	// in sessions).
	ct := &content{Type: contentRefusal, Sender: from.id, Invitation: protocol.MailboxID{7}}
	b.ReportAllocs()
	for b.Loop() {
		signed, err := ct.marshalSigned(from.dev, to.id, mb)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sealEnvelope(rcpt, mb, signed); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	from, to := newTestDevice(b), newTestDevice(b)
	mb := protocol.MailboxID{1}
	ct := &content{Type: contentRefusal, Sender: from.id, Invitation: protocol.MailboxID{7}}
	signed, _ := ct.marshalSigned(from.dev, to.id, mb)
	env, _ := sealEnvelope(to.dev.Certificate().KEM, mb, signed)
	vk := from.dev.Certificate().Signing
	b.ReportAllocs()
	for b.Loop() {
		plain, err := openEnvelope(to.dev, mb, env)
		if err != nil {
			b.Fatal(err)
		}
		c, unsigned, err := parseContent(plain)
		if err != nil {
			b.Fatal(err)
		}
		if err := vk.Verify(SealedSignatureContext, signedMessage(to.id, mb, unsigned), c.Signature); err != nil {
			b.Fatal(err)
		}
	}
}
