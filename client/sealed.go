package client

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"unicode/utf8"

	"github.com/postern/postern/client/internal/team/directory"
	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Labels and limits of sealed envelopes (protocol/SPEC.md section 9 "Sealed envelopes").
const (
	// SealedInfo is the HPKE info of every sealed envelope.
	SealedInfo = protocol.LabelPrefix + "sealed"
	// SealedSignatureContext is the signature context of the sender's
	// signature inside a sealed envelope.
	SealedSignatureContext = "sealed"
	// MaxTextSize is the largest message text, in bytes of UTF-8.
	MaxTextSize = 16 << 10
	// MaxNameSize is the largest person or contact name, in bytes of UTF-8.
	MaxNameSize = 64
	// MaxSubjectSize is the largest message subject, in bytes of UTF-8.
	MaxSubjectSize = 256

	messageIDLabel = protocol.LabelPrefix + "message-id"
)

// Content types (protocol/SPEC.md section 9). Introductions and refusals
// travel only in sealed envelopes; everything else only in sessions.
// 0x02 was the introduction of invitation format 1, which carried the
// relay-visible capability as its token; it is refused.
const (
	contentText         byte = 0x01
	contentReset        byte = 0x03
	contentAttachment   byte = 0x04
	contentIntroduction byte = 0x05 // sealed: an introduction for an invitation of format 2
	contentRoute        byte = 0x06 // session: a fresh mailbox and send capability for the peer
	contentRouteAck     byte = 0x07 // session: the peer now writes to the route it was given
	contentRefusal      byte = 0x08 // sealed: the invitation was already used by someone else
	contentHello        byte = 0x09 // session: sent by Accept after the introduction, to start the session
	// contentTextHeaders and contentAttachmentHeaders are contentText and
	// contentAttachment with a subject and a reply-to message ID before
	// the body (sent only when one of them is set).
	contentTextHeaders       byte = 0x0a
	contentAttachmentHeaders byte = 0x0b
	// contentIntroRelay is contentIntroduction whose reply mailbox is on
	// another relay (the accepter's home), named after the reply route;
	// contentRouteRelay is contentRoute naming the relay of the new
	// mailbox (the owner's home). Both are sent only to a contact on
	// another relay: a version that does not know them could not write
	// to another relay anyway, and keeps getting 0x05 and 0x06.
	contentIntroRelay byte = 0x10
	contentRouteRelay byte = 0x11
	// contentDeviceList carries the sender's person's newest signed
	// device list: sent to every device of the person's contacts and to
	// its siblings when the list changes (a device linked or revoked),
	// and, with the sender's route, as a new device's first message to
	// each device it knows (its hello, on a sibling's route). To siblings
	// it also names the person's devices (their names travel only
	// between the person's own devices, never in the public list).
	contentDeviceList byte = 0x12
	// contentSentCopy is a message this device sent to a contact, copied
	// to a sibling so that it shows on all of the person's devices: the
	// recipient's identity fingerprint and the message content. Accepted
	// only from a device of this person.
	contentSentCopy byte = 0x13
	// contentHeads carries the sender's newest signed tree heads of the
	// relays both sides use (gossip.go).
	contentHeads byte = 0x14
)

// deviceName is a device of this person with its name (contentDeviceList
// to siblings).
type deviceName struct {
	ID   keys.Fingerprint
	Name string
}

const (
	// maxListedNames bounds the names in a contentDeviceList.
	maxListedNames = keys.MaxDevices
	// maxCopiedSize bounds the message in a contentSentCopy: a session
	// message is at most one envelope.
	maxCopiedSize = protocol.MaxEnvelopeSize
)

// replyIDSize is the size of a message ID as both sides display it (16
// hex digits): what a reply-to names.
const replyIDSize = 8

const (
	msgIDSize      = 16
	padHeaderSize  = 4
	sealedOverhead = protocol.EnvelopeHeaderSize + keys.SealOverhead + padHeaderSize
	// minContentSize: type, sender, the smallest body (an empty text),
	// signature length and signature.
	minContentSize = 1 + keys.FingerprintSize + msgIDSize + 8 + 4 + 2 + keys.SignatureSize
)

// Header flags of contents with headers (0x0a, 0x0b): bit 0 a reply-to
// follows, bit 1 the message is urgent, bit 2 the message is a copy
// forwarded for another person (their identity fingerprint follows the
// reply-to, status.go); other bits are refused.
const (
	headerReply     byte = 1 << 0
	headerUrgent    byte = 1 << 1
	headerForwarded byte = 1 << 2
)

// content is a parsed sealed-envelope content (protocol/SPEC.md section 9).
type content struct {
	Type   byte
	Sender keys.Fingerprint // sender device ID
	MsgID  [msgIDSize]byte
	SentMS uint64 // sender's clock, Unix milliseconds

	Text string // contentText; contentAttachment: the caption, may be empty

	Attachments []attachmentRef // contentAttachment: 1..MaxAttachments

	// contentTextHeaders, contentAttachmentHeaders: the subject (may be
	// empty) and the ID of the message replied to (HasReply).
	Subject  string
	HasReply bool
	ReplyTo  [replyIDSize]byte
	Urgent   bool // the sender marked the message urgent (bit 1 of the flags)
	// ForwardedFor: the message is a copy the sender forwarded to this
	// person for the person of this identity, whose status forwards to
	// them (bit 2 of the flags; zero: not forwarded).
	ForwardedFor keys.Fingerprint

	// contentIntroduction
	Name         string
	Cert         []byte
	IntroMAC     [introductionMACSize]byte // under the invitation's introduction key
	ReplyMailbox protocol.MailboxID        // also contentRoute: the new mailbox
	ReplyCap     [32]byte                  // also contentRoute: its send capability
	// ReplyRelay (contentIntroRelay, contentRouteRelay) is the canonical
	// URL of the relay that holds ReplyMailbox.
	ReplyRelay string

	// contentRefusal: the mailbox of the invitation that was refused.
	Invitation protocol.MailboxID

	// contentDeviceList: the signed list (contentContactShare: the
	// snapshot); HasRoute with the route in
	// ReplyMailbox, ReplyCap and ReplyRelay (a hello); Names of the
	// person's devices (to siblings).
	List     []byte
	HasRoute bool
	Names    []deviceName

	// contentTeamNotice: the team notice (teamnotice.go).
	Notice *teamNoticeWire
	// contentReplyRoute: a team's reply route given or dropped
	// (teamroutes.go).
	RouteOp *replyRouteWire

	// contentSentCopy: the recipient's identity and the message.
	CopyTo keys.Fingerprint
	Inner  *content
	// contentHeads: 1..MaxGossipHeads encoded signed tree heads.
	Heads [][]byte
	// contentSync: 1..maxSyncOps inbox operations (syncops.go).
	Ops []syncOp
	// contentReceipt: the kind (receiptDelivered, receiptRead) and the
	// content message IDs it acknowledges, 1..MaxReceiptIDs (receipts.go).
	ReceiptKind byte
	Receipts    [][msgIDSize]byte
	// Timer: a message content's disappearing timer in seconds (0: none;
	// it then travels as type 0x18, disappear.go); contentDisappear: the
	// new timer of the conversation with TimerPeer, stamped TimerMS.
	Timer     uint32
	TimerPeer keys.Fingerprint
	TimerMS   uint64
	// contentRecall: the IDs of the messages deleted for everyone,
	// 1..MaxRecallIDs (recall.go).
	Recalls [][replyIDSize]byte
	// Group contents (groupwire.go): a part of a signed group state, a
	// sender-key distribution, a join.
	GroupPart *groupPart
	GroupKey  []byte
	GroupJoin *groupJoin
	// Team contents (teamwire.go); a queue message or reply carries its
	// message in Inner.
	Team *teamContent
	// contentStatus: an encoded availability status (directory.StatusSize
	// bytes, checked by the receiver against its directory; status.go).
	Status []byte
	// contentRole: an encoded role record (directory.RoleRecordSize
	// bytes, checked by the receiver against its directory; roles.go).
	Role []byte
	// contentDirCapability: the organisation's ID and its directory
	// publishing capability (dircap.go).
	DirCapability []byte
	// contentReach: an organisation reach secret (reach.go).
	Reach *reachWire

	Signature []byte
}

// appendUnsigned encodes the content without its signature fields: the
// bytes the sender signs (after the recipient device ID and mailbox).
func (c *content) appendUnsigned(b []byte) ([]byte, error) {
	timed := c.Timer != 0 && c.Type != contentDisappear
	if timed {
		b = append(b, contentDisappear)
	} else {
		b = append(b, c.Type)
	}
	b = append(b, c.Sender[:]...)
	b = append(b, c.MsgID[:]...)
	b = binary.BigEndian.AppendUint64(b, c.SentMS)
	if timed {
		if !isMessageContent(c.Type) || !validTimer(c.Timer) {
			return nil, ErrDecrypt
		}
		b = appendTimedPrefix(b, c)
	}
	if c.Type == contentTextHeaders || c.Type == contentAttachmentHeaders {
		if len(c.Subject) > MaxSubjectSize {
			return nil, ErrInvalidSubject
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.Subject)))
		b = append(b, c.Subject...)
		var flags byte
		if c.HasReply {
			flags |= headerReply
		}
		if c.Urgent {
			flags |= headerUrgent
		}
		forwarded := c.ForwardedFor != (keys.Fingerprint{})
		if forwarded {
			flags |= headerForwarded
		}
		b = append(b, flags)
		if c.HasReply {
			b = append(b, c.ReplyTo[:]...)
		}
		if forwarded {
			b = append(b, c.ForwardedFor[:]...)
		}
	}
	switch c.Type {
	case contentText, contentTextHeaders:
		if len(c.Text) > MaxTextSize {
			return nil, ErrTooLong
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(c.Text)))
		b = append(b, c.Text...)
	case contentIntroduction, contentIntroRelay:
		if len(c.Name) > MaxNameSize || len(c.Cert) != keys.DeviceCertificateSize {
			return nil, ErrInvalidName
		}
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.Name)))
		b = append(b, c.Name...)
		b = binary.BigEndian.AppendUint16(b, uint16(len(c.Cert)))
		b = append(b, c.Cert...)
		b = append(b, c.IntroMAC[:]...)
		b = append(b, c.ReplyMailbox[:]...)
		b = append(b, c.ReplyCap[:]...)
		if c.Type == contentIntroRelay {
			return appendRelay(b, c.ReplyRelay)
		}
	case contentRoute, contentRouteRelay:
		b = append(b, c.ReplyMailbox[:]...)
		b = append(b, c.ReplyCap[:]...)
		if c.Type == contentRouteRelay {
			return appendRelay(b, c.ReplyRelay)
		}
	case contentRefusal:
		b = append(b, c.Invitation[:]...)
	case contentReset, contentRouteAck, contentHello:
		// No body: message id and time only.
	case contentAttachment, contentAttachmentHeaders, contentDirectory:
		return appendAttachmentBody(b, c)
	case contentDeviceList:
		return appendDeviceListBody(b, c)
	case contentSentCopy:
		if c.Inner == nil || !isMessageContent(c.Inner.Type) {
			return nil, ErrDecrypt
		}
		b = append(b, c.CopyTo[:]...)
		at := len(b)
		b = binary.BigEndian.AppendUint32(b, 0)
		b, err := c.Inner.appendUnsigned(b)
		if err != nil {
			return nil, err
		}
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
		return b, nil
	case contentHeads:
		return appendHeads(b, c.Heads)
	case contentContactShare:
		return appendShareBody(b, c)
	case contentSync:
		return appendSyncBody(b, c)
	case contentReceipt:
		return appendReceiptBody(b, c)
	case contentDisappear:
		return appendTimerBody(b, c)
	case contentRecall:
		return appendRecallBody(b, c)
	case contentGroupState, contentGroupKey, contentGroupJoin:
		return appendGroupBody(b, c)
	case contentStatus:
		return appendFixedBody(b, c.Status, directory.StatusSize)
	case contentRole:
		return appendFixedBody(b, c.Role, directory.RoleRecordSize)
	case contentDirCapability:
		return appendFixedBody(b, c.DirCapability, dirCapabilityBodySize)
	case contentReach:
		return appendReach(b, c.Reach)
	case contentTeamSecrets, contentQueueMessage, contentQueueReply, contentQueueChange, contentQueueReceipt, contentTeamRequest, contentQueueHistory:
		return appendTeamBody(b, c)
	case contentTeamNotice:
		return appendTeamNotice(b, c.Notice)
	case contentReplyRoute:
		return appendReplyRoute(b, c.RouteOp)
	default:
		return nil, ErrDecrypt
	}
	return b, nil
}

// appendDeviceListBody encodes contentDeviceList's body:
// u32 len || list || u8 has-route [|| mailbox || capability || u16 len ||
// relay] || u8 n || n × (device ID || u8 len || name).
func appendDeviceListBody(b []byte, c *content) ([]byte, error) {
	if len(c.List) == 0 || len(c.List) > keys.MaxDeviceListSize || len(c.Names) > maxListedNames {
		return nil, ErrDecrypt
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(c.List)))
	b = append(b, c.List...)
	if c.HasRoute {
		b = append(b, 1)
		b = append(b, c.ReplyMailbox[:]...)
		b = append(b, c.ReplyCap[:]...)
		var err error
		if b, err = appendRelay(b, c.ReplyRelay); err != nil {
			return nil, err
		}
	} else {
		b = append(b, 0)
	}
	b = append(b, byte(len(c.Names)))
	for _, n := range c.Names {
		if checkName(n.Name) != nil {
			return nil, ErrInvalidName
		}
		b = append(b, n.ID[:]...)
		b = append(b, byte(len(n.Name)))
		b = append(b, n.Name...)
	}
	return b, nil
}

// parseDeviceListBody reads what appendDeviceListBody writes. The list is
// only size-checked here; its signature is checked by the receiver.
func parseDeviceListBody(r *protocol.Reader, c *content) bool {
	n := r.U32("device list length")
	if n == 0 || n > keys.MaxDeviceListSize {
		return false
	}
	c.List = bytes.Clone(r.Take(int(n), "device list"))
	switch r.U8("route flag") {
	case 0:
	case 1:
		c.HasRoute = true
		r.Array(c.ReplyMailbox[:], "route mailbox")
		r.Array(c.ReplyCap[:], "route capability")
		if c.ReplyRelay = readRelay(r); c.ReplyRelay == "" {
			return false
		}
	default:
		return false
	}
	k := int(r.U8("name count"))
	if k > maxListedNames {
		return false
	}
	for range k {
		var d deviceName
		r.Array(d.ID[:], "device id")
		d.Name = string(r.Take(int(r.U8("name length")), "name"))
		if r.Err() != nil || checkName(d.Name) != nil {
			return false
		}
		c.Names = append(c.Names, d)
	}
	return r.Err() == nil
}

// marshalSession encodes a text, an attachment or a session reset as the
// plaintext of a session message: u32(len(content)) || content, where content is the
// section 9 encoding without the signature fields (the session
// authenticates its peer). The session pads it with zeros.
func (c *content) marshalSession() ([]byte, error) {
	if !sessionContent(c.Type) {
		return nil, ErrDecrypt
	}
	b, err := c.appendUnsigned(make([]byte, padHeaderSize, padHeaderSize+64+len(c.Text)+len(c.Attachments)*attachmentRefMaxSize))
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-padHeaderSize))
	return b, nil
}

// parseSessionContent decodes the plaintext of a session message: the
// padding as in sealed envelopes, then a text, an attachment or a reset
// with exact lengths. Every failure is ErrDecrypt.
func parseSessionContent(p []byte) (*content, error) {
	b, err := unpad(p)
	if err != nil {
		return nil, err
	}
	r := protocol.NewReader(b)
	c, ok := parseUnsigned(r)
	if !ok || !sessionContent(c.Type) {
		return nil, ErrDecrypt
	}
	if r.Finish("session content") != nil {
		return nil, ErrDecrypt
	}
	return c, nil
}

// sessionContent reports whether a content type travels in sessions.
func sessionContent(t byte) bool {
	switch t {
	case contentText, contentReset, contentAttachment, contentRoute, contentRouteAck, contentHello,
		contentTextHeaders, contentAttachmentHeaders, contentRouteRelay, contentDeviceList, contentSentCopy,
		contentHeads, contentContactShare, contentSync, contentReceipt, contentDisappear, contentRecall,
		contentGroupState, contentGroupKey, contentGroupJoin,
		contentTeamSecrets, contentQueueMessage, contentQueueReply, contentQueueChange, contentQueueReceipt, contentTeamRequest,
		contentQueueHistory, contentTeamNotice, contentDirectory, contentStatus, contentRole, contentDirCapability, contentReplyRoute, contentReach:
		return true
	}
	return false
}

// sealedContent reports whether a content type travels sealed.
func sealedContent(t byte) bool {
	return t == contentIntroduction || t == contentRefusal || t == contentIntroRelay
}

// isIntroduction reports whether a content type is an introduction (with
// or without a relay).
func isIntroduction(t byte) bool { return t == contentIntroduction || t == contentIntroRelay }

// appendRelay appends u16(len(relay)) || relay; relay must be a relay URL
// in canonical form (SPEC.md section 9 "Invitations", relay URLs).
func appendRelay(b []byte, relay string) ([]byte, error) {
	if canon, err := CheckRelayURL(relay); err != nil || canon != relay {
		return nil, ErrInvalidRelayURL
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(relay)))
	return append(b, relay...), nil
}

// readRelay reads what appendRelay writes. A relay URL from a peer is used
// to dial: it must be valid, secure (ws:// only to a loopback host) and in
// canonical form, so that one route has one encoding; otherwise "".
func readRelay(r *protocol.Reader) string {
	n := int(r.U16("relay length"))
	if n == 0 || n > MaxRelayURLSize {
		return ""
	}
	s := string(r.Take(n, "relay"))
	if r.Err() != nil {
		return ""
	}
	if canon, err := CheckRelayURL(s); err != nil || canon != s {
		return ""
	}
	return s
}

// parseUnsigned reads what appendUnsigned writes, for every content type:
// the common header, then the type's body, every size capped. It reports
// false on any failure; callers decide which types their envelope may
// carry and what may follow.
func parseUnsigned(r *protocol.Reader) (*content, bool) {
	c := &content{Type: r.U8("content type")}
	r.Array(c.Sender[:], "sender")
	r.Array(c.MsgID[:], "message id")
	c.SentMS = r.U64("sent time")
	if c.Type == contentDisappear {
		// A timer change ends here; a timed message goes on as the
		// message type it names (disappear.go).
		if done, ok := parseDisappearPrefix(r, c); done || !ok {
			return c, ok && r.Err() == nil
		}
	}
	if c.Type == contentTextHeaders || c.Type == contentAttachmentHeaders {
		n := int(r.U16("subject length"))
		if n > MaxSubjectSize {
			return nil, false
		}
		c.Subject = string(r.Take(n, "subject"))
		if !validSubject(c.Subject) {
			return nil, false
		}
		flags := r.U8("header flags")
		if flags&^(headerReply|headerUrgent|headerForwarded) != 0 {
			return nil, false
		}
		c.Urgent = flags&headerUrgent != 0
		if flags&headerReply != 0 {
			c.HasReply = true
			r.Array(c.ReplyTo[:], "reply-to")
		}
		if flags&headerForwarded != 0 {
			// A zero fingerprint would not re-encode with the flag.
			if r.Array(c.ForwardedFor[:], "forwarded for"); r.Err() == nil && c.ForwardedFor == (keys.Fingerprint{}) {
				return nil, false
			}
		}
	}
	switch c.Type {
	case contentText, contentTextHeaders:
		n := r.U32("text length")
		if n > MaxTextSize {
			return nil, false
		}
		c.Text = string(r.Take(int(n), "text"))
		if !utf8.ValidString(c.Text) {
			return nil, false
		}
	case contentIntroduction, contentIntroRelay:
		n := int(r.U16("name length"))
		if n > MaxNameSize {
			return nil, false
		}
		c.Name = string(r.Take(n, "name"))
		if r.Err() == nil && checkName(c.Name) != nil {
			return nil, false
		}
		if int(r.U16("certificate length")) != keys.DeviceCertificateSize {
			return nil, false
		}
		c.Cert = bytes.Clone(r.Take(keys.DeviceCertificateSize, "certificate"))
		r.Array(c.IntroMAC[:], "introduction mac")
		r.Array(c.ReplyMailbox[:], "reply mailbox")
		r.Array(c.ReplyCap[:], "reply capability")
		if c.Type == contentIntroRelay {
			if c.ReplyRelay = readRelay(r); c.ReplyRelay == "" {
				return nil, false
			}
		}
	case contentRoute, contentRouteRelay:
		r.Array(c.ReplyMailbox[:], "reply mailbox")
		r.Array(c.ReplyCap[:], "reply capability")
		if c.Type == contentRouteRelay {
			if c.ReplyRelay = readRelay(r); c.ReplyRelay == "" {
				return nil, false
			}
		}
	case contentRefusal:
		r.Array(c.Invitation[:], "invitation")
	case contentReset, contentRouteAck, contentHello:
		// No body: message id and time only.
	case contentAttachment, contentAttachmentHeaders, contentDirectory:
		if !parseAttachmentBody(r, c) {
			return nil, false
		}
	case contentDeviceList:
		if !parseDeviceListBody(r, c) {
			return nil, false
		}
	case contentSentCopy:
		r.Array(c.CopyTo[:], "recipient")
		n := r.U32("copied content length")
		if n > maxCopiedSize {
			return nil, false
		}
		inner := protocol.NewReader(r.Take(int(n), "copied content"))
		if r.Err() != nil {
			return nil, false
		}
		in, ok := parseUnsigned(inner)
		if !ok || !isMessageContent(in.Type) || inner.Finish("copied content") != nil {
			return nil, false
		}
		c.Inner = in
	case contentHeads:
		if c.Heads = parseHeads(r); c.Heads == nil {
			return nil, false
		}
	case contentContactShare:
		if !parseShareBody(r, c) {
			return nil, false
		}
	case contentSync:
		if !parseSyncBody(r, c) {
			return nil, false
		}
	case contentReceipt:
		if !parseReceiptBody(r, c) {
			return nil, false
		}
	case contentRecall:
		if !parseRecallBody(r, c) {
			return nil, false
		}
	case contentGroupState, contentGroupKey, contentGroupJoin:
		if !parseGroupBody(r, c) {
			return nil, false
		}
	case contentStatus:
		// The signed records (a status, a role record) are only
		// size-checked here; their receivers check signatures and rules.
		c.Status = bytes.Clone(r.Take(directory.StatusSize, "status"))
	case contentRole:
		c.Role = bytes.Clone(r.Take(directory.RoleRecordSize, "role record"))
	case contentDirCapability:
		c.DirCapability = bytes.Clone(r.Take(dirCapabilityBodySize, "directory capability"))
	case contentReach:
		if c.Reach = parseReachBody(r); c.Reach == nil {
			return nil, false
		}
	case contentTeamSecrets, contentQueueMessage, contentQueueReply, contentQueueChange, contentQueueReceipt, contentTeamRequest, contentQueueHistory:
		if !parseTeamBody(r, c) {
			return nil, false
		}
	case contentTeamNotice:
		n, ok := parseTeamNotice(r)
		if !ok {
			return nil, false
		}
		c.Notice = n
	case contentReplyRoute:
		if c.RouteOp = parseReplyRoute(r); c.RouteOp == nil {
			return nil, false
		}
	default:
		return nil, false
	}
	return c, r.Err() == nil
}

// signedMessage is what the sender signs: recipient device ID || mailbox
// ID || content without its signature. Binding the recipient device and
// the mailbox stops a recipient from forwarding a signed content to a third
// party as if it had been written to them.
func signedMessage(recipient keys.Fingerprint, mailbox protocol.MailboxID, unsigned []byte) []byte {
	m := make([]byte, 0, len(recipient)+len(mailbox)+len(unsigned))
	m = append(m, recipient[:]...)
	m = append(m, mailbox[:]...)
	return append(m, unsigned...)
}

type contentSigner interface {
	Sign(context string, msg []byte) ([]byte, error)
}

// marshalSigned encodes c and signs it for recipient and mailbox.
func (c *content) marshalSigned(s contentSigner, recipient keys.Fingerprint, mailbox protocol.MailboxID) ([]byte, error) {
	unsigned, err := c.appendUnsigned(make([]byte, 0, 64+len(c.Text)+len(c.Cert)+keys.SignatureSize))
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(SealedSignatureContext, signedMessage(recipient, mailbox, unsigned))
	if err != nil {
		return nil, err
	}
	c.Signature = sig
	out := binary.BigEndian.AppendUint16(unsigned, uint16(len(sig)))
	return append(out, sig...), nil
}

// parseContent decodes a content: exact lengths, no trailing bytes, every
// size capped. It returns the content and the unsigned prefix. Every
// failure is ErrDecrypt: to the sender nothing distinguishes a bad
// decryption from a bad parse.
func parseContent(b []byte) (*content, []byte, error) {
	if len(b) < minContentSize {
		return nil, nil, ErrDecrypt
	}
	r := protocol.NewReader(b)
	c, ok := parseUnsigned(r)
	if !ok || !sealedContent(c.Type) {
		return nil, nil, ErrDecrypt
	}
	unsignedLen := len(b) - r.Len()
	if int(r.U16("signature length")) != keys.SignatureSize {
		return nil, nil, ErrDecrypt
	}
	c.Signature = bytes.Clone(r.Take(keys.SignatureSize, "signature"))
	if r.Finish("sealed content") != nil {
		return nil, nil, ErrDecrypt
	}
	return c, b[:unsignedLen], nil
}

// sealedAAD is the additional data of a sealed envelope: its two header
// bytes and the recipient mailbox, so that an envelope moved to another
// mailbox, or relabelled as another kind, does not open.
func sealedAAD(hdr []byte, mailbox protocol.MailboxID) []byte {
	return append(append(make([]byte, 0, len(hdr)+len(mailbox)), hdr...), mailbox[:]...)
}

// sealEnvelope pads content and seals it to rcpt for mailbox. The result
// is exactly one padding bucket long.
func sealEnvelope(rcpt *keys.Recipient, mailbox protocol.MailboxID, content []byte) ([]byte, error) {
	size, err := protocol.BucketFor(sealedOverhead + len(content))
	if err != nil {
		return nil, ErrTooLong
	}
	p := make([]byte, size-protocol.EnvelopeHeaderSize-keys.SealOverhead)
	binary.BigEndian.PutUint32(p, uint32(len(content)))
	copy(p[padHeaderSize:], content)
	hdr := []byte{protocol.Version, byte(protocol.KindSealed)}
	ct, err := rcpt.Seal([]byte(SealedInfo), sealedAAD(hdr, mailbox), p)
	if err != nil {
		return nil, err
	}
	env := append(hdr, ct...)
	if len(env) != size {
		return nil, ErrDecrypt // unreachable: Seal's overhead is fixed
	}
	return env, nil
}

type envelopeOpener interface {
	Open(info, aad, sealed []byte) ([]byte, error)
}

// openEnvelope opens a sealed envelope delivered to mailbox and returns its
// content (unpadded, not yet parsed). Every failure is ErrDecrypt.
func openEnvelope(o envelopeOpener, mailbox protocol.MailboxID, env []byte) ([]byte, error) {
	if protocol.CheckEnvelope(env) != nil || env[1] != byte(protocol.KindSealed) || len(env) < sealedOverhead {
		return nil, ErrDecrypt
	}
	hdr := env[:protocol.EnvelopeHeaderSize]
	p, err := o.Open([]byte(SealedInfo), sealedAAD(hdr, mailbox), env[protocol.EnvelopeHeaderSize:])
	if err != nil {
		return nil, ErrDecrypt
	}
	return unpad(p)
}

// unpad checks and strips the padding of a sealed plaintext: u32 content
// length, content, then zero bytes only.
func unpad(p []byte) ([]byte, error) {
	if len(p) < padHeaderSize {
		return nil, ErrDecrypt
	}
	n := binary.BigEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-padHeaderSize) {
		return nil, ErrDecrypt
	}
	c, pad := p[padHeaderSize:padHeaderSize+int(n)], p[padHeaderSize+int(n):]
	var acc byte
	for _, x := range pad {
		acc |= x
	}
	if acc != 0 {
		return nil, ErrDecrypt
	}
	return c, nil
}

// localMessageID is the short ID both sides show for a message: 16 hex
// digits of SHA-256(label || sender device ID || message ID). Hashing the
// sender's device in means one contact cannot pick IDs that collide with
// another contact's messages.
func localMessageID(sender keys.Fingerprint, msgID [msgIDSize]byte) string {
	h := sha256.New()
	h.Write([]byte(messageIDLabel))
	h.Write(sender[:])
	h.Write(msgID[:])
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// appendFixedBody encodes the body of a content that is one field of
// exactly size bytes (a status, a role record, a directory capability).
func appendFixedBody(b, field []byte, size int) ([]byte, error) {
	if len(field) != size {
		return nil, ErrDecrypt
	}
	return append(b, field...), nil
}
