package protocol

import (
	"errors"
	"fmt"
)

// Sentinels for decoding failures. Parse wraps them with a specific message.
var (
	// ErrMalformed: bytes that do not follow SPEC.md's layouts.
	ErrMalformed = errors.New("protocol: malformed")
	// ErrTooLarge: a size or count above its limit.
	ErrTooLarge = errors.New("protocol: too large")
	// ErrVersion: a version this implementation does not speak.
	ErrVersion = errors.New("protocol: unsupported version")
)

func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}

// Code is a stable, numbered error code carried in an Error frame. The
// numbers never change meaning; SPEC.md lists them all.
type Code uint16

// Error codes of version 1.
const (
	CodeMalformed           Code = 1  // a frame that does not parse
	CodeUnknownFrame        Code = 2  // a frame type this relay does not know
	CodeFrameTooLarge       Code = 3  // a frame above MaxFrameSize (also WebSocket close 1009)
	CodeVersion             Code = 4  // unsupported protocol version
	CodeAuthRequired        Code = 10 // the request needs an authenticated device
	CodeAuthFailed          Code = 11 // the signature over the challenge did not verify
	CodeEnrollmentRefused   Code = 12 // enrolment closed, or the invite code is unknown or used
	CodeDeviceRevoked       Code = 13 // the device was revoked by the operator
	CodeAlreadyAuthed       Code = 14 // Auth or Enroll on an authenticated connection
	CodeUnknownDevice       Code = 15 // Auth for a device the relay does not know
	CodeUnknownMailbox      Code = 20 // an owner operation on a mailbox that does not exist
	CodeNotOwner            Code = 21 // the mailbox belongs to another device
	CodeUnknownCapability   Code = 22 // no such send capability for that mailbox
	CodeCapabilityRevoked   Code = 23 // the recipient revoked this capability (blocked)
	CodeMailboxLimit        Code = 24 // MaxMailboxesPerDevice reached
	CodeCapabilityLimit     Code = 25 // MaxCapabilitiesPerMailbox reached
	CodeBadEnvelope         Code = 30 // envelope size not a bucket, or bad version byte
	CodeQueueFull           Code = 31 // the mailbox holds MaxQueueDepth envelopes
	CodeNoBundle            Code = 40 // the mailbox owner has published no prekey bundle
	CodePrekeyLimit         Code = 41 // too many one-time prekeys
	CodeRateLimited         Code = 50 // the connection exceeded its frame rate
	CodeTooManyConnections  Code = 51 // the relay is at its connection limit
	CodeBlobTooLarge        Code = 70 // a blob above the relay's maximum size
	CodeBlobQuota           Code = 71 // the device's blob quota is used up
	CodeUnknownBlob         Code = 72 // no such blob (or it expired)
	CodeBlobOffset          Code = 73 // an upload offset that is not the committed length
	CodeBlobIncomplete      Code = 74 // a download of a blob whose upload has not finished
	CodeBlobToken           Code = 75 // a missing or wrong upload token
	CodeBlobSize            Code = 76 // a blob size that is not a whole number of chunks, or an upload past it
	CodeUnknownIdentity     Code = 90 // no device list is published for that identity
	CodeBadDeviceList       Code = 91 // a device list that breaks a rule or whose signature does not verify
	CodeStaleDeviceList     Code = 92 // a device list version not above the stored one
	CodeNotInDeviceList     Code = 93 // the publishing device is not in the list it publishes, or of another identity
	CodeNoTransparencyLog   Code = 94 // this relay keeps no transparency log (no key or no store for it)
	CodeUnknownDirectory    Code = 95 // FetchDirectory names a log key with no logged directory
	CodeStaleDirectory      Code = 96 // PublishDirectory: the version is not above the logged one
	CodeDirectoryCapability Code = 97 // PublishDirectory: not the organisation's publishing capability
	CodeUnknownFanout       Code = 80 // no such fan-out list
	CodeFanoutCapability    Code = 81 // a wrong send or admin capability of a fan-out list
	CodeFanoutLimit         Code = 82 // a fan-out limit: lists per device, entries per list, bytes per send
	CodeInternal            Code = 60 // the relay failed; nothing was changed
	CodeShuttingDown        Code = 61 // the relay is draining; retry elsewhere or later
	CodeStorageFull         Code = 62 // the relay's disk is full; nothing was stored; retry later
)

// Codes 26–28 are CodeCapabilityRevoked with a reason
// (RevokeCapability.Reason): the capability's owner restricted the sender,
// and the client says how in its own words.
const (
	CodeRestrictedService Code = 26 // restricted from the whole service (RevokeRestrictedService)
	CodeRestrictedNew     Code = 27 // restricted from sending new messages to a team (RevokeRestrictedNew)
	CodeRestrictedReplies Code = 28 // restricted from replying in a team's conversations (RevokeRestrictedReplies)
)

// Error codes of claim spaces (claim.go).
const (
	CodeUnknownClaimSpace Code = 83 // no claim space with that ID (never created, or deleted)
	CodeClaimCapability   Code = 84 // the write or admin capability does not match the claim space's
	CodeClaimLimit        Code = 85 // MaxClaimSpacesPerDevice or MaxClaimsPerSpace reached, or a register's version is at its maximum
	CodeClaimConflict     Code = 86 // reserved: a lost compare-and-set is answered ClaimState{OK: false}, not an error
)

var codeNames = map[Code]string{
	CodeMalformed:           "malformed frame",
	CodeUnknownFrame:        "unknown frame type",
	CodeFrameTooLarge:       "frame too large",
	CodeVersion:             "unsupported version",
	CodeAuthRequired:        "authentication required",
	CodeAuthFailed:          "authentication failed",
	CodeEnrollmentRefused:   "enrolment refused",
	CodeDeviceRevoked:       "device revoked",
	CodeAlreadyAuthed:       "already authenticated",
	CodeUnknownDevice:       "unknown device",
	CodeUnknownMailbox:      "unknown mailbox",
	CodeNotOwner:            "not the mailbox owner",
	CodeUnknownCapability:   "unknown capability",
	CodeCapabilityRevoked:   "capability revoked",
	CodeMailboxLimit:        "mailbox limit reached",
	CodeCapabilityLimit:     "capability limit reached",
	CodeBadEnvelope:         "bad envelope",
	CodeQueueFull:           "mailbox full",
	CodeNoBundle:            "no prekey bundle",
	CodePrekeyLimit:         "prekey limit reached",
	CodeRateLimited:         "rate limited",
	CodeTooManyConnections:  "too many connections",
	CodeBlobTooLarge:        "blob too large",
	CodeBlobQuota:           "blob quota exceeded",
	CodeUnknownBlob:         "unknown blob",
	CodeBlobOffset:          "wrong upload offset",
	CodeBlobIncomplete:      "blob incomplete",
	CodeBlobToken:           "bad upload token",
	CodeBlobSize:            "bad blob size",
	CodeUnknownIdentity:     "unknown identity",
	CodeBadDeviceList:       "bad device list",
	CodeStaleDeviceList:     "stale device list",
	CodeNotInDeviceList:     "device not in the list",
	CodeNoTransparencyLog:   "no transparency log",
	CodeUnknownDirectory:    "unknown directory",
	CodeStaleDirectory:      "stale directory",
	CodeDirectoryCapability: "wrong directory capability",
	CodeRestrictedService:   "restricted from the service",
	CodeRestrictedNew:       "restricted from new messages",
	CodeRestrictedReplies:   "restricted from replies",
	CodeUnknownClaimSpace:   "unknown claim space",
	CodeClaimCapability:     "wrong claim capability",
	CodeClaimLimit:          "claim limit reached",
	CodeClaimConflict:       "claim conflict",
	CodeUnknownFanout:       "unknown fan-out list",
	CodeFanoutCapability:    "wrong fan-out capability",
	CodeFanoutLimit:         "fan-out limit reached",
	CodeInternal:            "internal relay error",
	CodeShuttingDown:        "relay shutting down",
	CodeStorageFull:         "relay storage full",
}

// String returns the code's fixed name.
func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Error is a refusal from the relay: a numbered code and a short message
// that never holds content, keys or whole IDs.
type Error struct {
	Code Code
	Msg  string
}

func (e *Error) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("relay refused (%d %s)", e.Code, e.Code)
	}
	return fmt.Sprintf("relay refused (%d %s): %s", e.Code, e.Code, e.Msg)
}

// Is makes errors.Is(err, &Error{Code: c}) match on the code alone.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// IsCode reports whether err is (or wraps) a relay Error with code c.
func IsCode(err error, c Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == c
}
