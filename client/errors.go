package client

import (
	"errors"
	"fmt"
	"time"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// Sentinel errors. Test with errors.Is: returned errors often wrap one of
// these with a specific message. No error of this package contains message
// text, key material, capability tokens or whole IDs.
var (
	// ErrExists: Init on a home directory that already holds a Postern
	// key file or store.
	ErrExists = errors.New("client: home directory is already initialised")
	// ErrNotInitialised: Open or Dial on a home directory without a key file.
	ErrNotInitialised = errors.New("client: home directory is not initialised (run init first)")
	// ErrWrongPassphrase: the key file did not open. A wrong passphrase and
	// a tampered key file look the same. It is identity.ErrWrongPassphrase.
	ErrWrongPassphrase = identity.ErrWrongPassphrase
	// ErrEmptyPassphrase: Init with an empty passphrase.
	ErrEmptyPassphrase = errors.New("client: the passphrase must not be empty")
	// ErrInsecureRelay: a relay URL that is not wss://, or ws:// to a host
	// that is not loopback.
	ErrInsecureRelay = errors.New("client: relay URL must be wss:// (ws:// only for loopback hosts)")
	// ErrInvalidRelayURL: a relay URL that does not parse or has a query,
	// fragment or user info.
	ErrInvalidRelayURL = errors.New("client: invalid relay URL")
	// ErrInvalidName: a name that is empty, longer than MaxNameSize bytes,
	// not UTF-8, or holds control characters.
	ErrInvalidName = errors.New("client: invalid name")
	// ErrUnknownContact: no contact has that name.
	ErrUnknownContact = errors.New("client: unknown contact")
	// ErrContactExists: Accept with a name already used by a contact, or an
	// invitation from a person who already is a contact.
	ErrContactExists = errors.New("client: contact already exists")
	// ErrBlocked: the recipient revoked the capability this client sends
	// with. The returned error reads "NAME no longer accepts messages from
	// you" and matches ErrBlocked.
	ErrBlocked = errors.New("client: the contact no longer accepts messages from you")
	// ErrTooLong: a message text above MaxTextSize bytes.
	ErrTooLong = errors.New("client: message text is too long")
	// ErrInvalidText: an empty message text, or one that is not UTF-8.
	ErrInvalidText = errors.New("client: message text is empty or not UTF-8")
	// ErrReplyTo: a reply to a message that is not in the conversation it
	// is sent to (or not stored at all). Nothing is sent.
	ErrReplyTo = errors.New("client: the message replied to is not in this conversation")
	// ErrInvalidSubject: a subject longer than MaxSubjectSize bytes, not
	// UTF-8, or with control characters. Nothing is sent.
	ErrInvalidSubject = errors.New("client: invalid message subject")
	// ErrNoMessage: Message with an ID that is not in the store.
	ErrNoMessage = errors.New("client: no such message")
	// ErrClosed: the Client was closed.
	ErrClosed = errors.New("client: closed")
	// ErrOtherRelay was returned for an invitation made on a relay other
	// than this client's.
	//
	// Deprecated: never returned. An introduction names the accepter's
	// relay (content type 0x10), so contacts may be on different relays.
	ErrOtherRelay = errors.New("client: the invitation is for a different relay")
	// ErrIdentityMismatch: the relay returned a bundle whose identity is not
	// the one the invitation names. The relay (or whoever handed out the
	// invitation's mailbox) is lying; nothing was added.
	ErrIdentityMismatch = errors.New("client: the invitation's identity does not match the published keys")

	// ErrDecrypt is the one outcome of an envelope that does not open:
	// wrong key, tampering, truncation, bad padding or a content that does
	// not parse. Such envelopes are logged without content, counted in
	// Stats.Dropped, acknowledged and dropped.
	ErrDecrypt = errors.New("client: envelope did not decrypt")
	// ErrUnknownSender: an envelope that decrypted but whose sender device
	// is not a contact (or is blocked, or wrote to another contact's
	// mailbox). Dropped like ErrDecrypt.
	ErrUnknownSender = errors.New("client: envelope from an unknown sender")
	// ErrBadSignature: the sender's signature inside the envelope did not verify.
	ErrBadSignature = errors.New("client: envelope signature did not verify")
	// ErrInvitationUsed: an introduction for an invitation that was already
	// used (invitations are single-use) or that this client never made.
	ErrInvitationUsed = errors.New("client: invitation unknown or already used")
	// ErrInvitationSpent: the invitation was already used by someone else,
	// or withdrawn: Accept finds it refused by the relay, or the inviter
	// answered the introduction with a refusal, or the relay refuses the
	// invitation's capability. The error names the contact where there is
	// one ("NAME's invitation was already used...") and matches
	// ErrInvitationSpent. Ask for a new invitation.
	ErrInvitationSpent = errors.New("client: the invitation was already used or withdrawn; ask for a new one")
	// ErrStalePrekey: starting a session, the relay served a signed prekey
	// older than MaxSignedPrekeyAge: the contact's device has not been
	// online to rotate it, or the relay is replaying an old bundle. Nothing
	// was sent. Matches ErrStalePrekey; the error names the contact.
	ErrStalePrekey = errors.New("client: the contact's published keys are out of date")
	// ErrNoPrekey: no secret for that prekey ID on this device: never
	// made, a one-time prekey already consumed, or a replaced last-resort
	// prekey past its grace period.
	ErrNoPrekey = errors.New("client: no such prekey (unknown, consumed or expired)")
	// ErrDeviceMismatch: starting a session, the relay returned keys of a
	// device that is not the contact's known device (the one their
	// introduction or invitation named). Nothing was sent. The error reads
	// "the relay returned keys that are not NAME's known device..." and
	// matches ErrDeviceMismatch.
	ErrDeviceMismatch = errors.New("client: the relay returned keys that are not the contact's known device")

	// ErrTooManyFiles: SendFiles with no file or more than MaxAttachments.
	ErrTooManyFiles = errors.New("client: a message carries 1 to 16 files")
	// ErrInvalidAttachment: a file that cannot be attached (not a regular
	// file), or a stored attachment whose sizes or key do not fit the
	// chunk format.
	ErrInvalidAttachment = errors.New("client: invalid attachment")
	// ErrNoAttachments: SaveAttachments on a message without files.
	ErrNoAttachments = errors.New("client: the message has no attachments")
	// ErrFileExists: SaveAttachments would overwrite a file (use
	// SaveOptions.Force). The error names the path and matches
	// ErrFileExists; nothing was downloaded or changed.
	ErrFileExists = errors.New("client: file exists")
	// ErrStore: this device's local store (or the directory a file is
	// saved in) could not be written: a full disk, a read-only or failing
	// file system. The error wraps the operating system's (test for
	// syscall.ENOSPC with errors.Is). Nothing that was not stored was
	// acknowledged to the relay: it keeps the envelope and delivers it
	// again.
	ErrStore = errors.New("client: could not write to this device's storage")
	// ErrContactBlocked: Send or SendFiles to a contact this client
	// blocked. Nothing was sent; Unblock lets them write again.
	ErrContactBlocked = errors.New("client: you blocked this contact")
	// ErrFileChanged: a file changed while it was being sent, between an
	// interrupted upload and its resumption. Resuming would encrypt new
	// bytes under the key and nonces of bytes the relay may have seen
	// already, so the upload stops; nothing was sent.
	ErrFileChanged = errors.New("client: the file changed while it was being sent")
	// ErrAttachmentCorrupt: a downloaded attachment did not decrypt, was
	// truncated, or its digest is not the one in the message: the blob was
	// damaged or replaced. Nothing was saved (the .part file is removed).
	ErrAttachmentCorrupt = errors.New("client: attachment does not verify (damaged or tampered with); nothing was saved")
	// ErrRelayStorageFull matches a refusal by a relay whose disk is full
	// (protocol.CodeStorageFull): nothing was stored, and the same call can
	// succeed later, once the relay has space again.
	ErrRelayStorageFull error = &protocol.Error{Code: protocol.CodeStorageFull, Msg: "the relay's disk is full; try again later"}
)

// fileExistsError is ErrFileExists naming the path.
type fileExistsError struct{ path string }

func (e *fileExistsError) Error() string { return "client: " + e.path + " exists; not overwritten" }
func (e *fileExistsError) Unwrap() error { return ErrFileExists }

// Path is the file that exists.
func (e *fileExistsError) Path() string { return e.path }

// ErrInvalidInvitation matches every invitation parse failure. The specific
// failures below also match it, so callers may test either.
var ErrInvalidInvitation = errors.New("client: invalid invitation")

// Specific invitation failures; each also matches ErrInvalidInvitation.
var (
	// ErrInvitationPrefix: the text does not start with InvitationPrefix.
	ErrInvitationPrefix error = &invitationError{"client: invalid invitation: not a postern invitation (want " + InvitationPrefix + "...)"}
	// ErrInvitationEncoding: the text after the prefix is not base64url.
	ErrInvitationEncoding error = &invitationError{"client: invalid invitation: not base64url (was it copied whole?)"}
	// ErrInvitationTruncated: fewer bytes than the layout needs.
	ErrInvitationTruncated error = &invitationError{"client: invalid invitation: truncated (was it copied whole?)"}
	// ErrInvitationChecksum: the checksum does not match: a typo or damage.
	ErrInvitationChecksum error = &invitationError{"client: invalid invitation: checksum mismatch (mistyped or damaged)"}
	// ErrInvitationOutdated: an invitation of format 1, made by an older
	// Postern. Its secret was also the relay-visible capability, which let
	// the relay introduce a device of its own; it is no longer accepted.
	ErrInvitationOutdated error = &invitationError{"client: invalid invitation: made by an older version of Postern and no longer accepted; ask for a new invitation"}
)

type invitationError struct{ msg string }

func (e *invitationError) Error() string        { return e.msg }
func (e *invitationError) Is(target error) bool { return target == ErrInvalidInvitation }

func invitationErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidInvitation}, args...)...)
}

// blockedError is the error Send returns when the recipient revoked our
// capability. Its message names the contact, as the user must see it.
type blockedError struct{ name string }

func (e *blockedError) Error() string { return e.name + " no longer accepts messages from you" }
func (e *blockedError) Unwrap() error { return ErrBlocked }

// deviceMismatchError is ErrDeviceMismatch naming the contact.
type deviceMismatchError struct{ name string }

func (e *deviceMismatchError) Error() string {
	return "client: the relay returned keys that are not " + e.name + "'s known device; nothing was sent (compare safety numbers)"
}
func (e *deviceMismatchError) Unwrap() error { return ErrDeviceMismatch }

// invitationSpentError is ErrInvitationSpent naming the inviter. refused:
// the inviter said so (a refusal); otherwise the relay refused the
// invitation's capability, which the inviter also revokes when blocking
// someone who has not yet received their own route.
type invitationSpentError struct {
	name    string
	refused bool
}

func (e *invitationSpentError) Error() string {
	if e.refused {
		return e.name + "'s invitation was already used by someone else; nothing was delivered: ask " + e.name + " for a new invitation"
	}
	return e.name + " no longer accepts messages through the invitation you accepted (used by someone else, withdrawn, or " + e.name + " blocked you); nothing was delivered"
}
func (e *invitationSpentError) Unwrap() error { return ErrInvitationSpent }

// stalePrekeyError is ErrStalePrekey naming the contact.
type stalePrekeyError struct {
	name string
	age  time.Duration
}

func (e *stalePrekeyError) Error() string {
	return fmt.Sprintf("client: %s's keys on the relay are %d days old (limit %d): %s's device must come online to renew them; nothing was sent",
		e.name, int(e.age.Hours()/24), int(MaxSignedPrekeyAge.Hours()/24), e.name)
}
func (e *stalePrekeyError) Unwrap() error { return ErrStalePrekey }

// errSendFailed marks a relay refusal of a send or bundle fetch that has
// no sentence of its own.
var errSendFailed = errors.New("client: send")

// sendError turns the relay's refusal of a send or bundle fetch for
// contact r into the error the user must see.
func (c *Client) sendError(r *contactRecord, err error) error {
	switch {
	case protocol.IsCode(err, protocol.CodeCapabilityRevoked) && r.ViaInvitation:
		// We still write with the invitation's capability, and the inviter
		// revoked it: someone else's introduction was accepted.
		return &invitationSpentError{name: r.Person.Name}
	case protocol.IsCode(err, protocol.CodeCapabilityRevoked):
		return &blockedError{name: r.Person.Name}
	}
	if lvl, ok := restriction(err); ok {
		c.noteRestricted(r.Person.ID, lvl, holdsReplyRoute(r))
		return &RestrictedError{Level: lvl, Organisation: c.organisation}
	}
	return fmt.Errorf("%w: %w", errSendFailed, err)
}

// ErrRestricted: an organisation restricted this person's access to its
// Secure Messaging, from the whole service or from one team (the relay
// refused the send with a restriction's code). Nothing was delivered.
// The error is a *RestrictedError, whose message is the sentence to show.
var ErrRestricted = errors.New("client: access to Secure Messaging restricted")

// Restriction says how far an organisation restricted a person (protocol
// codes 26, 27 and 28; the relay enforces each as a capability revoked
// with that reason).
type Restriction uint8

const (
	// RestrictedService: from the whole service.
	RestrictedService Restriction = 1
	// RestrictedNew: from sending new messages to a team.
	RestrictedNew Restriction = 2
	// RestrictedReplies: from replying in a team's conversations.
	RestrictedReplies Restriction = 3
)

// String names the level: "service", "new" or "replies" ("" for none).
func (r Restriction) String() string {
	switch r {
	case RestrictedService:
		return "service"
	case RestrictedNew:
		return "new"
	case RestrictedReplies:
		return "replies"
	}
	return ""
}

// RestrictedError is ErrRestricted with its level and the organisation
// whose coordinator to contact. Its message is the sentence patients of
// large public health systems' portals already know, with the
// organisation's name.
type RestrictedError struct {
	Level        Restriction
	Organisation string // "" for "your provider"
	// OptIn: refused by this device, not the relay: the person was
	// restricted and has not opted in again since (Client.OptIn).
	OptIn bool
}

func (e *RestrictedError) Error() string {
	org := "your provider's"
	if e.Organisation != "" {
		org = e.Organisation + "'s"
	}
	switch e.Level {
	case RestrictedNew:
		return "You have been restricted from a Triage Group(s). You are unable to send messages to those Triage Groups."
	case RestrictedReplies:
		return "Your access to this Triage Group has been restricted. You cannot send messages to this Triage Group. " +
			"If you think your access was restricted by mistake, contact " + org + " Secure Messaging coordinator."
	}
	return "Your provider has restricted your access to Secure Messaging. If you think your access was restricted by mistake " +
		"and you want to continue using Secure Messaging, contact " + org + " Secure Messaging coordinator."
}

func (e *RestrictedError) Unwrap() error { return ErrRestricted }

// restriction is the restriction a relay refusal says, if any.
func restriction(err error) (Restriction, bool) {
	switch {
	case protocol.IsCode(err, protocol.CodeRestrictedService):
		return RestrictedService, true
	case protocol.IsCode(err, protocol.CodeRestrictedNew):
		return RestrictedNew, true
	case protocol.IsCode(err, protocol.CodeRestrictedReplies):
		return RestrictedReplies, true
	}
	return 0, false
}

// contactBlockedError is ErrContactBlocked naming the contact.
type contactBlockedError struct{ name string }

func (e *contactBlockedError) Error() string {
	return "client: you blocked " + e.name + "; nothing was sent"
}
func (e *contactBlockedError) Unwrap() error { return ErrContactBlocked }
