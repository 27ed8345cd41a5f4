package store

import "errors"

// Refusals: a call that returns one of these changed nothing.
var (
	ErrUnknownDevice     = errors.New("store: unknown device")
	ErrDeviceRevoked     = errors.New("store: device revoked")
	ErrDeviceSuspended   = errors.New("store: device suspended")
	ErrUnknownInvite     = errors.New("store: unknown invite")
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
	ErrEnrollmentRefused, ErrUnknownMailbox,
	ErrNotOwner, ErrMailboxLimit, ErrUnknownCapability, ErrCapabilityRevoked,
	ErrCapabilityLimit, ErrQueueFull, ErrNoBundle, ErrPrekeyLimit,
	ErrUnknownBlob, ErrBlobQuota, ErrBlobOffset,
}
