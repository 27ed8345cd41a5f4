package relay

import (
	"fmt"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/audit"
)

// openAudit opens DataDir/audit.log (and the relay key) unless Config.Audit
// is set or there is no DataDir.
func (c *Config) openAudit() error {
	if c.Audit != nil || c.DataDir == "" {
		return nil
	}
	l, err := audit.Open(c.DataDir, &audit.Options{Now: c.Now})
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	c.Audit = l
	return nil
}

// auditEvent appends one content-free event. A failure is logged, not
// returned: the action it records has already happened.
func (r *Relay) auditEvent(event string, f audit.Fields) {
	if err := r.cfg.Audit.Append(event, f); err != nil {
		r.log.Error("audit log append failed", "event", event, "err", err)
	}
}

// auditStart records the settings, so that configuration changes show
// between one start and the next.
func (r *Relay) auditStart() {
	c := r.cfg
	r.auditEvent(audit.EventRelayStart, audit.Fields{
		"enrollment":             c.Enrollment,
		"retention_seconds":      int64(c.Retention / time.Second),
		"max_connections":        c.MaxConnections,
		"max_blob_size":          c.MaxBlobSize,
		"blob_quota":             c.BlobQuota,
		"blob_retention_seconds": int64(c.BlobRetention / time.Second),
	})
}

// auditStop records the stop and closes the log with a signed head.
func (r *Relay) auditStop() {
	r.auditEvent(audit.EventRelayStop, nil)
	if err := r.cfg.Audit.Close(); err != nil {
		r.log.Error("audit log close failed", "err", err)
	}
}

// auditDevice records an admin or enrolment action on a device. The full
// device ID is a public-key fingerprint; nothing about its mailboxes.
func (r *Relay) auditDevice(event string, id protocol.DeviceID) {
	r.auditEvent(event, audit.Fields{"device": id.String()})
}

// auditBarred records a device revoked or suspended by an admin.
func (r *Relay) auditBarred(reason string, id protocol.DeviceID) {
	event := audit.EventDeviceSuspended
	if reason == reasonRevoked {
		event = audit.EventDeviceRevoked
	}
	r.auditDevice(event, id)
}

// auditInvites records invite codes created: how many, never the codes.
func (r *Relay) auditInvites(n int, ttl time.Duration) {
	r.auditEvent(audit.EventInvitesCreated, audit.Fields{"count": n, "ttl_seconds": int64(ttl / time.Second), "via": "relay"})
}

// Events named in files that do not import package audit.
const (
	auditRetentionPurge = audit.EventRetentionPurge
	auditBlobPurge      = audit.EventBlobPurge
	auditDeviceEnrolled = audit.EventDeviceEnrolled
	auditDeviceRestored = audit.EventDeviceRestored
)

// auditInviteRevoked records an invite code revoked (never the code).
func (r *Relay) auditInviteRevoked(used bool) {
	r.auditEvent(audit.EventInviteRevoked, audit.Fields{"used": used})
}

// auditCount records an aggregate (a purge run) when n > 0.
func (r *Relay) auditCount(event, field string, n int) {
	if n > 0 {
		r.auditEvent(event, audit.Fields{field: n})
	}
}
