package link

import (
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"io"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// Message formats (SPEC section 13.3).
const (
	// TagRequest and TagResponse are the type tags (SPEC section 8) of the
	// two sealed messages; each is followed by FormatVersion.
	TagRequest    = 0x40
	TagResponse   = 0x41
	FormatVersion = 0x01

	// MaxNameSize bounds a device name and a person's name, in bytes.
	MaxNameSize = 64
	// MaxDeviceListSize bounds the signed device list in a response: the
	// largest list of SPEC section 8 (8 devices with 256-byte relay URLs
	// and the signature) is 7 762 bytes.
	MaxDeviceListSize = 8192
	// MaxContactsSize bounds the contacts snapshot in a response.
	MaxContactsSize = 8 << 20
	// identitySecretSize is the identity secret encoding (SPEC section 8).
	identitySecretSize = 66
	// HistoryRefSize is the encoded size of a history transfer reference.
	HistoryRefSize = 32 + 32 + 32 + 8 + 8

	headerSize   = 2
	nonceSize    = chacha20poly1305.NonceSizeX
	overhead     = headerSize + nonceSize + chacha20poly1305.Overhead
	requestBody  = keys.SigningPublicKeySize + 2*keys.XWingPublicKeySize + 1 + 16 + 32 // + name
	responseBody = identitySecretSize + keys.DeviceCertificateSize + 1 + 2 + 4 + 1     // + name, list, contacts, history

	// MaxRequestSize is the largest sealed request.
	MaxRequestSize = overhead + requestBody + MaxNameSize
	// MaxResponseSize is the largest sealed response; readers of the
	// link mailbox cap what they accept with it.
	MaxResponseSize = overhead + keys.SealOverhead + responseBody + MaxNameSize + MaxDeviceListSize + MaxContactsSize + HistoryRefSize
)

// Labels of the link messages (SPEC section 13, label table).
const (
	requestAADLabel  = protocol.LabelPrefix + "link request"
	responseAADLabel = protocol.LabelPrefix + "link response"
	transcriptLabel  = protocol.LabelPrefix + "link transcript"
	responseSealInfo = protocol.LabelPrefix + "link response-seal"
)

// Transcript is the hash of a sealed request in its code's context. Both
// devices compute it; the response is bound to it, so a response opens
// only for the request it answers.
type Transcript [sha256.Size]byte

// Request is what the new device sends to the existing one: the keys to
// certify, its chosen name, and where to send the response. A Request
// returned by OpenRequest also carries, unexported, the transcript and the
// one-time reply key that SealResponse needs.
type Request struct {
	Signing         *keys.SigningPublicKey   // the new device's signing key
	KEM             *keys.Recipient          // the new device's long-term X-Wing key
	Name            string                   // the device's name, e.g. "OFFICE-PC"
	ReplyMailbox    protocol.MailboxID       // where the response goes
	ReplyCapability protocol.CapabilityToken // the send capability for it

	replyKey   *keys.Recipient // one-time X-Wing key the response is sealed to
	transcript Transcript
	opened     bool // set by OpenRequest
}

// Transcript returns the transcript hash of a Request returned by
// OpenRequest (zero otherwise).
func (r *Request) Transcript() Transcript { return r.transcript }

// Pending is the new device's side of an exchange between its request and
// the response: it holds the one-time reply key's private half (SECRET),
// which exists only in memory and is gone with the Pending. It is safe for
// concurrent use.
type Pending struct {
	code       *Code
	req        *Request
	transcript Transcript
	replyPriv  hpke.PrivateKey
}

// Transcript returns the transcript hash of the sealed request.
func (p *Pending) Transcript() Transcript { return p.transcript }

// String redacts.
func (p *Pending) String() string { return "link.Pending(REDACTED)" }

// HistoryRef names an encrypted history transfer: a blob in the chunk
// format of SPEC section 12.2, named as an attachment is in section 12.3.
type HistoryRef struct {
	BlobID     [32]byte // the blob on the relay (the download capability)
	Key        [32]byte // the file key (SECRET)
	Digest     [32]byte // SHA-256 of the whole plaintext
	PlainSize  uint64
	CipherSize uint64 // attach.CipherSize(PlainSize)
}

// Response is what the existing device sends back: everything the new
// device needs to act as this person.
type Response struct {
	Identity    *identity.Identity      // the person's identity key (SECRET)
	Certificate *keys.DeviceCertificate // the new device's, signed by Identity
	PersonName  string                  // the person's chosen name
	DeviceList  []byte                  // the current signed device list (verified by the caller)
	Contacts    []byte                  // the contacts snapshot, defined by the client
	History     *HistoryRef             // nil when no history is sent
}

// SealRequest seals req under the code's request key, with a fresh
// one-time reply key for the response. It returns the Pending exchange,
// which opens the response, and the sealed request to send.
func (c *Code) SealRequest(req *Request) (*Pending, []byte, error) {
	var seed [32]byte
	rand.Read(seed[:]) // never fails (Go 1.24+)
	return c.sealRequest(req, rand.Reader, seed[:])
}

// sealRequest takes the nonce source and the reply key's seed (known-answer
// vectors).
func (c *Code) sealRequest(req *Request, rnd io.Reader, replySeed []byte) (*Pending, []byte, error) {
	if req == nil || req.Signing == nil || req.KEM == nil {
		return nil, nil, invalidf("incomplete request")
	}
	if err := checkName(req.Name); err != nil {
		return nil, nil, err
	}
	kem, _, _ := keys.Suite()
	priv, err := kem.NewPrivateKey(replySeed)
	if err != nil {
		return nil, nil, invalidf("reply key") // unreachable: any 32-byte seed is a key
	}
	body := make([]byte, 0, requestBody+len(req.Name))
	body = append(body, req.Signing.Bytes()...)
	body = append(body, req.KEM.Bytes()...)
	body = append(body, priv.PublicKey().Bytes()...)
	body = append(body, byte(len(req.Name)))
	body = append(body, req.Name...)
	body = append(body, req.ReplyMailbox[:]...)
	body = append(body, req.ReplyCapability.SecretBytes()...)
	sealed, err := seal(c.requestKey(), TagRequest, c.requestAAD(), body, rnd)
	if err != nil {
		return nil, nil, err
	}
	return &Pending{code: c, req: req, transcript: c.transcript(sealed), replyPriv: priv}, sealed, nil
}

// OpenRequest opens a sealed request with the code: it authenticates only
// if it was sealed by a holder of this code (ErrDecrypt otherwise). The
// Request it returns is the one to pass to SealResponse.
func (c *Code) OpenRequest(sealed []byte) (*Request, error) {
	if len(sealed) > MaxRequestSize {
		return nil, ErrDecrypt
	}
	body, err := open(c.requestKey(), TagRequest, c.requestAAD(), sealed)
	if err != nil {
		return nil, err
	}
	req, err := decodeRequest(body)
	if err != nil {
		return nil, err
	}
	req.transcript, req.opened = c.transcript(sealed), true
	return req, nil
}

// decodeRequest parses a request body (after authentication).
func decodeRequest(b []byte) (*Request, error) {
	r := protocol.NewReader(b)
	sk := r.Take(keys.SigningPublicKeySize, "signing key")
	kem := r.Take(keys.XWingPublicKeySize, "kem key")
	reply := r.Take(keys.XWingPublicKeySize, "reply key")
	name := string(r.Take(int(r.U8("name length")), "name"))
	mbx := r.Take(16, "reply mailbox")
	capb := r.Take(32, "reply capability")
	if r.Err() != nil || r.Len() != 0 {
		return nil, invalidf("request of the wrong length")
	}
	req := &Request{Name: name}
	var err error
	if req.Signing, err = keys.ParseSigningPublicKey(sk); err != nil {
		return nil, invalidf("signing key refused")
	}
	if req.KEM, err = keys.ParseRecipient(kem); err != nil {
		return nil, invalidf("X-Wing key refused")
	}
	if req.replyKey, err = keys.ParseRecipient(reply); err != nil {
		return nil, invalidf("reply key refused")
	}
	if err := checkName(name); err != nil {
		return nil, invalidf("device name: %v", err)
	}
	copy(req.ReplyMailbox[:], mbx)
	req.ReplyCapability, _ = protocol.CapabilityTokenFromBytes(capb)
	return req, nil
}

// SealResponse seals resp for req, which must come from OpenRequest: the
// body is sealed (HPKE) to the request's one-time reply key, and that under
// the code's response key bound to the request's transcript.
func (c *Code) SealResponse(req *Request, resp *Response) ([]byte, error) {
	if req == nil || !req.opened {
		return nil, invalidf("the request was not opened with OpenRequest")
	}
	body, err := encodeResponse(resp)
	if err != nil {
		return nil, err
	}
	inner, err := req.replyKey.Seal([]byte(responseSealInfo), req.transcript[:], body)
	if err != nil {
		return nil, err
	}
	return c.sealResponseInner(req.transcript, inner, rand.Reader)
}

// sealResponseInner is the outer layer (known-answer vectors fix the
// nonce; the HPKE layer draws from crypto/rand and has no seam).
func (c *Code) sealResponseInner(t Transcript, inner []byte, rnd io.Reader) ([]byte, error) {
	return seal(c.responseKey(), TagResponse, responseAAD(t), inner, rnd)
}

func encodeResponse(resp *Response) ([]byte, error) {
	switch {
	case resp == nil || resp.Identity == nil || resp.Certificate == nil:
		return nil, invalidf("incomplete response")
	case len(resp.DeviceList) == 0 || len(resp.DeviceList) > MaxDeviceListSize:
		return nil, invalidf("device list of %d bytes (1..%d)", len(resp.DeviceList), MaxDeviceListSize)
	case len(resp.Contacts) > MaxContactsSize:
		return nil, invalidf("contacts snapshot of %d bytes (at most %d)", len(resp.Contacts), MaxContactsSize)
	}
	if err := checkName(resp.PersonName); err != nil {
		return nil, err
	}
	if h := resp.History; h != nil && !validHistory(h) {
		return nil, invalidf("history reference with inconsistent sizes")
	}
	n := responseBody + len(resp.PersonName) + len(resp.DeviceList) + len(resp.Contacts) + HistoryRefSize
	b := make([]byte, 0, n)
	b = append(b, resp.Identity.MarshalSecret()...)
	b = append(b, resp.Certificate.Bytes()...)
	b = append(b, byte(len(resp.PersonName)))
	b = append(b, resp.PersonName...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(resp.DeviceList)))
	b = append(b, resp.DeviceList...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(resp.Contacts)))
	b = append(b, resp.Contacts...)
	if h := resp.History; h == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = append(b, h.BlobID[:]...)
		b = append(b, h.Key[:]...)
		b = append(b, h.Digest[:]...)
		b = binary.BigEndian.AppendUint64(b, h.PlainSize)
		b = binary.BigEndian.AppendUint64(b, h.CipherSize)
	}
	return b, nil
}

// OpenResponse opens the response to the pending request. Beyond
// authentication (ErrDecrypt: another code, another request, a changed
// byte) it checks that the certificate verifies, is signed by the identity
// sent with it, and certifies exactly the request's keys
// (ErrInvalidMessage otherwise). The device list is returned as bytes: the
// caller verifies it (keys.ParseDeviceList) and that it names the new
// device.
func (p *Pending) OpenResponse(sealed []byte) (*Response, error) {
	if len(sealed) > MaxResponseSize {
		return nil, ErrDecrypt
	}
	inner, err := open(p.code.responseKey(), TagResponse, responseAAD(p.transcript), sealed)
	if err != nil {
		return nil, err
	}
	body, err := p.openInner(inner)
	if err != nil {
		return nil, err
	}
	raw, err := decodeResponse(body)
	if err != nil {
		return nil, err
	}
	return raw.check(p.req)
}

// openInner reverses the HPKE layer with the reply key. A failure here
// after the outer layer authenticated means the holder of the code sealed
// to another key: ErrInvalidMessage.
func (p *Pending) openInner(inner []byte) ([]byte, error) {
	if len(inner) < keys.SealOverhead {
		return nil, invalidf("inner seal too short")
	}
	_, kdf, aead := keys.Suite()
	r, err := hpke.NewRecipient(inner[:keys.XWingCiphertextSize], p.replyPriv, kdf, aead, []byte(responseSealInfo))
	if err != nil {
		return nil, invalidf("inner seal does not open")
	}
	body, err := r.Open(p.transcript[:], inner[keys.XWingCiphertextSize:])
	if err != nil {
		return nil, invalidf("inner seal does not open")
	}
	return body, nil
}

// rawResponse is a response body split into its fields, before any
// cryptographic check (what the fuzz target exercises).
type rawResponse struct {
	identity, cert []byte
	resp           Response
}

func decodeResponse(b []byte) (*rawResponse, error) {
	r := protocol.NewReader(b)
	out := &rawResponse{}
	out.identity = r.Take(identitySecretSize, "identity secret")
	out.cert = r.Take(keys.DeviceCertificateSize, "certificate")
	out.resp.PersonName = string(r.Take(int(r.U8("name length")), "name"))
	nl := int(r.U16("device list length"))
	if nl == 0 || nl > MaxDeviceListSize {
		return nil, invalidf("device list of %d bytes (1..%d)", nl, MaxDeviceListSize)
	}
	out.resp.DeviceList = r.Take(nl, "device list")
	nc := r.U32("contacts length")
	if nc > MaxContactsSize {
		return nil, invalidf("contacts snapshot of %d bytes (at most %d)", nc, MaxContactsSize)
	}
	out.resp.Contacts = r.Take(int(nc), "contacts")
	switch r.U8("history flag") {
	case 0:
	case 1:
		h := &HistoryRef{}
		copy(h.BlobID[:], r.Take(32, "blob id"))
		copy(h.Key[:], r.Take(32, "key"))
		copy(h.Digest[:], r.Take(32, "digest"))
		h.PlainSize = r.U64("plain size")
		h.CipherSize = r.U64("cipher size")
		if r.Err() == nil && !validHistory(h) {
			return nil, invalidf("history reference with inconsistent sizes")
		}
		out.resp.History = h
	default:
		return nil, invalidf("history flag not 0 or 1")
	}
	if r.Err() != nil || r.Len() != 0 {
		return nil, invalidf("response of the wrong length")
	}
	if err := checkName(out.resp.PersonName); err != nil {
		return nil, invalidf("person name: %v", err)
	}
	return out, nil
}

// check parses the secret and the certificate and matches them with each
// other and with the request.
func (raw *rawResponse) check(req *Request) (*Response, error) {
	id, err := identity.ParseIdentitySecret(raw.identity)
	if err != nil {
		return nil, invalidf("identity secret refused")
	}
	cert, err := keys.ParseDeviceCertificate(raw.cert)
	if err != nil {
		return nil, invalidf("device certificate refused")
	}
	if !cert.Identity.Equal(id.Public()) {
		return nil, invalidf("the certificate is not signed by the identity sent with it")
	}
	if !cert.Signing.Equal(req.Signing) || !cert.KEM.Equal(req.KEM) {
		return nil, invalidf("the certificate is not for this device's keys")
	}
	resp := raw.resp
	resp.Identity, resp.Certificate = id, cert
	resp.DeviceList = append([]byte(nil), resp.DeviceList...)
	resp.Contacts = append([]byte(nil), resp.Contacts...)
	return &resp, nil
}

// validHistory: the sizes of SPEC section 12.2 (a cipher size that is not
// CipherSize(plain size) names a blob that cannot be decrypted).
func validHistory(h *HistoryRef) bool {
	if h.PlainSize > attach.MaxPlainSize {
		return false
	}
	return h.CipherSize == uint64(attach.CipherSize(int64(h.PlainSize)))
}

// checkName: 1..MaxNameSize bytes of UTF-8 without control or format
// characters (no bidirectional overrides), and no space at either end.
func checkName(s string) error {
	if len(s) == 0 || len(s) > MaxNameSize {
		return nameErrorf("%d bytes (1..%d)", len(s), MaxNameSize)
	}
	if !utf8.ValidString(s) {
		return nameErrorf("not UTF-8")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == utf8.RuneError {
			return nameErrorf("control or format character")
		}
	}
	if first, _ := utf8.DecodeRuneInString(s); unicode.IsSpace(first) {
		return nameErrorf("space at the start")
	}
	if last, _ := utf8.DecodeLastRuneInString(s); unicode.IsSpace(last) {
		return nameErrorf("space at the end")
	}
	return nil
}

// requestAAD is "postern.v1 link request" || 0x00 || tag || version ||
// context || u64 expiry.
func (c *Code) requestAAD() []byte {
	b := append([]byte(requestAADLabel), 0, TagRequest, FormatVersion)
	b = append(b, c.context()...)
	return binary.BigEndian.AppendUint64(b, uint64(c.Expires.Unix()))
}

// transcript is SHA-256("postern.v1 link transcript" || 0x00 || context ||
// u64 expiry || sealed request).
func (c *Code) transcript(sealed []byte) Transcript {
	h := sha256.New()
	h.Write([]byte(transcriptLabel))
	h.Write([]byte{0})
	h.Write(c.context())
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(c.Expires.Unix())))
	h.Write(sealed)
	var t Transcript
	h.Sum(t[:0])
	return t
}

// responseAAD is "postern.v1 link response" || 0x00 || tag || version || transcript.
func responseAAD(t Transcript) []byte {
	b := append([]byte(responseAADLabel), 0, TagResponse, FormatVersion)
	return append(b, t[:]...)
}

// seal is tag || version || nonce [24] || XChaCha20-Poly1305(key, nonce,
// body, aad). The nonce is random: the key is used for one message per
// code, and a random 192-bit nonce is safe for any number.
func seal(key []byte, tag byte, aad, body []byte, rnd io.Reader) ([]byte, error) {
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic("link: " + err.Error()) // unreachable: fixed key size
	}
	out := make([]byte, headerSize+nonceSize, overhead+len(body))
	out[0], out[1] = tag, FormatVersion
	if _, err := io.ReadFull(rnd, out[headerSize:]); err != nil {
		return nil, err
	}
	return a.Seal(out, out[headerSize:], body, aad), nil
}

// open reverses seal. Every failure is ErrDecrypt: a wrong tag or version
// is as unauthenticated as a flipped bit.
func open(key []byte, tag byte, aad, sealed []byte) ([]byte, error) {
	if len(sealed) < overhead || sealed[0] != tag || sealed[1] != FormatVersion {
		return nil, ErrDecrypt
	}
	a, err := chacha20poly1305.NewX(key)
	if err != nil {
		panic("link: " + err.Error())
	}
	body, err := a.Open(nil, sealed[headerSize:headerSize+nonceSize], sealed[headerSize+nonceSize:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return body, nil
}
