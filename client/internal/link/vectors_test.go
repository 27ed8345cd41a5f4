package link

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"testing"
	"time"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

var update = flag.Bool("update", false, "rewrite the known-answer vector file")

const (
	vectorFile    = "../../../testdata/vectors/client/link-v1.json"
	certVectors   = "../../../testdata/vectors/keys/device-cert-v1.json"
	secretVectors = "../../../testdata/vectors/keys/keyfile-v1.json"
)

// linkVectors is the file: link codes with their derived keys, and one
// whole exchange (request and response) with fixed nonces, built from the
// keys of section 8's vectors.
type linkVectors struct {
	Comment  string       `json:"comment"`
	Codes    []codeVector `json:"codes"`
	Exchange exchange     `json:"exchange"`
}

type codeVector struct {
	Comment        string `json:"comment"`
	Relay          string `json:"relay"`
	Mailbox        string `json:"mailbox"`
	Secret         string `json:"secret"`
	Expires        int64  `json:"expires_unix"`
	Code           string `json:"code"`
	Capability     string `json:"capability"`
	CapabilityHash string `json:"capability_hash"`
	RequestKey     string `json:"request_key"`
	ResponseKey    string `json:"response_key"`
}

type exchange struct {
	Comment string `json:"comment"`
	// Inputs: the code is Codes[0].
	SigningKey    string `json:"device_signing_public_key"`
	XWingKey      string `json:"device_xwing_public_key"`
	DeviceName    string `json:"device_name"`
	ReplyMailbox  string `json:"reply_mailbox"`
	ReplyCap      string `json:"reply_capability"`
	RequestNonce  string `json:"request_nonce"`
	ReplySeed     string `json:"reply_key_seed"`
	IdentitySec   string `json:"identity_secret"`
	Certificate   string `json:"device_certificate"`
	PersonName    string `json:"person_name"`
	DeviceList    string `json:"device_list"`
	Contacts      string `json:"contacts"`
	HistBlob      string `json:"history_blob_id"`
	HistKey       string `json:"history_key"`
	HistDigest    string `json:"history_sha256"`
	HistPlain     uint64 `json:"history_plain_size"`
	ResponseNonce string `json:"response_nonce"`
	// The HPKE layer draws from crypto/rand: recorded once, then an input
	// that must open to ResponseBody under the reply key.
	ResponseInner string `json:"response_inner"`
	// Outputs.
	ReplyKey     string `json:"reply_public_key"`
	RequestAAD   string `json:"request_aad"`
	RequestBody  string `json:"request_body"`
	Request      string `json:"request"`
	Transcript   string `json:"transcript"`
	ResponseAAD  string `json:"response_aad"`
	ResponseBody string `json:"response_body"`
	Response     string `json:"response"`
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %.20q", s)
	}
	return b
}

func seqHex(start byte, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return hex.EncodeToString(b)
}

// nonceReader hands out one fixed nonce.
type nonceReader struct{ b []byte }

func (r *nonceReader) Read(p []byte) (int, error) { n := copy(p, r.b); r.b = r.b[n:]; return n, nil }

func (v *codeVector) code(t *testing.T) *Code {
	t.Helper()
	var mbx protocol.MailboxID
	copy(mbx[:], unhex(t, v.Mailbox))
	var s [SecretSize]byte
	copy(s[:], unhex(t, v.Secret))
	c, err := newCode(v.Relay, mbx, s, time.Unix(v.Expires, 0))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (v *codeVector) compute(t *testing.T) {
	c := v.code(t)
	v.Code = c.Text()
	tok := c.Capability()
	v.Capability = hex.EncodeToString(tok.SecretBytes())
	h := tok.Hash()
	v.CapabilityHash = hex.EncodeToString(h[:])
	v.RequestKey = hex.EncodeToString(c.requestKey())
	v.ResponseKey = hex.EncodeToString(c.responseKey())
}

func (x *exchange) request(t *testing.T) *Request {
	sk, err := keys.ParseSigningPublicKey(unhex(t, x.SigningKey))
	if err != nil {
		t.Fatal(err)
	}
	kem, err := keys.ParseRecipient(unhex(t, x.XWingKey))
	if err != nil {
		t.Fatal(err)
	}
	req := &Request{Signing: sk, KEM: kem, Name: x.DeviceName}
	copy(req.ReplyMailbox[:], unhex(t, x.ReplyMailbox))
	req.ReplyCapability, _ = protocol.CapabilityTokenFromBytes(unhex(t, x.ReplyCap))
	return req
}

func (x *exchange) response(t *testing.T) *Response {
	id, err := identity.ParseIdentitySecret(unhex(t, x.IdentitySec))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := keys.ParseDeviceCertificate(unhex(t, x.Certificate))
	if err != nil {
		t.Fatal(err)
	}
	h := &HistoryRef{PlainSize: x.HistPlain, CipherSize: uint64(attach.CipherSize(int64(x.HistPlain)))}
	copy(h.BlobID[:], unhex(t, x.HistBlob))
	copy(h.Key[:], unhex(t, x.HistKey))
	copy(h.Digest[:], unhex(t, x.HistDigest))
	return &Response{Identity: id, Certificate: cert, PersonName: x.PersonName,
		DeviceList: unhex(t, x.DeviceList), Contacts: unhex(t, x.Contacts), History: h}
}

func (x *exchange) compute(t *testing.T, c *Code, fresh bool) {
	req := x.request(t)
	p, sealed, err := c.sealRequest(req, &nonceReader{unhex(t, x.RequestNonce)}, unhex(t, x.ReplySeed))
	if err != nil {
		t.Fatal(err)
	}
	x.ReplyKey = hex.EncodeToString(p.replyPriv.PublicKey().Bytes())
	x.RequestAAD = hex.EncodeToString(c.requestAAD())
	body, err := open(c.requestKey(), TagRequest, c.requestAAD(), sealed)
	if err != nil {
		t.Fatal(err)
	}
	x.RequestBody = hex.EncodeToString(body)
	x.Request = hex.EncodeToString(sealed)
	x.Transcript = hex.EncodeToString(p.transcript[:])
	rb, err := encodeResponse(x.response(t))
	if err != nil {
		t.Fatal(err)
	}
	x.ResponseBody = hex.EncodeToString(rb)
	x.ResponseAAD = hex.EncodeToString(responseAAD(p.transcript))
	if fresh {
		opened, err := c.OpenRequest(sealed)
		if err != nil {
			t.Fatal(err)
		}
		inner, err := opened.replyKey.Seal([]byte(responseSealInfo), opened.transcript[:], rb)
		if err != nil {
			t.Fatal(err)
		}
		x.ResponseInner = hex.EncodeToString(inner)
	}
	inner := unhex(t, x.ResponseInner)
	got, err := p.openInner(inner)
	if err != nil || !bytes.Equal(got, rb) {
		t.Fatalf("the recorded inner layer does not open to the response body: %v", err)
	}
	sr, err := c.sealResponseInner(p.transcript, inner, &nonceReader{unhex(t, x.ResponseNonce)})
	if err != nil {
		t.Fatal(err)
	}
	x.Response = hex.EncodeToString(sr)
}

func vectorInputs(t *testing.T) linkVectors {
	var certs struct {
		Device struct {
			Signing string `json:"signing_public_key"`
			XWing   string `json:"xwing_public_key"`
		} `json:"device"`
		Certificate struct {
			Encoding string `json:"encoding"`
		} `json:"certificate"`
	}
	var secrets struct {
		Secrets struct {
			Identity string `json:"identity_secret"`
		} `json:"secrets"`
	}
	for file, into := range map[string]any{certVectors: &certs, secretVectors: &secrets} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatal(err)
		}
	}
	return linkVectors{
		Comment: "Postern link codes and the link exchange (protocol/SPEC.md section 13). The exchange uses the keys of " +
			"testdata/vectors/keys/device-cert-v1.json and keyfile-v1.json, the code of the first case, and fixed nonces.",
		Codes: []codeVector{
			{Comment: "sequential secret and mailbox", Relay: "wss://relay.example.org", Mailbox: seqHex(0x10, 16), Secret: seqHex(0x00, 32), Expires: 1796220180},
			{Comment: "loopback relay with a port and a path; all-0xff secret", Relay: "ws://127.0.0.1:7878/postern", Mailbox: seqHex(0xa0, 16), Secret: hex.EncodeToString(bytes.Repeat([]byte{0xff}, 32)), Expires: 253402300799},
		},
		Exchange: exchange{
			Comment:    "request from the device of device-cert-v1.json; response with its certificate, the identity secret, a stand-in device list and contacts, and a history reference",
			SigningKey: certs.Device.Signing, XWingKey: certs.Device.XWing, DeviceName: "OFFICE-PC",
			ReplyMailbox: seqHex(0x40, 16), ReplyCap: seqHex(0x60, 32), RequestNonce: seqHex(0x80, 24), ReplySeed: seqHex(0xe0, 32),
			IdentitySec: secrets.Secrets.Identity, Certificate: certs.Certificate.Encoding, PersonName: "Dr Ana Núñez",
			DeviceList: hex.EncodeToString([]byte("a stand-in for the signed device list")), Contacts: hex.EncodeToString([]byte("a stand-in for the contacts snapshot")),
			HistBlob: seqHex(0x20, 32), HistKey: seqHex(0x30, 32), HistDigest: seqHex(0x50, 32), HistPlain: 200000,
			ResponseNonce: seqHex(0xc0, 24),
		},
	}
}

// TestVectors checks testdata/vectors/client/link-v1.json (run with
// -update to rewrite it): every derived value, the sealed messages byte for
// byte, and that they parse and open back to their inputs.
func TestVectors(t *testing.T) {
	if *update {
		vs := vectorInputs(t)
		for i := range vs.Codes {
			vs.Codes[i].compute(t)
		}
		vs.Exchange.compute(t, vs.Codes[0].code(t), true)
		b, err := json.MarshalIndent(vs, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorFile, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(vectorFile)
	if err != nil {
		t.Fatal(err)
	}
	var vs linkVectors
	if err := json.Unmarshal(b, &vs); err != nil {
		t.Fatal(err)
	}
	if len(vs.Codes) == 0 || vs.Exchange.Response == "" {
		t.Fatal("no vectors")
	}
	for _, v := range vs.Codes {
		want := v
		v.compute(t)
		if v != want {
			t.Errorf("%s: computed %+v, file has %+v", v.Comment, v, want)
		}
		c, err := Parse(want.Code, time.Unix(want.Expires, 0).Add(-MaxLifetime))
		if err != nil {
			t.Fatalf("%s: %v", v.Comment, err)
		}
		if c.Text() != want.Code {
			t.Errorf("%s: parse and re-encode differ", v.Comment)
		}
	}
	c := vs.Codes[0].code(t)
	x := vs.Exchange
	want := x
	x.compute(t, c, false)
	if x != want {
		t.Fatal("the exchange differs from the file")
	}
	req, err := c.OpenRequest(unhex(t, want.Request))
	if err != nil || hex.EncodeToString(req.transcript[:]) != want.Transcript || req.Name != want.DeviceName ||
		hex.EncodeToString(req.replyKey.Bytes()) != want.ReplyKey {
		t.Fatalf("the vector request does not open: %v", err)
	}
	// The new device's side, rebuilt from the seed, opens the response.
	p, _, err := c.sealRequest(x.request(t), &nonceReader{unhex(t, x.RequestNonce)}, unhex(t, x.ReplySeed))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p.OpenResponse(unhex(t, want.Response))
	if err != nil {
		t.Fatalf("the vector response does not open: %v", err)
	}
	if resp.PersonName != want.PersonName || resp.History == nil || resp.History.PlainSize != want.HistPlain {
		t.Fatal("the vector response opens to other values")
	}
}
