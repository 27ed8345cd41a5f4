package fhir

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"
)

// The FHIR R4 JSON this package writes and reads, as Go structs. The field
// order of each struct is the member order of the canonical encoding (SPEC
// section 15.3), so it must not change; every member this format has is
// here, so that a parser with DisallowUnknownFields refuses any other.

type bundle struct {
	ResourceType string     `json:"resourceType"` // "Bundle"
	Type         string     `json:"type"`         // "collection"
	Timestamp    string     `json:"timestamp"`    // instant, = signature.when
	Entry        []entry    `json:"entry"`
	Signature    *signature `json:"signature"`
}

type entry struct {
	FullURL  string         `json:"fullUrl"` // "urn:uuid:" + entryUUID(message ID)
	Resource *communication `json:"resource"`
}

type communication struct {
	ResourceType string           `json:"resourceType"` // "Communication"
	Identifier   []identifier     `json:"identifier"`   // one: the message ID
	Status       string           `json:"status"`       // "completed"
	Priority     string           `json:"priority"`     // "routine" or "urgent"
	Subject      *reference       `json:"subject,omitempty"`
	Topic        *codeableConcept `json:"topic,omitempty"`
	Encounter    *reference       `json:"encounter,omitempty"`
	Sent         string           `json:"sent,omitempty"`
	Received     string           `json:"received,omitempty"`
	Recipient    []reference      `json:"recipient,omitempty"`
	Sender       *reference       `json:"sender,omitempty"`
	Payload      []payload        `json:"payload,omitempty"`
	Note         []annotation     `json:"note,omitempty"`
}

type identifier struct {
	System string `json:"system"`
	Value  string `json:"value"`
}

type reference struct {
	Type       string      `json:"type,omitempty"`
	Identifier *identifier `json:"identifier,omitempty"`
	Display    string      `json:"display,omitempty"`
}

type codeableConcept struct {
	Text string `json:"text"`
}

// payload holds exactly one of its two members.
type payload struct {
	ContentString     string      `json:"contentString,omitempty"`
	ContentAttachment *attachment `json:"contentAttachment,omitempty"`
}

type attachment struct {
	ContentType string `json:"contentType"`
	Data        string `json:"data,omitempty"` // absent for an empty file (FHIR has no empty strings)
	Size        uint32 `json:"size"`
	Hash        string `json:"hash"` // base64 SHA-1 of the data (R4 Attachment.hash)
	Title       string `json:"title,omitempty"`
}

type annotation struct {
	AuthorString string `json:"authorString,omitempty"`
	Time         string `json:"time,omitempty"`
	Text         string `json:"text"`
}

type signature struct {
	Type         []coding  `json:"type"`
	When         string    `json:"when"`
	Who          reference `json:"who"`
	TargetFormat string    `json:"targetFormat"`
	SigFormat    string    `json:"sigFormat"`
	Data         string    `json:"data,omitempty"` // absent in the signed bytes
}

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

// encode returns the canonical encoding of b: encoding/json's, without
// HTML escaping and without the newline json.Encoder appends. Strings were
// cleaned before (cleanText), so the only escapes are \" \\ \n \r \t and
// \u2028 \u2029.
func encode(b *bundle) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(b); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil
}

// decode parses one JSON value into a bundle, refusing members the format
// does not have and anything after the value. It does not check that the
// input is canonical: Verify re-encodes and compares.
func decode(data []byte) (*bundle, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b bundle
	if err := dec.Decode(&b); err != nil {
		return nil, malformedf("%v", jsonDetail(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformedf("data after the bundle")
	}
	return &b, nil
}

// jsonDetail keeps the parts of a JSON error that say where and what, and
// never a quoted piece of the input (it might be a message's text).
func jsonDetail(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return "JSON syntax error at byte " + strconv.FormatInt(e.Offset, 10)
	case *json.UnmarshalTypeError:
		return "wrong JSON type for " + e.Field + " at byte " + strconv.FormatInt(e.Offset, 10)
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return "truncated JSON"
	}
	// DisallowUnknownFields: `json: unknown field "name"`; a member name
	// is not content, but cap it.
	s := err.Error()
	if len(s) > 96 {
		s = s[:96] + "…"
	}
	return s
}
