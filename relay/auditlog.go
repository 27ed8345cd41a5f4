package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/postern/postern/internal/buildinfo"
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

// auditStart records the settings and the build, so that configuration
// changes and upgrades show between one start and the next.
func (r *Relay) auditStart() {
	f := r.set().auditFields() // reload.go
	bi := buildinfo.Read()
	f["version"], f["commit"] = bi.Version, bi.Commit
	if bi.Modified {
		f["commit_modified"] = true
	}
	r.auditEvent(audit.EventRelayStart, f)
}

// auditStop records the stop and closes the log with a signed head.
func (r *Relay) auditStop() {
	r.auditEvent(audit.EventRelayStop, nil)
	if err := r.cfg.Audit.Close(); err != nil {
		r.log.Error("audit log close failed", "err", err)
	}
}

// auditEventBy is auditEvent for an action of an admin command: it also
// records the operating-system user who ran it (operator.go), when ctx
// carries one.
func (r *Relay) auditEventBy(ctx context.Context, event string, f audit.Fields) {
	r.auditEvent(event, operatorFields(ctx, f))
}

// auditDevice records an enrolment or another action on a device with no
// operator (auditDeviceBy).
func (r *Relay) auditDevice(event string, id protocol.DeviceID) {
	r.auditDeviceBy(context.Background(), event, id)
}

// auditDeviceBy records an admin or enrolment action on a device. The full
// device ID is a public-key fingerprint; nothing about its mailboxes. A
// first enrolment also records the account the device joined with its
// invite, if any.
func (r *Relay) auditDeviceBy(ctx context.Context, event string, id protocol.DeviceID) {
	f := audit.Fields{"device": id.String()}
	if event == audit.EventDeviceEnrolled {
		if d, err := r.st.Device(context.Background(), id); err == nil && d.Account != "" {
			f["account"] = d.Account
		}
	}
	r.auditEventBy(ctx, event, f)
}

// auditAssigned records a device given an account label (or, with
// account "", its label removed) by an admin.
func (r *Relay) auditAssigned(ctx context.Context, id protocol.DeviceID, account, previous string) {
	f := audit.Fields{"device": id.String(), "account": account}
	if previous != "" {
		f["previous"] = previous
	}
	r.auditEventBy(ctx, audit.EventDeviceAssigned, f)
}

// auditAccount records an admin action on a whole account: how many
// devices it changed and, when invites >= 0, how many unused invite codes
// it deleted.
func (r *Relay) auditAccount(ctx context.Context, event, account string, devices, invites int) {
	f := audit.Fields{"account": account, "devices": devices}
	if invites >= 0 {
		f["invites_revoked"] = invites
	}
	r.auditEventBy(ctx, event, f)
}

// auditBarred records a device revoked or suspended by an admin.
func (r *Relay) auditBarred(ctx context.Context, reason string, id protocol.DeviceID) {
	event := audit.EventDeviceSuspended
	if reason == reasonRevoked {
		event = audit.EventDeviceRevoked
	}
	r.auditDeviceBy(ctx, event, id)
}

// auditInvites records invite codes created: how many and for which
// account, never the codes.
func (r *Relay) auditInvites(ctx context.Context, n int, ttl time.Duration, account string) {
	f := audit.Fields{"count": n, "ttl_seconds": int64(ttl / time.Second), "via": "relay"}
	if account != "" {
		f["account"] = account
	}
	r.auditEventBy(ctx, audit.EventInvitesCreated, f)
}

// AuditStoreMigrated records that the store was converted from schema
// from to schema to when it was opened, after a copy named backup (a file
// name in DataDir) was taken. The store converts itself on open; the
// caller that saw it happen reports it here, once the log is open.
func (r *Relay) AuditStoreMigrated(from, to uint32, backup string) {
	r.auditEvent(audit.EventStoreMigrated, audit.Fields{"from": int64(from), "to": int64(to), "backup": backup})
}

// Events named in files that do not import package audit.
const (
	auditRetentionPurge = audit.EventRetentionPurge
	auditBlobPurge      = audit.EventBlobPurge
	auditDeviceEnrolled = audit.EventDeviceEnrolled
	auditDeviceRestored = audit.EventDeviceRestored

	auditAccountRevoked   = audit.EventAccountRevoked
	auditAccountSuspended = audit.EventAccountSuspended
	auditAccountRestored  = audit.EventAccountRestored
)

// auditInviteRevoked records an invite code revoked (never the code).
func (r *Relay) auditInviteRevoked(ctx context.Context, used bool) {
	r.auditEventBy(ctx, audit.EventInviteRevoked, audit.Fields{"used": used})
}

// auditCount records an aggregate (a purge run) when n > 0.
func (r *Relay) auditCount(event, field string, n int) {
	if n > 0 {
		r.auditEvent(event, audit.Fields{field: n})
	}
}
