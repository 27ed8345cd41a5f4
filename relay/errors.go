package relay

import (
	"errors"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

var (
	// ErrClosed: the relay was closed or is shutting down.
	ErrClosed = errors.New("relay: closed")
	// ErrConfig: the configuration is invalid.
	ErrConfig = errors.New("relay: invalid configuration")
)

// storeCode maps a store refusal to its protocol code; anything else is
// CodeInternal.
func storeCode(err error) protocol.Code {
	if re := (*store.RevokedError)(nil); errors.As(err, &re) {
		return re.Reason.Code() // revoked with a reason: 26-28
	}
	switch {
	case errors.Is(err, store.ErrUnknownDevice):
		return protocol.CodeUnknownDevice
	case errors.Is(err, store.ErrDeviceRevoked), errors.Is(err, store.ErrDeviceSuspended):
		return protocol.CodeDeviceRevoked
	case errors.Is(err, store.ErrEnrollmentRefused):
		return protocol.CodeEnrollmentRefused
	case errors.Is(err, store.ErrUnknownMailbox):
		return protocol.CodeUnknownMailbox
	case errors.Is(err, store.ErrNotOwner):
		return protocol.CodeNotOwner
	case errors.Is(err, store.ErrMailboxLimit):
		return protocol.CodeMailboxLimit
	case errors.Is(err, store.ErrUnknownCapability):
		return protocol.CodeUnknownCapability
	case errors.Is(err, store.ErrCapabilityRevoked):
		return protocol.CodeCapabilityRevoked
	case errors.Is(err, store.ErrCapabilityLimit):
		return protocol.CodeCapabilityLimit
	case errors.Is(err, store.ErrQueueFull):
		return protocol.CodeQueueFull
	case errors.Is(err, store.ErrNoBundle):
		return protocol.CodeNoBundle
	case errors.Is(err, store.ErrPrekeyLimit):
		return protocol.CodePrekeyLimit
	case errors.Is(err, store.ErrUnknownBlob):
		return protocol.CodeUnknownBlob
	case errors.Is(err, store.ErrBlobQuota):
		return protocol.CodeBlobQuota
	case errors.Is(err, store.ErrBlobOffset):
		return protocol.CodeBlobOffset
	case errors.Is(err, store.ErrUnknownClaimSpace):
		return protocol.CodeUnknownClaimSpace
	case errors.Is(err, store.ErrClaimCapability):
		return protocol.CodeClaimCapability
	case errors.Is(err, store.ErrClaimLimit):
		return protocol.CodeClaimLimit
	case errors.Is(err, store.ErrClosed):
		return protocol.CodeShuttingDown
	case errors.Is(err, store.ErrStorageFull):
		return protocol.CodeStorageFull
	}
	return protocol.CodeInternal
}
