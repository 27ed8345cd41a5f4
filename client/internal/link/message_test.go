package link

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

type fixture struct {
	id, otherID *identity.Identity
	dev, other  *identity.Device // dev: the new device; other: another device of id
	stranger    *identity.Device // a device of otherID
}

var fixtures = sync.OnceValue(func() *fixture {
	f := &fixture{}
	var err error
	must := func(e error) {
		if e != nil {
			panic(e)
		}
	}
	f.id, err = identity.GenerateIdentity()
	must(err)
	f.otherID, err = identity.GenerateIdentity()
	must(err)
	f.dev, err = identity.NewDevice(f.id)
	must(err)
	f.other, err = identity.NewDevice(f.id)
	must(err)
	f.stranger, err = identity.NewDevice(f.otherID)
	must(err)
	return f
})

func testRequest(f *fixture) *Request {
	cert := f.dev.Certificate()
	capTok, _ := protocol.CapabilityTokenFromBytes(bytes.Repeat([]byte{7}, 32))
	return &Request{Signing: cert.Signing, KEM: cert.KEM, Name: "OFFICE-PC", ReplyMailbox: protocol.MailboxID{9, 9}, ReplyCapability: capTok}
}

func testResponse(f *fixture) *Response {
	key := [32]byte{5}
	return &Response{
		Identity: f.id, Certificate: f.dev.Certificate(), PersonName: "Dr Ana Núñez",
		DeviceList: bytes.Repeat([]byte{0x12}, 3000), Contacts: []byte("contacts snapshot"),
		History: &HistoryRef{BlobID: [32]byte{1}, Key: key, Digest: [32]byte{3}, PlainSize: 100000, CipherSize: uint64(attach.CipherSize(100000))},
	}
}

func TestExchange(t *testing.T) {
	f := fixtures()
	code := testCode(t)
	// The new device parses the code and seals its request.
	newSide, err := Parse(code.Text(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	req := testRequest(f)
	pending, sealedReq, err := newSide.SealRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealedReq) > MaxRequestSize {
		t.Fatalf("request of %d bytes above MaxRequestSize %d", len(sealedReq), MaxRequestSize)
	}
	if strings.Contains(fmt.Sprint(pending), "priv") || !strings.Contains(pending.String(), "REDACTED") {
		t.Fatalf("Pending prints %v", pending)
	}
	// The existing device opens it with its own copy of the code.
	got, err := code.OpenRequest(sealedReq)
	if err != nil {
		t.Fatal(err)
	}
	if got.Transcript() != pending.Transcript() || got.Transcript() == (Transcript{}) {
		t.Fatal("the two sides' transcripts differ")
	}
	if !got.Signing.Equal(req.Signing) || !got.KEM.Equal(req.KEM) || got.Name != req.Name || got.ReplyMailbox != req.ReplyMailbox ||
		!bytes.Equal(got.ReplyCapability.SecretBytes(), req.ReplyCapability.SecretBytes()) {
		t.Fatal("request changed in transit")
	}
	for _, hist := range []bool{true, false} {
		resp := testResponse(f)
		if !hist {
			resp.History = nil
			resp.Contacts = nil
		}
		sealedResp, err := code.SealResponse(got, resp)
		if err != nil {
			t.Fatal(err)
		}
		if len(sealedResp) > MaxResponseSize {
			t.Fatalf("response of %d bytes above MaxResponseSize", len(sealedResp))
		}
		out, err := pending.OpenResponse(sealedResp)
		if err != nil {
			t.Fatal(err)
		}
		if !out.Identity.Public().Equal(f.id.Public()) || !bytes.Equal(out.Certificate.Bytes(), resp.Certificate.Bytes()) ||
			out.PersonName != resp.PersonName || !bytes.Equal(out.DeviceList, resp.DeviceList) || !bytes.Equal(out.Contacts, resp.Contacts) {
			t.Fatal("response changed in transit")
		}
		if (out.History == nil) != !hist || (hist && *out.History != *resp.History) {
			t.Fatalf("history %+v, want %+v", out.History, resp.History)
		}
	}
	// SealResponse takes only a request that OpenRequest returned.
	if _, err := code.SealResponse(req, testResponse(f)); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("SealResponse of a hand-made request: %v", err)
	}
}

func TestRequestRefused(t *testing.T) {
	f := fixtures()
	code := testCode(t)
	_, sealed, err := code.SealRequest(testRequest(f))
	if err != nil {
		t.Fatal(err)
	}
	// Another code for the same mailbox and relay (a relay that knows the
	// mailbox and the capability but not the secret).
	other, _ := NewCode(code.Relay, code.Mailbox, testNow)
	later := *code
	later.Expires = later.Expires.Add(time.Second)
	flipped := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 0x01; return b }
	cases := []struct {
		name   string
		code   *Code
		sealed []byte
	}{
		{"another code", other, sealed},
		{"another expiry (AAD)", &later, sealed},
		{"tag changed", code, flipped(0)},
		{"version changed", code, flipped(1)},
		{"nonce changed", code, flipped(5)},
		{"ciphertext changed", code, flipped(len(sealed) / 2)},
		{"tag byte changed", code, flipped(len(sealed) - 1)},
		{"truncated", code, sealed[:len(sealed)-1]},
		{"empty", code, nil},
		{"appended", code, append(bytes.Clone(sealed), 0)},
		{"oversized", code, make([]byte, MaxRequestSize+1)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if req, err := tc.code.OpenRequest(tc.sealed); !errors.Is(err, ErrDecrypt) || req != nil {
				t.Fatalf("OpenRequest = %v, %v; want ErrDecrypt", req, err)
			}
		})
	}
	// A response sealed under the response key does not open as a request.
	req, err := code.OpenRequest(sealed)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := code.SealResponse(req, testResponse(f))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := code.OpenRequest(resp); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a response opened as a request: %v", err)
	}
}

// replyPub is the public half of the reply key of seed 0x33….
func replyPub() []byte {
	kem, _, _ := keys.Suite()
	priv, err := kem.NewPrivateKey(bytes.Repeat([]byte{0x33}, 32))
	if err != nil {
		panic(err)
	}
	return priv.PublicKey().Bytes()
}

// TestRequestContentRefused seals, under the right key, bodies that break
// the rules: only a holder of the code can send them, and they are still
// refused with ErrInvalidMessage.
func TestRequestContentRefused(t *testing.T) {
	f := fixtures()
	code := testCode(t)
	req := testRequest(f)
	sk, kem, reply := req.Signing.Bytes(), req.KEM.Bytes(), replyPub()
	good := requestBytes(sk, kem, reply, req.Name)
	lowOrder := func(k []byte) []byte {
		k = bytes.Clone(k)
		copy(k[1184:], make([]byte, 32)) // X25519 part all zero: a low-order point
		return k
	}
	cases := map[string][]byte{
		"short":              good[:len(good)-1],
		"long":               append(bytes.Clone(good), 0),
		"empty name":         requestBytes(sk, kem, reply, ""),
		"long name":          requestBytes(sk, kem, reply, strings.Repeat("a", MaxNameSize+1))[:len(good)],
		"control in name":    requestBytes(sk, kem, reply, "OFFICE\x1b[2J"),
		"bidi override":      requestBytes(sk, kem, reply, "PC\u202eexe"),
		"invalid UTF-8":      requestBytes(sk, kem, reply, "PC\xff"),
		"bad X-Wing key":     requestBytes(sk, lowOrder(kem), reply, req.Name),
		"bad reply key":      requestBytes(sk, kem, lowOrder(reply), req.Name),
		"leading space":      requestBytes(sk, kem, reply, " PC"),
		"name length > rest": append(append(append(bytes.Clone(sk), kem...), reply...), 200, 'P', 'C'),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			sealed, err := seal(code.requestKey(), TagRequest, code.requestAAD(), body, fixedNonce{})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := code.OpenRequest(sealed); !errors.Is(err, ErrInvalidMessage) || got != nil {
				t.Fatalf("OpenRequest = %v, %v; want ErrInvalidMessage", got, err)
			}
		})
	}
	if _, err := decodeRequest(good); err != nil {
		t.Fatalf("the base case is refused: %v", err)
	}
	// SealRequest refuses a bad name before sealing.
	r := *req
	r.Name = "OFFICE\n"
	if _, _, err := code.SealRequest(&r); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("SealRequest with a bad name: %v", err)
	}
}

func requestBytes(sk, kem, reply []byte, name string) []byte {
	b := append(bytes.Clone(sk), kem...)
	b = append(b, reply...)
	b = append(b, byte(len(name)))
	b = append(b, name...)
	b = append(b, make([]byte, 16)...)
	return append(b, bytes.Repeat([]byte{7}, 32)...)
}

// fixedNonce is an io.Reader of zeros: the deterministic seam for nonces.
type fixedNonce struct{}

func (fixedNonce) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestResponseRefused(t *testing.T) {
	f := fixtures()
	code := testCode(t)
	req := testRequest(f)
	pending, sealedReq, err := code.SealRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	opened, err := code.OpenRequest(sealedReq)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := code.SealResponse(opened, testResponse(f))
	if err != nil {
		t.Fatal(err)
	}
	// A second request made with the same code (an attacker who read the
	// code races the real new device): the response to one does not open
	// for the other.
	pending2, sealedReq2, err := code.SealRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if pending2.Transcript() == pending.Transcript() {
		t.Fatal("two requests with one transcript")
	}
	opened2, _ := code.OpenRequest(sealedReq2)
	sealed2, _ := code.SealResponse(opened2, testResponse(f))
	otherCode, _ := NewCode(code.Relay, code.Mailbox, testNow)
	otherPending, _, _ := otherCode.SealRequest(req)
	flipped := bytes.Clone(sealed)
	flipped[len(flipped)/3] ^= 0x80
	for name, tc := range map[string]struct {
		p      *Pending
		sealed []byte
	}{
		"the response to another request": {pending, sealed2},
		"another code":                    {otherPending, sealed},
		"a changed byte":                  {pending, flipped},
		"truncated":                       {pending, sealed[:len(sealed)-16]},
		"the request itself":              {pending, sealedReq},
		"oversized":                       {pending, make([]byte, MaxResponseSize+1)},
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := tc.p.OpenResponse(tc.sealed); !errors.Is(err, ErrDecrypt) || got != nil {
				t.Fatalf("OpenResponse = %v, %v; want ErrDecrypt", got, err)
			}
		})
	}
	if _, err := pending2.OpenResponse(sealed2); err != nil {
		t.Fatalf("the second request's own response: %v", err)
	}
}

// sealFor seals body as the existing device would for p's request, with
// the inner layer sealed to key (p's own reply key when nil).
func sealFor(t *testing.T, p *Pending, body []byte, key *keys.Recipient) []byte {
	t.Helper()
	if key == nil {
		var err error
		if key, err = keys.ParseRecipient(p.replyPriv.PublicKey().Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	inner, err := key.Seal([]byte(responseSealInfo), p.transcript[:], body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.code.sealResponseInner(p.transcript, inner, fixedNonce{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestResponseContentRefused seals, under the right keys, responses whose
// content is inconsistent: they authenticate and are still refused.
func TestResponseContentRefused(t *testing.T) {
	f := fixtures()
	code := testCode(t)
	req := testRequest(f)
	p, _, err := code.SealRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	base := testResponse(f)
	mutate := func(m func(r *Response)) []byte {
		r := *base
		h := *base.History
		r.History = &h
		m(&r)
		b, err := encodeResponse(&r)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good, _ := encodeResponse(base)
	cases := map[string][]byte{
		"certificate of another device":   mutate(func(r *Response) { r.Certificate = f.other.Certificate() }),
		"certificate of another identity": mutate(func(r *Response) { r.Identity = f.otherID }),
		"stranger's certificate":          mutate(func(r *Response) { r.Identity, r.Certificate = f.otherID, f.stranger.Certificate() }),
		"short":                           good[:len(good)-1],
		"long":                            append(bytes.Clone(good), 0),
		"history flag 2":                  withHistoryFlag(good, 2),
		"cipher size wrong":               mutateRaw(good, len(good)-1, 0xff),
		"identity secret tag":             mutateRaw(good, 0, 0x21),
		"certificate signature":           mutateRaw(good, identitySecretSize+keys.DeviceCertificateSize-1, 0x01),
		"person name bad":                 replaceName(good, "Ana\x00"),
		"person name empty":               replaceName(good, ""),
		"device list empty":               mutateLen16(good, 0),
		"device list above limit":         mutateLen16(good, MaxDeviceListSize+1),
		"contacts above limit":            mutateLen32(good, MaxContactsSize+1),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			if got, err := p.OpenResponse(sealFor(t, p, body, nil)); !errors.Is(err, ErrInvalidMessage) || got != nil {
				t.Fatalf("OpenResponse = %v, %v; want ErrInvalidMessage", got, err)
			}
		})
	}
	// The base case opens; the same sealed to another key than the reply
	// key (by a holder of the code) does not.
	if _, err := p.OpenResponse(sealFor(t, p, good, nil)); err != nil {
		t.Fatalf("the base case is refused: %v", err)
	}
	if got, err := p.OpenResponse(sealFor(t, p, good, req.KEM)); !errors.Is(err, ErrInvalidMessage) || got != nil {
		t.Fatalf("inner layer sealed to another key: %v", err)
	}
	short, _ := p.code.sealResponseInner(p.transcript, make([]byte, keys.SealOverhead-1), fixedNonce{})
	if _, err := p.OpenResponse(short); !errors.Is(err, ErrInvalidMessage) {
		t.Fatalf("inner layer too short: %v", err)
	}
	// SealResponse refuses what OpenResponse would.
	_, sealedReq, _ := code.SealRequest(req)
	opened, _ := code.OpenRequest(sealedReq)
	for name, m := range map[string]func(r *Response){
		"no identity":      func(r *Response) { r.Identity = nil },
		"big device list":  func(r *Response) { r.DeviceList = make([]byte, MaxDeviceListSize+1) },
		"no device list":   func(r *Response) { r.DeviceList = nil },
		"big contacts":     func(r *Response) { r.Contacts = make([]byte, MaxContactsSize+1) },
		"bad name":         func(r *Response) { r.PersonName = strings.Repeat("x", MaxNameSize+1) },
		"bad history size": func(r *Response) { r.History.CipherSize++ },
	} {
		r := *base
		h := *base.History
		r.History = &h
		m(&r)
		if _, err := code.SealResponse(opened, &r); err == nil {
			t.Errorf("SealResponse with %s succeeded", name)
		}
	}
}

func mutateRaw(b []byte, i int, v byte) []byte { c := bytes.Clone(b); c[i] = v; return c }

func withHistoryFlag(b []byte, flag byte) []byte {
	return mutateRaw(b, len(b)-HistoryRefSize-1, flag)
}

// offsets of the variable fields of a response body (name first).
func nameOff() int { return identitySecretSize + keys.DeviceCertificateSize }

func replaceName(b []byte, name string) []byte {
	n := int(b[nameOff()])
	out := append(bytes.Clone(b[:nameOff()]), byte(len(name)))
	out = append(out, name...)
	return append(out, b[nameOff()+1+n:]...)
}

func mutateLen16(b []byte, v int) []byte {
	i := nameOff() + 1 + int(b[nameOff()])
	c := bytes.Clone(b)
	c[i], c[i+1] = byte(v>>8), byte(v)
	return c
}

func mutateLen32(b []byte, v int) []byte {
	i := nameOff() + 1 + int(b[nameOff()])
	i += 2 + int(b[i])<<8 | int(b[i+1])
	c := bytes.Clone(b)
	c[i], c[i+1], c[i+2], c[i+3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
	return c
}

// TestLimits pins the sizes SPEC section 13.3 states.
func TestLimits(t *testing.T) {
	largestList := 2003 + 8*(32+8+2+256) + 2 + keys.SignatureSize
	if largestList != 7762 || largestList > MaxDeviceListSize {
		t.Errorf("largest device list %d bytes, limit %d", largestList, MaxDeviceListSize)
	}
	if MaxRequestSize != 4571 || MaxResponseSize != 8406795 {
		t.Errorf("MaxRequestSize %d, MaxResponseSize %d: update SPEC section 13.3", MaxRequestSize, MaxResponseSize)
	}
}

func TestCheckName(t *testing.T) {
	for _, ok := range []string{"OFFICE-PC", "Dr Ana Núñez", "a", strings.Repeat("é", 32), "ward 7 — laptop"} {
		if err := checkName(ok); err != nil {
			t.Errorf("checkName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("a", MaxNameSize+1), "a\tb", "a\u0085", "a\u200bb", "a\u2066b", "\xc3", " a", "a ", "a\u00a0"} {
		if err := checkName(bad); !errors.Is(err, ErrInvalidName) {
			t.Errorf("checkName(%q) = %v, want ErrInvalidName", bad, err)
		}
	}
}
