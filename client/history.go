package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/postern/postern/client/internal/backup"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/keys"
)

// History as backup records (protocol/SPEC.md section 14.3): the
// conversations (type 0x04) and the messages (type 0x05) of this device's
// store, each record the JSON of a versioned struct below. The same
// records carry a backup's history and can carry a history sent to a new
// device. Attachment references travel inside their messages, with their
// keys; record type 0x06 is not written, and a reader skips it.
//
// Records name people by their identity fingerprint, never by local
// record IDs: the importing device has record IDs of its own.
const (
	// historyVersion is the "v" of every history record this version
	// writes and the only one it reads.
	historyVersion = 1
	// historyBatch is the most conversations or messages in one record.
	historyBatch = 256
	// historyRecordTarget closes a messages record once its encoding
	// reaches it, before historyBatch if the messages are large: a record
	// stays far below backup.MaxRecordSize (one message encodes to at most
	// about 110 KiB), and a reader or writer holds one record at a time.
	historyRecordTarget = 1 << 20
	// maxSendErrorSize bounds a message's send error, in bytes of UTF-8.
	maxSendErrorSize = 1024
	// maxTitleSize bounds a conversation's title, in bytes of UTF-8.
	maxTitleSize = 256
	// messageIDLen is the length of a message ID: 16 lowercase hex digits.
	messageIDLen = 16

	// unsentNote is the send error of a message that waited in the outbox
	// of the device the history came from.
	unsentNote = "it was waiting to be sent on the device this history came from, and may never have been sent"
)

// recordWriter is where history records go: a backup.Writer, or any
// stream of typed records. WriteRecord must not keep data after it
// returns: the writer reuses it.
type recordWriter interface {
	WriteRecord(typ backup.RecordType, data []byte) error
}

// recordReader is where history records come from: a backup.Reader, or
// any stream of typed records; Next returns io.EOF after the last one.
type recordReader interface {
	Next() (backup.Record, error)
}

// ErrInvalidHistory: a history record that does not decode or breaks a
// limit of protocol/SPEC.md section 14.3. The error names the record,
// the entry and the field; nothing of the history was imported.
var ErrInvalidHistory = errors.New("client: invalid history record")

// historyConversations is the data of a record of type 0x04.
type historyConversations struct {
	V             int                   `json:"v"`
	Conversations []historyConversation `json:"conversations"`
}

type historyConversation struct {
	Type    int       `json:"type"`            // 1: direct
	Peer    string    `json:"peer"`            // the other person's identity fingerprint, 64 hex digits
	Title   string    `json:"title,omitempty"` //
	Created time.Time `json:"created"`         //
}

// historyMessages is the data of a record of type 0x05.
type historyMessages struct {
	V        int              `json:"v"`
	Messages []historyMessage `json:"messages"`
}

type historyMessage struct {
	ID string `json:"id"`
	// Peer is the identity fingerprint of the other person of the message's
	// direct conversation; empty for a message whose conversation is gone
	// (its contact was deleted).
	Peer string `json:"peer,omitempty"`
	// SenderDevice is the device ID of an incoming message's sender.
	SenderDevice string              `json:"sender_device,omitempty"`
	From         string              `json:"from"`
	To           string              `json:"to"`
	Text         string              `json:"text"`
	Subject      string              `json:"subject,omitempty"`
	ReplyTo      string              `json:"reply_to,omitempty"`
	Time         time.Time           `json:"time"`
	Received     time.Time           `json:"received"`
	Outgoing     bool                `json:"outgoing,omitempty"`
	Notice       bool                `json:"notice,omitempty"`
	Unsent       bool                `json:"unsent,omitempty"` // queued in the outbox when written
	SendError    string              `json:"send_error,omitempty"`
	Attachments  []historyAttachment `json:"attachments,omitempty"`
}

type historyAttachment struct {
	Blob       []byte `json:"blob"`   // 32 bytes, base64
	Key        []byte `json:"key"`    // 32 bytes, base64
	Digest     []byte `json:"digest"` // 32 bytes, base64
	Size       uint64 `json:"size"`
	CipherSize uint64 `json:"cipher_size"`
	Name       string `json:"name"`
	MediaType  string `json:"type,omitempty"`
}

// historyErr is ErrInvalidHistory saying where and what: "client:
// invalid history record (record 4, message 17: subject longer than 256
// bytes or with control characters)".
type historyErr struct{ detail string }

func (e *historyErr) Error() string { return ErrInvalidHistory.Error() + " (" + e.detail + ")" }
func (e *historyErr) Unwrap() error { return ErrInvalidHistory }

// historyError is a rule an entry breaks (the detail of a historyErr).
func historyError(format string, a ...any) error { return fmt.Errorf(format, a...) }

// invalidHistory is a historyErr at place where.
func invalidHistory(where string, err error) error {
	if he, ok := err.(*historyErr); ok {
		return &historyErr{detail: where + ", " + he.detail}
	}
	return &historyErr{detail: where + ": " + err.Error()}
}

// ---- writing ----

// writeHistory writes this device's conversations and messages to w, in
// one read transaction.
func (c *Client) writeHistory(ctx context.Context, w recordWriter) error {
	return c.st.view(func(t *tx) error {
		_, err := t.writeHistory(ctx, w)
		return err
	})
}

// writeHistory writes the conversations, then the messages in the order
// they were stored (a reply after what it answers), and returns how many
// messages it wrote. Every entry is checked as an import checks it, so
// that what is written can be read back: a stored message that would be
// refused fails the write, naming it.
func (t *tx) writeHistory(ctx context.Context, w recordWriter) (int, error) {
	persons, err := t.Persons()
	if err != nil {
		return 0, err
	}
	identityOf := make(map[string]string, len(persons)) // person record ID -> fingerprint hex
	for _, p := range persons {
		if len(p.Identity) == keys.FingerprintSize {
			identityOf[string(p.ID)] = hex.EncodeToString(p.Identity)
		}
	}
	devices, err := t.Devices()
	if err != nil {
		return 0, err
	}
	deviceOf := make(map[string]string, len(devices)) // device record ID -> device ID hex
	for _, d := range devices {
		if len(d.DeviceID) == keys.FingerprintSize {
			deviceOf[string(d.ID)] = hex.EncodeToString(d.DeviceID)
		}
	}

	// Conversations.
	peerOf := map[string]string{} // conversation ID -> peer fingerprint hex
	var convs []historyConversation
	flushConvs := func() error {
		if len(convs) == 0 {
			return nil
		}
		b, err := json.Marshal(&historyConversations{V: historyVersion, Conversations: convs})
		if err != nil {
			return err
		}
		convs = convs[:0]
		return w.WriteRecord(backup.RecordConversations, b)
	}
	err = t.Each(store.BucketConversations, func(_, v []byte) error {
		var sc store.Conversation
		if err := store.Unmarshal(v, &sc); err != nil {
			return err
		}
		peer, ok := identityOf[string(sc.Person)]
		if sc.Type != store.Direct || !ok {
			return nil // a type this version does not handle, or a conversation without its person
		}
		peerOf[string(sc.ID)] = peer
		hc := historyConversation{Type: int(store.Direct), Peer: peer, Title: sc.Title, Created: sc.Created.UTC()}
		if err := hc.check(); err != nil {
			return fmt.Errorf("client: a stored conversation cannot be written to the history: %w", err)
		}
		convs = append(convs, hc)
		if len(convs) == historyBatch {
			return flushConvs()
		}
		return ctx.Err()
	})
	if err == nil {
		err = flushConvs()
	}
	if err != nil {
		return 0, err
	}

	// Messages, batched: the record is built as it goes, one message
	// encoded at a time, and written when full.
	var (
		rec   bytes.Buffer
		count int
		n     int
	)
	prefix := fmt.Sprintf(`{"v":%d,"messages":[`, historyVersion)
	rec.WriteString(prefix)
	enc := json.NewEncoder(&rec)
	enc.SetEscapeHTML(false)
	flush := func() error {
		if count == 0 {
			return nil
		}
		rec.WriteString("]}")
		if err := w.WriteRecord(backup.RecordMessages, rec.Bytes()); err != nil {
			return err
		}
		rec.Reset()
		rec.WriteString(prefix)
		count = 0
		return nil
	}
	err = t.Messages(func(m *store.Message) error {
		if !m.Expires.IsZero() || !m.Recalled.IsZero() {
			return nil // a disappearing or deleted message is not copied (disappear.go, recall.go)
		}
		hm := historyMessageOf(m, peerOf, deviceOf)
		if err := hm.check(); err != nil {
			return fmt.Errorf("client: stored message %s cannot be written to the history: %w", shortID(m.ID), err)
		}
		if count > 0 {
			rec.WriteByte(',')
		}
		if err := enc.Encode(hm); err != nil {
			return err
		}
		count++
		n++
		if count == historyBatch || rec.Len() >= historyRecordTarget {
			if err := flush(); err != nil {
				return err
			}
		}
		return ctx.Err()
	})
	if err == nil {
		err = flush()
	}
	return n, err
}

// historyMessageOf is the history entry of stored message m.
func historyMessageOf(m *store.Message, peerOf, deviceOf map[string]string) *historyMessage {
	hm := &historyMessage{
		ID: m.ID, Peer: peerOf[string(m.Conversation)],
		From: m.From, To: m.To, Text: m.Text, Subject: m.Subject, ReplyTo: m.ReplyTo,
		Time: m.Time.UTC(), Received: m.Received.UTC(),
		Outgoing: m.Outgoing, Notice: m.Notice, Unsent: m.Queued, SendError: m.SendError,
	}
	if !m.Outgoing && !m.Notice && hm.Peer != "" {
		hm.SenderDevice = deviceOf[string(m.Sender)]
	}
	for _, a := range m.Attachments {
		hm.Attachments = append(hm.Attachments, historyAttachment{
			Blob: a.Blob, Key: a.Key, Digest: a.Digest, Size: a.PlainSize, CipherSize: a.CipherSize,
			Name: a.Name, MediaType: a.MediaType,
		})
	}
	return hm
}

// shortID is a message ID as errors may name it (IDs are 16 hex digits;
// anything else is not echoed).
func shortID(id string) string {
	if validMessageID(id) {
		return id
	}
	return "(with an invalid ID)"
}

// ---- checks (SPEC section 14.3, the tables) ----

func validMessageID(s string) bool {
	if len(s) != messageIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func validFingerprintHex(s string) bool {
	if len(s) != 2*keys.FingerprintSize {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// validHistoryTime: a time JSON carries as RFC 3339 from 1970 to 9999.
func validHistoryTime(t time.Time) bool {
	return t.Year() >= 1970 && t.Year() <= 9999
}

// validParty is a message's From or To: Me or a name as checkName allows.
func validParty(s string) bool { return s == Me || checkName(s) == nil }

func validPlainText(s string, limit int) bool {
	return len(s) <= limit && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

func (hc *historyConversation) check() error {
	switch {
	case hc.Type != int(store.Direct):
		return historyError("conversation type %d (this version knows 1, direct)", hc.Type)
	case !validFingerprintHex(hc.Peer):
		return historyError("conversation peer is not 64 lowercase hex digits")
	case !validPlainText(hc.Title, maxTitleSize):
		return historyError("conversation title longer than %d bytes or with control characters", maxTitleSize)
	case !validHistoryTime(hc.Created):
		return historyError("conversation created time out of range")
	}
	return nil
}

func (hm *historyMessage) check() error {
	switch {
	case !validMessageID(hm.ID):
		return historyError("message ID is not 16 lowercase hex digits")
	case hm.Peer != "" && !validFingerprintHex(hm.Peer):
		return historyError("message peer is not 64 lowercase hex digits")
	case hm.SenderDevice != "" && !validFingerprintHex(hm.SenderDevice):
		return historyError("message sender device is not 64 lowercase hex digits")
	case hm.SenderDevice != "" && (hm.Outgoing || hm.Notice || hm.Peer == ""):
		return historyError("a sender device on a message that is not an incoming message of a conversation")
	case !validParty(hm.From) || !validParty(hm.To):
		return historyError("message from or to is not %q or a valid name", Me)
	case hm.Outgoing && (hm.From != Me || hm.To == Me):
		return historyError("an outgoing message is not from %q to a contact", Me)
	case !hm.Outgoing && hm.To != Me:
		return historyError("an incoming message or notice is not to %q", Me)
	case !hm.Outgoing && !hm.Notice && hm.From == Me:
		// A notice may be from Me: an alert about this person's own devices.
		return historyError("an incoming message from %q", Me)
	case hm.Outgoing && hm.Notice:
		return historyError("a notice marked outgoing")
	case len(hm.Text) > MaxTextSize || !utf8.ValidString(hm.Text):
		return historyError("message text longer than %d bytes or not UTF-8", MaxTextSize)
	case hm.Text == "" && len(hm.Attachments) == 0:
		return historyError("a message with neither text nor attachments")
	case !validSubject(hm.Subject):
		return historyError("message subject longer than %d bytes or with control characters", MaxSubjectSize)
	case hm.ReplyTo != "" && !validMessageID(hm.ReplyTo):
		return historyError("message reply-to is not 16 lowercase hex digits")
	case !validHistoryTime(hm.Time) || !validHistoryTime(hm.Received):
		return historyError("message time out of range")
	case (hm.Unsent || hm.SendError != "") && !hm.Outgoing:
		return historyError("a send state on a message that is not outgoing")
	case len(hm.SendError) > maxSendErrorSize || !utf8.ValidString(hm.SendError):
		return historyError("message send error longer than %d bytes or not UTF-8", maxSendErrorSize)
	case len(hm.Attachments) > MaxAttachments:
		return historyError("%d attachments on a message, at most %d", len(hm.Attachments), MaxAttachments)
	case len(hm.Attachments) > 0 && hm.Notice:
		return historyError("attachments on a notice")
	}
	for i := range hm.Attachments {
		a := &hm.Attachments[i]
		switch {
		case len(a.Blob) != 32 || len(a.Key) != attachKeySize || len(a.Digest) != 32:
			return historyError("attachment %d: blob ID, key and digest must be 32 bytes each", i+1)
		case !validAttachmentName(a.Name):
			return historyError("attachment %d: name longer than %d bytes or not UTF-8", i+1, MaxAttachmentNameSize)
		case !validMediaType(a.MediaType):
			return historyError("attachment %d: media type longer than %d bytes or not printable ASCII", i+1, MaxMediaTypeSize)
		case !validSizes(a.Size, a.CipherSize):
			return historyError("attachment %d: sizes do not fit the chunk format", i+1)
		}
	}
	return nil
}

// ---- reading ----

// decodeStrict decodes one JSON value into v: unknown fields and data
// after the value are refused.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("data after the value")
	}
	return nil
}

// decodeConversations decodes and checks the data of a record of type
// 0x04.
func decodeConversations(data []byte) ([]historyConversation, error) {
	var r historyConversations
	if err := decodeStrict(data, &r); err != nil {
		return nil, &historyErr{"conversations record does not decode: " + jsonReason(err)}
	}
	if r.V != historyVersion {
		return nil, &historyErr{fmt.Sprintf("conversations record of version %d (this version reads %d)", r.V, historyVersion)}
	}
	if n := len(r.Conversations); n < 1 || n > historyBatch {
		return nil, &historyErr{fmt.Sprintf("%d conversations in a record, 1 to %d", n, historyBatch)}
	}
	for i := range r.Conversations {
		if err := r.Conversations[i].check(); err != nil {
			return nil, invalidHistory(fmt.Sprintf("conversation %d", i+1), err)
		}
	}
	return r.Conversations, nil
}

// decodeMessages decodes and checks the data of a record of type 0x05.
func decodeMessages(data []byte) ([]historyMessage, error) {
	var r historyMessages
	if err := decodeStrict(data, &r); err != nil {
		return nil, &historyErr{"messages record does not decode: " + jsonReason(err)}
	}
	if r.V != historyVersion {
		return nil, &historyErr{fmt.Sprintf("messages record of version %d (this version reads %d)", r.V, historyVersion)}
	}
	if n := len(r.Messages); n < 1 || n > historyBatch {
		return nil, &historyErr{fmt.Sprintf("%d messages in a record, 1 to %d", n, historyBatch)}
	}
	for i := range r.Messages {
		if err := r.Messages[i].check(); err != nil {
			return nil, invalidHistory(fmt.Sprintf("message %d", i+1), err)
		}
	}
	return r.Messages, nil
}

// jsonReason words a JSON decoding error without quoting the data.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q of the wrong type", te.Field)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "cut short"
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return "unknown field"
	}
	return "malformed"
}

// historyStats counts what an import of a history stored.
type historyStats struct {
	Conversations int // conversations made
	Messages      int // messages stored
	Skipped       int // messages already stored (the same ID)
}

// historyImporter stores history records in one transaction. People are
// found by identity fingerprint among this device's persons; devices by
// device ID among theirs.
type historyImporter struct {
	persons map[string]*store.Person // fingerprint hex -> person, made at the first record
	devices map[string][]byte        // person record ID || device ID -> device record ID
	stats   historyStats
}

// load reads the persons and devices, once: after contacts were imported
// in the same transaction.
func (h *historyImporter) load(t *tx) error {
	if h.persons != nil {
		return nil
	}
	ps, err := t.Persons()
	if err != nil {
		return err
	}
	h.persons = make(map[string]*store.Person, len(ps))
	for _, p := range ps {
		h.persons[hex.EncodeToString(p.Identity)] = p
	}
	ds, err := t.Devices()
	if err != nil {
		return err
	}
	h.devices = make(map[string][]byte, len(ds))
	for _, d := range ds {
		h.devices[string(d.Person)+string(d.DeviceID)] = d.ID
	}
	return nil
}

// record stores one history record, the n-th of its stream (counted from
// 1, to name it in errors); it reports whether rec was a history record
// (types 0x04 and 0x05; 0x06 and unknown types are the caller's to skip).
func (h *historyImporter) record(t *tx, n int, rec backup.Record) (bool, error) {
	where := fmt.Sprintf("record %d", n)
	switch rec.Type {
	case backup.RecordConversations:
		convs, err := decodeConversations(rec.Data)
		if err != nil {
			return true, invalidHistory(where, err)
		}
		if err := h.load(t); err != nil {
			return true, err
		}
		for i := range convs {
			if err := h.conversation(t, &convs[i]); err != nil {
				return true, err
			}
		}
		return true, nil
	case backup.RecordMessages:
		msgs, err := decodeMessages(rec.Data)
		if err != nil {
			return true, invalidHistory(where, err)
		}
		if err := h.load(t); err != nil {
			return true, err
		}
		for i := range msgs {
			if err := h.message(t, &msgs[i]); err != nil {
				return true, err
			}
		}
		return true, nil
	}
	return false, nil
}

// conversation makes the direct conversation with the person hc names,
// if this device knows them and has none yet. A conversation with someone
// unknown here is left out; its messages are stored without one.
func (h *historyImporter) conversation(t *tx, hc *historyConversation) error {
	p := h.persons[hc.Peer]
	if p == nil {
		return nil
	}
	id := t.DirectConversationID(p.ID)
	c, err := t.Conversation(id)
	if err != nil {
		return err
	}
	if c != nil {
		// Made by the contacts import, or there already: it keeps the
		// earlier creation time.
		if hc.Created.Before(c.Created) {
			c.Created = hc.Created
			return t.PutConversation(c)
		}
		return nil
	}
	h.stats.Conversations++
	return t.PutConversation(&store.Conversation{ID: id, Type: store.Direct, Person: p.ID, Title: hc.Title, Created: hc.Created})
}

// message stores hm unless a message with its ID is stored already.
func (h *historyImporter) message(t *tx, hm *historyMessage) error {
	m := &store.Message{
		ID: hm.ID, From: hm.From, To: hm.To, Text: hm.Text, Subject: hm.Subject,
		Time: hm.Time.UTC(), Received: hm.Received.UTC(), Outgoing: hm.Outgoing, Notice: hm.Notice,
		SendError: hm.SendError,
	}
	if !m.Outgoing && !m.Notice {
		// History is the past: read, as the migration to schema 4 marks
		// what a home held (the record does not carry read state).
		m.Read, m.ReadAt = true, m.Received
	}
	if hm.Unsent && m.SendError == "" {
		m.SendError = unsentNote
	}
	if p := h.persons[hm.Peer]; p != nil && hm.Peer != "" {
		// The names are this device's: the person may be named otherwise here.
		c, err := t.DirectConversation(p.ID, m.Received)
		if err != nil {
			return err
		}
		m.Conversation = c.ID
		switch {
		case m.Outgoing:
			m.To = p.Name
		case m.From != Me: // an alert about this person's devices stays from Me
			m.From = p.Name
		}
		if hm.SenderDevice != "" {
			dev, _ := hex.DecodeString(hm.SenderDevice)
			m.Sender = h.devices[string(p.ID)+string(dev)]
		}
	}
	if hm.ReplyTo != "" && m.Conversation != nil {
		// Kept only if it names a stored message of the same conversation,
		// as when a reply is received.
		orig, err := t.MessageByID(hm.ReplyTo)
		if err != nil {
			return err
		}
		if orig != nil && bytes.Equal(orig.Conversation, m.Conversation) {
			m.ReplyTo = hm.ReplyTo
		}
	}
	for _, a := range hm.Attachments {
		m.Attachments = append(m.Attachments, store.Attachment{
			Blob: a.Blob, Key: a.Key, Digest: a.Digest, PlainSize: a.Size, CipherSize: a.CipherSize,
			Name: a.Name, MediaType: a.MediaType,
		})
	}
	stored, err := t.AddMessage(m)
	if err != nil {
		return err
	}
	if stored {
		h.stats.Messages++
	} else {
		h.stats.Skipped++
	}
	return nil
}

// importHistory reads history records from r until io.EOF and stores
// them in one transaction: on any error (a record that does not decode or
// breaks a limit, a read error, ctx) nothing is stored. Records of other
// types are skipped. A message whose ID is stored already is skipped, so
// importing the same history twice stores it once.
func (c *Client) importHistory(ctx context.Context, r recordReader) error {
	_, err := c.importHistoryStats(ctx, r)
	return err
}

func (c *Client) importHistoryStats(ctx context.Context, r recordReader) (historyStats, error) {
	h := &historyImporter{}
	err := c.st.update(func(t *tx) error {
		for n := 1; ; n++ {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec, err := r.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := h.record(t, n, rec); err != nil {
				return err
			}
		}
	})
	if err != nil {
		return historyStats{}, err
	}
	return h.stats, nil
}
