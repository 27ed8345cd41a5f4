// Package store defines what the relay keeps and the interface its storage
// backends implement. The default backend is relay/store/bboltstore.
//
// A Store keeps devices, mailboxes, send-capability hashes, invite-code
// hashes, prekey bundles, one-time prekeys and envelopes, and the account
// labels an operator gave devices and invites (account.go), and claim
// spaces (claim.go). A KTStore
// (kt.go) also keeps signed device lists and the key-transparency log. It
// never sees a capability token, an invite code or anything a client
// encrypted in the clear: callers hand it hashes and opaque bytes.
//
// # Durability
//
// Every method that changes state returns only after the change is durable
// (fsynced), so the relay may acknowledge it to a client. Backends are
// expected to group concurrent writes into one commit.
//
// # Refusals
//
// Methods refuse with the sentinels in errors.go (ErrUnknownCapability,
// ErrQueueFull, ...). A refused call changes nothing.
package store

import (
	"context"
	"time"

	"github.com/postern/postern/protocol"
)

// Envelope is one stored envelope: exactly what the relay keeps of a send.
// The padded size bucket is len(Data).
type Envelope struct {
	Mailbox  protocol.MailboxID
	ID       protocol.EnvelopeID
	Seq      uint64    // insertion order; assigned by the store on Append
	Received time.Time // coarse: truncated to protocol.TimeGranularity
	Expires  time.Time
	Data     []byte // the ciphertext envelope, one of protocol.Buckets bytes
}

// Device is an enrolled device.
type Device struct {
	ID        protocol.DeviceID
	PublicKey []byte    // the encoded keys.SigningPublicKey
	Enrolled  time.Time // the UTC day of enrolment (coarse)
	LastSeen  time.Time // the UTC day it last authenticated (coarse); zero if never recorded
	Revoked   bool      // for good: it can no longer authenticate, its data is deleted
	Suspended bool      // until restored: it cannot authenticate, its data is kept
	// Account is the label of the account the device belongs to ("" for
	// none): the label of the invite it enrolled with, or one an admin
	// assigned. Set by the store, never taken from a client.
	Account string
}

// InviteHash is SHA-256 of a label and an invite code: what the store keeps.
type InviteHash [32]byte

// CapabilityState tells whether a capability hash is usable.
type CapabilityState uint8

const (
	CapabilityLive    CapabilityState = 1
	CapabilityRevoked CapabilityState = 2
)

// Store is a relay's storage. Implementations are safe for concurrent use.
type Store interface {
	FanoutStore // fanout.go
	// EnrollDevice stores d. With invite non-nil, the invite must exist,
	// be unused and unexpired at now; it is marked used in the same
	// transaction, and the device belongs to the invite's account (if it
	// has one). d.Account is ignored. Enrolling a device that already
	// exists changes nothing and returns the stored record (no invite is
	// consumed), or ErrDeviceRevoked if it was revoked.
	EnrollDevice(ctx context.Context, d Device, invite *InviteHash, now time.Time) (Device, error)
	// Device returns the device, or ErrUnknownDevice.
	Device(ctx context.Context, id protocol.DeviceID) (Device, error)
	// RevokeDevice marks a device revoked (it can no longer authenticate
	// or enrol again) and, in the same transaction, deletes its mailboxes
	// with their queued envelopes and capabilities, its prekey bundle and
	// its one-time prekeys. Revoking a revoked device again is a no-op;
	// an unknown one is ErrUnknownDevice.
	RevokeDevice(ctx context.Context, id protocol.DeviceID) error
	// SuspendDevice sets (suspended true) or clears the device's suspended
	// flag; a suspended device cannot authenticate but keeps its data.
	// ErrUnknownDevice, or ErrDeviceRevoked for a revoked device.
	SuspendDevice(ctx context.Context, id protocol.DeviceID, suspended bool) error
	// DeviceSeen records now's UTC day as the device's last-seen day.
	// Callers write it at most once a day per device.
	DeviceSeen(ctx context.Context, id protocol.DeviceID, now time.Time) error
	// Devices returns every enrolled device (revoked ones included),
	// ordered by ID.
	Devices(ctx context.Context) ([]Device, error)
	// AddInvites stores invite hashes valid until expires, bound to
	// account ("" for none; otherwise a label that CheckAccountLabel
	// accepts, else ErrAccountLabel): a device enrolled with one of them
	// belongs to that account.
	AddInvites(ctx context.Context, hashes []InviteHash, expires time.Time, account string) error
	// RevokeInvite deletes an invite so that it can no longer enrol a
	// device, and reports whether it had been used. ErrUnknownInvite if
	// there is no such invite.
	RevokeInvite(ctx context.Context, h InviteHash) (used bool, err error)

	// AssignAccount makes the devices belong to account, or to none with
	// account "", in one transaction, and returns each one's previous
	// label. Any unknown device is ErrUnknownDevice, a bad label
	// ErrAccountLabel; then nothing changes. Revoked devices may be
	// assigned too (their records are kept).
	AssignAccount(ctx context.Context, ids []protocol.DeviceID, account string) (previous []string, err error)
	// AccountDevices returns the devices of an account (revoked ones
	// included), ordered by ID; none for an unknown label.
	AccountDevices(ctx context.Context, account string) ([]Device, error)
	// Accounts summarizes every account that has a device or an invite
	// unused and unexpired at now, ordered by label.
	Accounts(ctx context.Context, now time.Time) ([]Account, error)
	// RevokeAccount offboards an account in one transaction: each of its
	// devices not yet revoked is revoked as RevokeDevice does (with its
	// data), and the account's unused invites are deleted (expired ones
	// included), so that no new device can join it with one. It returns
	// the devices it revoked and how many invites it deleted.
	// ErrUnknownAccount if the account has no device and no unused
	// invite.
	RevokeAccount(ctx context.Context, account string) (revoked []protocol.DeviceID, invites int, err error)
	// SuspendAccount sets (suspended true) or clears the suspended flag of
	// every device of the account that is not revoked, in one
	// transaction, and returns the devices whose flag changed.
	// ErrUnknownAccount if the account has no device.
	SuspendAccount(ctx context.Context, account string, suspended bool) (changed []protocol.DeviceID, err error)

	// CreateMailbox records a new mailbox owned by owner, refusing with
	// ErrMailboxLimit past protocol.MaxMailboxesPerDevice.
	CreateMailbox(ctx context.Context, owner protocol.DeviceID, id protocol.MailboxID) error
	// MailboxOwner returns the owner, or ErrUnknownMailbox.
	MailboxOwner(ctx context.Context, id protocol.MailboxID) (protocol.DeviceID, error)
	// DeleteMailbox deletes a mailbox, its capabilities and its queue.
	DeleteMailbox(ctx context.Context, owner protocol.DeviceID, id protocol.MailboxID) error
	// AddCapability registers a live capability hash for a mailbox the
	// owner owns (ErrCapabilityLimit past MaxCapabilitiesPerMailbox live
	// ones). Adding a live hash again is a no-op; re-adding a revoked one
	// makes it live again (the owner unblocks a sender).
	AddCapability(ctx context.Context, owner protocol.DeviceID, mb protocol.MailboxID, h protocol.CapabilityHash) error
	// RevokeCapability marks a hash revoked for reason (recording it if
	// unknown, so that a sender presenting it later is told it was
	// blocked, or restricted and how).
	RevokeCapability(ctx context.Context, owner protocol.DeviceID, mb protocol.MailboxID, h protocol.CapabilityHash, reason protocol.RevokeReason) error
	// CheckCapability returns nil for a live capability of mb, else
	// ErrUnknownCapability (also when mb does not exist),
	// ErrCapabilityRevoked (revoked as protocol.RevokeBlocked) or a
	// *RevokedError with the reason (which also matches
	// ErrCapabilityRevoked).
	CheckCapability(ctx context.Context, mb protocol.MailboxID, h protocol.CapabilityHash) error

	// PublishPrekeys replaces the device's bundle (unless bundle is
	// empty) and appends one-time prekeys, refusing with ErrPrekeyLimit
	// (and storing nothing) past protocol.MaxStoredPrekeys.
	PublishPrekeys(ctx context.Context, dev protocol.DeviceID, bundle []byte, prekeys [][]byte) error
	// FetchBundle checks the capability, then returns the mailbox owner's
	// bundle and removes and returns its oldest one-time prekey (nil if
	// none is left). ErrNoBundle if the owner published none.
	FetchBundle(ctx context.Context, mb protocol.MailboxID, h protocol.CapabilityHash) (bundle, prekey []byte, err error)
	// PrekeyStatus counts the device's one-time prekeys.
	PrekeyStatus(ctx context.Context, dev protocol.DeviceID) (count int, hasBundle bool, err error)

	// Append checks the capability and the queue depth (ErrQueueFull) and
	// stores e durably, assigning e.Seq and e.ID (any ID given is
	// replaced). It returns the stored envelope.
	Append(ctx context.Context, e Envelope, h protocol.CapabilityHash) (Envelope, error)
	// Range returns up to limit envelopes of mb with Seq > after, oldest
	// first.
	Range(ctx context.Context, mb protocol.MailboxID, after uint64, limit int) ([]Envelope, error)
	// Ack deletes envelopes of mb by ID; unknown IDs (or IDs of another
	// mailbox) are ignored. It returns how many were deleted.
	Ack(ctx context.Context, mb protocol.MailboxID, ids []protocol.EnvelopeID) (int, error)
	// Purge deletes up to max envelopes whose expiry is at or before now,
	// in one transaction, and returns how many it deleted.
	Purge(ctx context.Context, now time.Time, max int) (int, error)

	ClaimStore // claim.go

	// Close waits for queued writes to commit and closes the store.
	Close() error
}
