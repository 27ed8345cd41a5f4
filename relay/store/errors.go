package store

import (
	"errors"
	"fmt"

	"github.com/postern/postern/protocol"
)

// Refusals: a call that returns one of these changed nothing.
var (
	ErrUnknownDevice     = errors.New("store: unknown device")
	ErrDeviceRevoked     = errors.New("store: device revoked")
	ErrDeviceSuspended   = errors.New("store: device suspended")
	ErrUnknownInvite     = errors.New("store: unknown invite")
	ErrUnknownAccount    = errors.New("store: unknown account")
	ErrAccountLabel      = errors.New("store: invalid account label")
	ErrEnrollmentRefused = errors.New("store: invite unknown, used or expired")
	ErrUnknownMailbox    = errors.New("store: unknown mailbox")
	ErrNotOwner          = errors.New("store: not the mailbox owner")
	ErrMailboxLimit      = errors.New("store: mailbox limit reached")
	ErrUnknownCapability = errors.New("store: unknown capability")
	ErrCapabilityRevoked = errors.New("store: capability revoked")
	ErrCapabilityLimit   = errors.New("store: capability limit reached")
	ErrQueueFull         = errors.New("store: mailbox queue full")
	ErrNoBundle          = errors.New("store: no prekey bundle")
	ErrPrekeyLimit       = errors.New("store: one-time prekey limit reached")
	ErrUnknownBlob       = errors.New("store: unknown blob")
	ErrBlobQuota         = errors.New("store: blob quota exceeded")
	ErrBlobOffset        = errors.New("store: blob committed length moved")
)

// Failures of the store itself.
var (
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrSchemaTooNew: the data was written by a newer relay.
	ErrSchemaTooNew = errors.New("store: schema version is newer than this relay supports")
	// ErrDamaged: the data on disk is damaged (truncated, overwritten,
	// inconsistent) and was not used. Restarting will not help; restoring
	// a backup will.
	ErrDamaged = errors.New("store: database file is damaged")
	// ErrStorageFull: a write failed because the file system is full (or
	// the user's disk quota is used up). Nothing was changed; writes that
	// free space still work, and the store recovers when space returns.
	ErrStorageFull = errors.New("store: storage full")
)

// IsRefusal reports whether err is one of the refusal sentinels, as opposed
// to a failure of the store.
func IsRefusal(err error) bool {
	for _, r := range refusals {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

var refusals = []error{
	ErrUnknownDevice, ErrDeviceRevoked, ErrDeviceSuspended, ErrUnknownInvite,
	ErrUnknownAccount, ErrAccountLabel,
	ErrEnrollmentRefused, ErrUnknownMailbox,
	ErrNotOwner, ErrMailboxLimit, ErrUnknownCapability, ErrCapabilityRevoked,
	ErrCapabilityLimit, ErrQueueFull, ErrNoBundle, ErrPrekeyLimit,
	ErrUnknownBlob, ErrBlobQuota, ErrBlobOffset,
}

// RevokedError refuses a capability revoked with a reason other than
// protocol.RevokeBlocked; it matches ErrCapabilityRevoked with errors.Is.
type RevokedError struct{ Reason protocol.RevokeReason }

func (e *RevokedError) Error() string {
	return fmt.Sprintf("%v (reason %d)", ErrCapabilityRevoked, e.Reason)
}

func (e *RevokedError) Unwrap() error { return ErrCapabilityRevoked }

// detailError carries a specific message while matching a sentinel with
// errors.Is, so that a message reads "account label: 70 bytes, want 1 to
// 64" rather than a chain of prefixes.
type detailError struct {
	msg      string
	sentinel error
}

func (e *detailError) Error() string { return e.msg }
func (e *detailError) Unwrap() error { return e.sentinel }

// labelError is an ErrAccountLabel saying what is wrong with a label
// (never the label itself).
func labelError(format string, args ...any) error {
	return &detailError{msg: "account label: " + fmt.Sprintf(format, args...), sentinel: ErrAccountLabel}
}
