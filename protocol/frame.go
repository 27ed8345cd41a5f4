package protocol

import "fmt"

// FrameType is the first byte of every frame. Client requests use
// 0x01–0x7f, relay frames 0x80–0xff. The types after the last ones below
// (requests from 0x0e, relay frames from 0x8b) are reserved for what comes
// without a version change (SPEC.md section 2: multiple devices, groups,
// team queues, key transparency); attachments took the first of each,
// CreateBlob 0x0d and BlobCreated 0x8a. A version 1 relay answers an
// unknown request type with CodeUnknownFrame and keeps the connection.
type FrameType uint8

// Frame types of version 1.
const (
	TypeEnroll           FrameType = 0x01
	TypeAuth             FrameType = 0x02
	TypeCreateMailbox    FrameType = 0x03
	TypeAddCapability    FrameType = 0x04
	TypeRevokeCapability FrameType = 0x05
	TypePublishPrekeys   FrameType = 0x06
	TypeFetchBundle      FrameType = 0x07
	TypeSend             FrameType = 0x08
	TypeSubscribe        FrameType = 0x09
	TypeAck              FrameType = 0x0a
	TypeGetPrekeyStatus  FrameType = 0x0b
	TypeDeleteMailbox    FrameType = 0x0c
	TypeCreateBlob       FrameType = 0x0d

	TypeChallenge      FrameType = 0x80
	TypeOK             FrameType = 0x81
	TypeError          FrameType = 0x82
	TypeAuthenticated  FrameType = 0x83
	TypeMailboxCreated FrameType = 0x84
	TypeBundle         FrameType = 0x85
	TypeSent           FrameType = 0x86
	TypeDeliver        FrameType = 0x87
	TypePrekeyStatus   FrameType = 0x88
	TypeDrained        FrameType = 0x89
	TypeBlobCreated    FrameType = 0x8a
)

// Frame types of fan-out lists (fanout.go).
const (
	TypeCreateFanout  FrameType = 0x13
	TypeUpdateFanout  FrameType = 0x14
	TypeSendFanout    FrameType = 0x15
	TypeFanoutCreated FrameType = 0x8b
	TypeFanoutSent    FrameType = 0x8c
)

// HeaderSize is the frame header: type (1) and request ID (4).
const HeaderSize = 5

// AuthContext is the signature context of a device's answer to a relay
// challenge; the signed message is AuthMessage.
const AuthContext = "relay-auth"

// AuthMessage is what a device signs to authenticate: the relay's nonce and
// the host the client dialled, so that a signature given to one relay
// cannot be replayed to another.
func AuthMessage(nonce [32]byte, host string) []byte {
	m := make([]byte, 0, 32+1+len(host))
	m = append(m, nonce[:]...)
	m = append(m, byte(len(host)))
	return append(m, host[:min(len(host), 255)]...)
}

// Frame is one of the frame structs below.
type Frame interface {
	Type() FrameType
	appendBody(b []byte) ([]byte, error)
	parseBody(r *Reader)
}

// Marshal encodes f with request ID id (0 for frames the relay pushes).
// It refuses a frame that breaks a limit, so a well-behaved peer never
// sends what the other side must reject.
func Marshal(id uint32, f Frame) ([]byte, error) {
	b := make([]byte, 0, 64)
	b = append(b, byte(f.Type()))
	b = appendU32(b, id)
	b, err := f.appendBody(b)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxFrameSize {
		return nil, errorf(ErrTooLarge, "frame of %d bytes exceeds %d", len(b), MaxFrameSize)
	}
	return b, nil
}

// Parse decodes one frame. Every failure wraps ErrMalformed, ErrTooLarge or
// ErrVersion and names the field at fault.
func Parse(b []byte) (id uint32, f Frame, err error) {
	if len(b) > MaxFrameSize {
		return 0, nil, errorf(ErrTooLarge, "frame of %d bytes exceeds %d", len(b), MaxFrameSize)
	}
	if len(b) < HeaderSize {
		return 0, nil, errorf(ErrMalformed, "frame of %d bytes is shorter than its %d-byte header", len(b), HeaderSize)
	}
	t := FrameType(b[0])
	f = newFrame(t)
	if f == nil {
		return 0, nil, &UnknownTypeError{Type: t}
	}
	r := NewReader(b[1:])
	id = r.U32("request id")
	f.parseBody(r)
	if r.Err() == nil && r.Len() != 0 {
		// Not Finish: naming the frame would cost an allocation per parse.
		r.Failf("frame 0x%02x: %d trailing bytes", uint8(t), r.Len())
	}
	if err := r.Err(); err != nil {
		return 0, nil, err
	}
	return id, f, nil
}

// UnknownTypeError reports a frame type this version does not define. It
// wraps ErrMalformed; a relay answers it with CodeUnknownFrame.
type UnknownTypeError struct{ Type FrameType }

func (e *UnknownTypeError) Error() string {
	return fmt.Sprintf("%v: unknown frame type 0x%02x", ErrMalformed, uint8(e.Type))
}

func (e *UnknownTypeError) Unwrap() error { return ErrMalformed }

func newFrame(t FrameType) Frame {
	switch t {
	case TypeEnroll:
		return new(Enroll)
	case TypeAuth:
		return new(Auth)
	case TypeCreateMailbox:
		return new(CreateMailbox)
	case TypeAddCapability:
		return new(AddCapability)
	case TypeRevokeCapability:
		return new(RevokeCapability)
	case TypePublishPrekeys:
		return new(PublishPrekeys)
	case TypeFetchBundle:
		return new(FetchBundle)
	case TypeSend:
		return new(Send)
	case TypeSubscribe:
		return new(Subscribe)
	case TypeAck:
		return new(Ack)
	case TypeGetPrekeyStatus:
		return new(GetPrekeyStatus)
	case TypeDeleteMailbox:
		return new(DeleteMailbox)
	case TypeCreateBlob:
		return new(CreateBlob)
	case TypeChallenge:
		return new(Challenge)
	case TypeOK:
		return new(OK)
	case TypeError:
		return new(ErrorFrame)
	case TypeAuthenticated:
		return new(Authenticated)
	case TypeMailboxCreated:
		return new(MailboxCreated)
	case TypeBundle:
		return new(Bundle)
	case TypeSent:
		return new(Sent)
	case TypeDeliver:
		return new(Deliver)
	case TypePrekeyStatus:
		return new(PrekeyStatus)
	case TypeDrained:
		return new(Drained)
	case TypeBlobCreated:
		return new(BlobCreated)
	case TypeCreateClaimSpace, TypeUpdateClaimSpace, TypeSetClaim, TypeGetClaim, TypeClaimSpaceCreated, TypeClaimState:
		return newClaimFrame(t) // claim.go
	}
	if f := newFanoutFrame(t); f != nil { // fanout.go
		return f
	}
	if f := newDirectoryFrame(t); f != nil { // directory.go
		return f
	}
	return newKTFrame(t) // kt.go
}

func checkLen(what string, v []byte, max int) error {
	if len(v) > max {
		return errorf(ErrTooLarge, "%s: %d bytes, limit %d", what, len(v), max)
	}
	return nil
}

// ---- client requests ----

// Enroll registers a new device and authenticates the connection as it.
// Signature is the device's signature (context AuthContext) over
// AuthMessage(challenge nonce, host).
type Enroll struct {
	Invite    string // empty when the relay's enrolment is open
	DeviceKey []byte // the device's public signing key (keys.SigningPublicKey)
	Signature []byte
}

func (*Enroll) Type() FrameType { return TypeEnroll }
func (f *Enroll) appendBody(b []byte) ([]byte, error) {
	if err := checkLen("invite code", []byte(f.Invite), MaxInviteCodeSize); err != nil {
		return nil, err
	}
	if err := checkLen("device key", f.DeviceKey, MaxDeviceKeySize); err != nil {
		return nil, err
	}
	if err := checkLen("signature", f.Signature, MaxSignatureSize); err != nil {
		return nil, err
	}
	b = appendBytes16(b, []byte(f.Invite))
	b = appendBytes16(b, f.DeviceKey)
	return appendBytes16(b, f.Signature), nil
}
func (f *Enroll) parseBody(r *Reader) {
	f.Invite = string(r.Bytes16(MaxInviteCodeSize, "invite code"))
	f.DeviceKey = r.Bytes16(MaxDeviceKeySize, "device key")
	f.Signature = r.Bytes16(MaxSignatureSize, "signature")
}

// Auth authenticates the connection as an enrolled device.
type Auth struct {
	Device    DeviceID
	Signature []byte
}

func (*Auth) Type() FrameType { return TypeAuth }
func (f *Auth) appendBody(b []byte) ([]byte, error) {
	if err := checkLen("signature", f.Signature, MaxSignatureSize); err != nil {
		return nil, err
	}
	b = append(b, f.Device[:]...)
	return appendBytes16(b, f.Signature), nil
}
func (f *Auth) parseBody(r *Reader) {
	r.Array(f.Device[:], "device id")
	f.Signature = r.Bytes16(MaxSignatureSize, "signature")
}

// CreateMailbox asks for a new mailbox owned by the authenticated device.
type CreateMailbox struct{}

func (*CreateMailbox) Type() FrameType                     { return TypeCreateMailbox }
func (*CreateMailbox) appendBody(b []byte) ([]byte, error) { return b, nil }
func (*CreateMailbox) parseBody(*Reader)                   {}

// AddCapability registers the hash of a send capability for a mailbox the
// device owns. The token itself never reaches the relay until it is used.
type AddCapability struct {
	Mailbox MailboxID
	Hash    CapabilityHash
}

func (*AddCapability) Type() FrameType { return TypeAddCapability }
func (f *AddCapability) appendBody(b []byte) ([]byte, error) {
	return append(append(b, f.Mailbox[:]...), f.Hash[:]...), nil
}
func (f *AddCapability) parseBody(r *Reader) {
	r.Array(f.Mailbox[:], "mailbox")
	r.Array(f.Hash[:], "capability hash")
}

// RevokeCapability blocks a capability: later sends with it are refused
// with the Reason's code (RevokeReason.Code; CodeCapabilityRevoked for
// RevokeBlocked).
type RevokeCapability struct {
	Mailbox MailboxID
	Hash    CapabilityHash
	// Reason is an optional trailing byte, absent for RevokeBlocked, so
	// that a frame from a client that predates reasons is unchanged.
	Reason RevokeReason
}

func (*RevokeCapability) Type() FrameType { return TypeRevokeCapability }
func (f *RevokeCapability) appendBody(b []byte) ([]byte, error) {
	if f.Reason > MaxRevokeReason {
		return nil, errorf(ErrMalformed, "revocation reason %d", f.Reason)
	}
	b = append(append(b, f.Mailbox[:]...), f.Hash[:]...)
	if f.Reason != RevokeBlocked {
		b = append(b, byte(f.Reason))
	}
	return b, nil
}
func (f *RevokeCapability) parseBody(r *Reader) {
	r.Array(f.Mailbox[:], "mailbox")
	r.Array(f.Hash[:], "capability hash")
	if r.Err() != nil || r.Len() == 0 {
		return // no reason byte: RevokeBlocked
	}
	f.Reason = RevokeReason(r.U8("revocation reason"))
	switch {
	case f.Reason == RevokeBlocked:
		// Canonical encoding: reason 0 is written by leaving the byte out.
		r.Failf("revocation reason 0 is written by omitting the byte")
	case f.Reason > MaxRevokeReason:
		r.Failf("revocation reason %d is not 1, 2 or 3", f.Reason)
	}
}

// RevokeReason says why a capability was revoked; a send with it is
// refused with the reason's own error code, which a client turns into its
// own sentence (SPEC.md section 10 "Mailboxes and capabilities").
type RevokeReason uint8

// Revocation reasons.
const (
	// RevokeBlocked: the recipient blocked the sender (CodeCapabilityRevoked).
	RevokeBlocked RevokeReason = 0
	// RevokeRestrictedService: the sender is restricted from the whole
	// service (CodeRestrictedService).
	RevokeRestrictedService RevokeReason = 1
	// RevokeRestrictedNew: the sender is restricted from sending new
	// messages to a team (CodeRestrictedNew).
	RevokeRestrictedNew RevokeReason = 2
	// RevokeRestrictedReplies: the sender is restricted from replying in
	// a team's conversations (CodeRestrictedReplies).
	RevokeRestrictedReplies RevokeReason = 3

	// MaxRevokeReason is the highest reason this version defines.
	MaxRevokeReason = RevokeRestrictedReplies
)

// Code is the error code a send with a capability revoked for r gets.
func (r RevokeReason) Code() Code {
	switch r {
	case RevokeRestrictedService:
		return CodeRestrictedService
	case RevokeRestrictedNew:
		return CodeRestrictedNew
	case RevokeRestrictedReplies:
		return CodeRestrictedReplies
	}
	return CodeCapabilityRevoked
}

// RevokeReasonOf reports whether err is (or wraps) a relay Error saying
// that the capability used was revoked, and for which reason.
func RevokeReasonOf(err error) (RevokeReason, bool) {
	for r := RevokeBlocked; r <= MaxRevokeReason; r++ {
		if IsCode(err, r.Code()) {
			return r, true
		}
	}
	return 0, false
}

// PublishPrekeys stores the device's prekey bundle (replacing the previous
// one unless Bundle is empty) and adds one-time prekeys. Both are opaque
// to the relay: clients sign and verify them.
type PublishPrekeys struct {
	Bundle  []byte
	Prekeys [][]byte
}

func (*PublishPrekeys) Type() FrameType { return TypePublishPrekeys }
func (f *PublishPrekeys) appendBody(b []byte) ([]byte, error) {
	if err := checkLen("bundle", f.Bundle, MaxBundleSize); err != nil {
		return nil, err
	}
	if len(f.Prekeys) > MaxPrekeysPerPublish {
		return nil, errorf(ErrTooLarge, "%d one-time prekeys, limit %d", len(f.Prekeys), MaxPrekeysPerPublish)
	}
	b = appendBytes16(b, f.Bundle)
	b = appendU16(b, uint16(len(f.Prekeys)))
	for _, p := range f.Prekeys {
		if len(p) == 0 {
			return nil, errorf(ErrMalformed, "empty one-time prekey")
		}
		if err := checkLen("one-time prekey", p, MaxPrekeySize); err != nil {
			return nil, err
		}
		b = appendBytes16(b, p)
	}
	return b, nil
}
func (f *PublishPrekeys) parseBody(r *Reader) {
	f.Bundle = r.Bytes16(MaxBundleSize, "bundle")
	n := int(r.U16("prekey count"))
	if r.Err() == nil && n > MaxPrekeysPerPublish {
		r.SetErr(errorf(ErrTooLarge, "%d one-time prekeys, limit %d", n, MaxPrekeysPerPublish))
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		p := r.Bytes16(MaxPrekeySize, "one-time prekey")
		if r.Err() == nil && len(p) == 0 {
			r.Failf("one-time prekey %d is empty", i)
		}
		f.Prekeys = append(f.Prekeys, p)
	}
}

// FetchBundle asks for a mailbox owner's prekey bundle and one one-time
// prekey, which the relay then deletes. It needs a send capability for the
// mailbox and no authentication.
type FetchBundle struct {
	Mailbox    MailboxID
	Capability CapabilityToken
}

func (*FetchBundle) Type() FrameType { return TypeFetchBundle }
func (f *FetchBundle) appendBody(b []byte) ([]byte, error) {
	return append(append(b, f.Mailbox[:]...), f.Capability.b[:]...), nil
}
func (f *FetchBundle) parseBody(r *Reader) {
	r.Array(f.Mailbox[:], "mailbox")
	r.Array(f.Capability.b[:], "capability")
}

// Send stores an envelope in a mailbox. It needs a send capability and no
// authentication: the relay learns which capability was used, never who
// sent. The reply (Sent) comes only after the envelope is durable.
type Send struct {
	Mailbox    MailboxID
	Capability CapabilityToken
	Envelope   []byte // the last field: the rest of the frame
}

func (*Send) Type() FrameType { return TypeSend }
func (f *Send) appendBody(b []byte) ([]byte, error) {
	if err := CheckEnvelope(f.Envelope); err != nil {
		return nil, err
	}
	b = append(b, f.Mailbox[:]...)
	b = append(b, f.Capability.b[:]...)
	return append(b, f.Envelope...), nil
}
func (f *Send) parseBody(r *Reader) {
	r.Array(f.Mailbox[:], "mailbox")
	r.Array(f.Capability.b[:], "capability")
	f.Envelope = r.Rest()
}

// Subscribe asks the relay to deliver a mailbox's envelopes, queued ones
// first, on this connection until it closes. Only the owner may subscribe.
type Subscribe struct{ Mailbox MailboxID }

func (*Subscribe) Type() FrameType { return TypeSubscribe }
func (f *Subscribe) appendBody(b []byte) ([]byte, error) {
	return append(b, f.Mailbox[:]...), nil
}
func (f *Subscribe) parseBody(r *Reader) { r.Array(f.Mailbox[:], "mailbox") }

// Ack deletes delivered envelopes. Acknowledging an envelope that is
// already gone succeeds: delivery is at least once.
type Ack struct {
	Mailbox MailboxID
	IDs     []EnvelopeID
}

func (*Ack) Type() FrameType { return TypeAck }
func (f *Ack) appendBody(b []byte) ([]byte, error) {
	if len(f.IDs) == 0 || len(f.IDs) > MaxAckBatch {
		return nil, errorf(ErrTooLarge, "%d envelope ids, want 1 to %d", len(f.IDs), MaxAckBatch)
	}
	b = append(b, f.Mailbox[:]...)
	b = appendU16(b, uint16(len(f.IDs)))
	for _, id := range f.IDs {
		b = append(b, id[:]...)
	}
	return b, nil
}
func (f *Ack) parseBody(r *Reader) {
	r.Array(f.Mailbox[:], "mailbox")
	n := int(r.U16("id count"))
	if r.Err() == nil && (n == 0 || n > MaxAckBatch) {
		r.SetErr(errorf(ErrTooLarge, "%d envelope ids, want 1 to %d", n, MaxAckBatch))
	}
	if r.Err() != nil {
		return
	}
	if r.Len() != n*16 {
		r.Failf("ack: %d bytes for %d ids", r.Len(), n)
		return
	}
	f.IDs = make([]EnvelopeID, n)
	for i := range f.IDs {
		r.Array(f.IDs[i][:], "envelope id")
	}
}

// GetPrekeyStatus asks how many one-time prekeys the relay still holds for
// the authenticated device, so the client can top them up.
type GetPrekeyStatus struct{}

func (*GetPrekeyStatus) Type() FrameType                     { return TypeGetPrekeyStatus }
func (*GetPrekeyStatus) appendBody(b []byte) ([]byte, error) { return b, nil }
func (*GetPrekeyStatus) parseBody(*Reader)                   {}

// DeleteMailbox deletes an owned mailbox, its capabilities and its queue.
type DeleteMailbox struct{ Mailbox MailboxID }

func (*DeleteMailbox) Type() FrameType { return TypeDeleteMailbox }
func (f *DeleteMailbox) appendBody(b []byte) ([]byte, error) {
	return append(b, f.Mailbox[:]...), nil
}
func (f *DeleteMailbox) parseBody(r *Reader) { r.Array(f.Mailbox[:], "mailbox") }

// ---- relay frames ----

// Challenge is the relay's first frame on every connection.
type Challenge struct {
	Nonce [32]byte
	Time  uint64 // relay clock, Unix seconds
}

func (*Challenge) Type() FrameType { return TypeChallenge }
func (f *Challenge) appendBody(b []byte) ([]byte, error) {
	return appendU64(append(b, f.Nonce[:]...), f.Time), nil
}
func (f *Challenge) parseBody(r *Reader) {
	r.Array(f.Nonce[:], "nonce")
	f.Time = r.U64("time")
}

// OK acknowledges a request that has no other answer.
type OK struct{}

func (*OK) Type() FrameType                     { return TypeOK }
func (*OK) appendBody(b []byte) ([]byte, error) { return b, nil }
func (*OK) parseBody(*Reader)                   {}

// ErrorFrame refuses a request (or, with request ID 0, the connection).
type ErrorFrame struct {
	Code Code
	Msg  string
}

func (*ErrorFrame) Type() FrameType { return TypeError }
func (f *ErrorFrame) appendBody(b []byte) ([]byte, error) {
	msg := f.Msg
	if len(msg) > MaxErrorMessage {
		msg = msg[:MaxErrorMessage]
	}
	return appendBytes16(appendU16(b, uint16(f.Code)), []byte(msg)), nil
}
func (f *ErrorFrame) parseBody(r *Reader) {
	f.Code = Code(r.U16("code"))
	f.Msg = string(r.Bytes16(MaxErrorMessage, "error message"))
}

// Err returns the refusal as an *Error.
func (f *ErrorFrame) Err() error { return &Error{Code: f.Code, Msg: f.Msg} }

// Authenticated answers Enroll and Auth.
type Authenticated struct{ Device DeviceID }

func (*Authenticated) Type() FrameType { return TypeAuthenticated }
func (f *Authenticated) appendBody(b []byte) ([]byte, error) {
	return append(b, f.Device[:]...), nil
}
func (f *Authenticated) parseBody(r *Reader) { r.Array(f.Device[:], "device id") }

// MailboxCreated answers CreateMailbox.
type MailboxCreated struct{ Mailbox MailboxID }

func (*MailboxCreated) Type() FrameType { return TypeMailboxCreated }
func (f *MailboxCreated) appendBody(b []byte) ([]byte, error) {
	return append(b, f.Mailbox[:]...), nil
}
func (f *MailboxCreated) parseBody(r *Reader) { r.Array(f.Mailbox[:], "mailbox") }

// Bundle answers FetchBundle. Prekey is empty when the owner has no
// one-time prekey left; the client then uses the bundle's signed prekey.
type Bundle struct {
	Bundle []byte
	Prekey []byte
}

func (*Bundle) Type() FrameType { return TypeBundle }
func (f *Bundle) appendBody(b []byte) ([]byte, error) {
	if err := checkLen("bundle", f.Bundle, MaxBundleSize); err != nil {
		return nil, err
	}
	if err := checkLen("one-time prekey", f.Prekey, MaxPrekeySize); err != nil {
		return nil, err
	}
	return appendBytes16(appendBytes16(b, f.Bundle), f.Prekey), nil
}
func (f *Bundle) parseBody(r *Reader) {
	f.Bundle = r.Bytes16(MaxBundleSize, "bundle")
	f.Prekey = r.Bytes16(MaxPrekeySize, "one-time prekey")
}

// Sent answers Send once the envelope is durable.
type Sent struct{ Envelope EnvelopeID }

func (*Sent) Type() FrameType { return TypeSent }
func (f *Sent) appendBody(b []byte) ([]byte, error) {
	return append(b, f.Envelope[:]...), nil
}
func (f *Sent) parseBody(r *Reader) { r.Array(f.Envelope[:], "envelope id") }

// Deliver pushes one stored envelope to a subscriber (request ID 0).
type Deliver struct {
	Mailbox  MailboxID
	ID       EnvelopeID
	Received uint64 // Unix seconds, truncated to TimeGranularity
	Envelope []byte // the last field
}

func (*Deliver) Type() FrameType { return TypeDeliver }
func (f *Deliver) appendBody(b []byte) ([]byte, error) {
	if err := CheckEnvelope(f.Envelope); err != nil {
		return nil, err
	}
	b = append(b, f.Mailbox[:]...)
	b = append(b, f.ID[:]...)
	b = appendU64(b, f.Received)
	return append(b, f.Envelope...), nil
}
func (f *Deliver) parseBody(r *Reader) {
	r.Array(f.Mailbox[:], "mailbox")
	r.Array(f.ID[:], "envelope id")
	f.Received = r.U64("received")
	f.Envelope = r.Rest()
	if r.Err() == nil {
		if err := CheckEnvelope(f.Envelope); err != nil {
			r.SetErr(err)
		}
	}
}

// PrekeyStatus answers GetPrekeyStatus.
type PrekeyStatus struct {
	Count     uint32 // one-time prekeys left
	HasBundle bool   // whether a bundle is published
}

func (*PrekeyStatus) Type() FrameType { return TypePrekeyStatus }
func (f *PrekeyStatus) appendBody(b []byte) ([]byte, error) {
	var hb byte
	if f.HasBundle {
		hb = 1
	}
	return append(appendU32(b, f.Count), hb), nil
}
func (f *PrekeyStatus) parseBody(r *Reader) {
	f.Count = r.U32("count")
	switch r.U8("has bundle") {
	case 0:
	case 1:
		f.HasBundle = true
	default:
		r.Failf("has bundle: not 0 or 1")
	}
}

// Drained tells a subscriber that every envelope stored in the mailbox when
// the relay last looked has been delivered to it (request ID 0).
type Drained struct{ Mailbox MailboxID }

func (*Drained) Type() FrameType { return TypeDrained }
func (f *Drained) appendBody(b []byte) ([]byte, error) {
	return append(b, f.Mailbox[:]...), nil
}
func (f *Drained) parseBody(r *Reader) { r.Array(f.Mailbox[:], "mailbox") }
