package protocol

import "time"

// Limits of version 1. Every size and count an attacker controls is capped
// here; SPEC.md lists the same numbers.
const (
	// MaxEnvelopeSize is the largest envelope (the largest padding bucket).
	MaxEnvelopeSize = 64 << 10
	// MinEnvelopeSize is the smallest envelope (the smallest bucket).
	MinEnvelopeSize = 1 << 10
	// MaxFrameSize bounds one WebSocket message in either direction: the
	// largest envelope plus the largest frame header around it.
	MaxFrameSize = MaxEnvelopeSize + 256

	// MaxInviteCodeSize bounds an enrolment invite code.
	MaxInviteCodeSize = 64
	// MaxDeviceKeySize bounds a device's encoded public signing key.
	MaxDeviceKeySize = 4096
	// MaxSignatureSize bounds an encoded signature.
	MaxSignatureSize = 4096
	// MaxBundleSize bounds a published prekey bundle (device certificate
	// and signed prekey, opaque to the relay).
	MaxBundleSize = 16 << 10
	// MaxPrekeySize bounds one encoded one-time prekey (a signed X-Wing
	// prekey is 4604 bytes: key, metadata and a hybrid signature).
	MaxPrekeySize = 8192
	// MaxPrekeysPerPublish bounds the one-time prekeys in one Publish frame.
	// Twelve signed prekeys fill most of a frame; clients publish more in
	// several frames, and the bundle in a frame of its own.
	MaxPrekeysPerPublish = 12
	// MaxStoredPrekeys bounds the one-time prekeys the relay keeps per device.
	MaxStoredPrekeys = 200
	// MaxAckBatch bounds the envelope IDs in one Ack frame.
	MaxAckBatch = 256
	// MaxErrorMessage bounds the text of an Error frame.
	MaxErrorMessage = 256

	// MaxQueueDepth is the most envelopes one mailbox may hold.
	MaxQueueDepth = 10000
	// MaxMailboxesPerDevice is the most mailboxes one device may own.
	MaxMailboxesPerDevice = 1024
	// MaxCapabilitiesPerMailbox is the most live send capabilities per mailbox.
	MaxCapabilitiesPerMailbox = 64
	// MaxPipelinedSends is how many Send requests per connection the relay
	// makes durable at once; it reads further frames meanwhile and answers
	// each Send when its envelope is durable, so answers to Sends may come
	// in any order (request IDs match them). More pipelined sends wait.
	MaxPipelinedSends = 64
	// MaxInflight is the most delivered but unacknowledged envelopes per
	// subscription; the relay sends more as acknowledgements arrive.
	MaxInflight = 256

	// MaxClaimValue bounds a claim register's opaque value (SetClaim).
	MaxClaimValue = 512
	// MaxClaimsPerSpace is the most registers one claim space may hold.
	MaxClaimsPerSpace = 100000
	// MaxClaimSpacesPerDevice is the most claim spaces one device may
	// have created and not deleted.
	MaxClaimSpacesPerDevice = 16
	// MaxFanoutEntries bounds the mailboxes of one fan-out list: a group
	// of 200 people with 8 devices each.
	MaxFanoutEntries = 1600
	// MaxFanoutEntriesPerFrame bounds the entries added (and, apart, the
	// mailboxes removed) by one CreateFanout or UpdateFanout, so that the
	// frame fits MaxFrameSize; a larger list is built with updates.
	MaxFanoutEntriesPerFrame = 1024
	// MaxFanoutsPerDevice is the most fan-out lists one device may create.
	MaxFanoutsPerDevice = 64
	// MaxFanoutSendBytes bounds what one SendFanout stores (entries times
	// the envelope's size), so that one upload cannot make the relay
	// write more than this: 1600 copies of an 8 KiB envelope fit.
	MaxFanoutSendBytes = 16 << 20

	// RateFramesPerSecond and RateBurst are the default per-connection
	// token bucket: frames beyond it are refused with CodeRateLimited. A
	// relay may be configured otherwise (relay.Config.FrameRate and
	// FrameBurst).
	RateFramesPerSecond = 2000
	RateBurst           = 4000

	// AuthTimeout is how long a connection may stay open without
	// authenticating and without sending any frame.
	AuthTimeout = 30 * time.Second

	// DefaultRetention is how long the relay keeps an unacknowledged
	// envelope before purging it.
	DefaultRetention = 14 * 24 * time.Hour
	// TimeGranularity is the resolution of the received time the relay
	// stores: it truncates to the hour so that it keeps only coarse time.
	TimeGranularity = time.Hour
)

// Buckets are the only envelope sizes a relay accepts, smallest first.
var Buckets = [...]int{1 << 10, 2 << 10, 4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10}

// BucketFor returns the smallest bucket that holds n bytes, or an error
// wrapping ErrTooLarge if n exceeds MaxEnvelopeSize.
func BucketFor(n int) (int, error) {
	for _, b := range Buckets {
		if n <= b {
			return b, nil
		}
	}
	return 0, errorf(ErrTooLarge, "envelope of %d bytes exceeds %d", n, MaxEnvelopeSize)
}

// BucketIndex returns the index in Buckets of size n, or -1 if n is not a bucket.
func BucketIndex(n int) int {
	for i, b := range Buckets {
		if n == b {
			return i
		}
	}
	return -1
}
