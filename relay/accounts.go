package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// Accounts. The relay knows devices; an account is a label the operator
// gives the devices of one person (or role), "dr.smith" or an HR number,
// so that offboarding that person is one command. The label comes with the
// invite code the operator made for them (CreateAccountInvites), or an
// admin assigns it to enrolled devices (AssignAccount). It is never sent
// by a client, and no client can learn it. It appears in admin output and
// the audit log, never in metrics, and in logs only as a short keyed hash
// (logkey.go).

// ParseAccountLabel trims spaces around s and checks what is left with
// store.CheckAccountLabel: 1 to store.MaxAccountLabel bytes of printable
// UTF-8.
func ParseAccountLabel(s string) (string, error) {
	s = strings.TrimSpace(s)
	if err := store.CheckAccountLabel(s); err != nil {
		return "", err
	}
	return s, nil
}

// CreateAccountInvites is CreateInvites for codes bound to an account: a
// device enrolled with one of them belongs to the account. An empty
// account makes unbound codes, as CreateInvites.
func CreateAccountInvites(ctx context.Context, st store.Store, n int, ttl time.Duration, now time.Time, account string) ([]string, error) {
	if n < 1 || n > MaxInvites {
		return nil, fmt.Errorf("relay: invite count %d, want 1 to %d", n, MaxInvites)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("relay: invite lifetime must be positive")
	}
	if account != "" {
		if err := store.CheckAccountLabel(account); err != nil {
			return nil, err
		}
	}
	codes := make([]string, n)
	hashes := make([]store.InviteHash, n)
	for i := range codes {
		codes[i] = NewInviteCode()
		hashes[i] = InviteHash(codes[i])
	}
	if err := st.AddInvites(ctx, hashes, now.Add(ttl), account); err != nil {
		return nil, err
	}
	return codes, nil
}

// CreateAccountInvites makes n invite codes valid for ttl, bound to
// account ("" for none; see the package function).
func (r *Relay) CreateAccountInvites(ctx context.Context, n int, ttl time.Duration, account string) ([]string, error) {
	codes, err := CreateAccountInvites(ctx, r.st, n, ttl, r.cfg.Now(), account)
	if err == nil {
		r.log.Info("invite codes created", "count", n, "ttl", ttl.String(), "account", r.logAccount(account))
		r.auditInvites(ctx, n, ttl, account)
	}
	return codes, err
}

// AssignAccount makes the devices belong to account, or to none with an
// empty account (it does not disconnect them). Every device must exist.
func (r *Relay) AssignAccount(ctx context.Context, ids []protocol.DeviceID, account string) error {
	previous, err := r.st.AssignAccount(ctx, ids, account)
	if err != nil {
		return err
	}
	seen := map[protocol.DeviceID]bool{}
	for i, id := range ids {
		if seen[id] || previous[i] == account {
			continue
		}
		seen[id] = true
		r.log.Info("device assigned", "device", id.Short(), "account", r.logAccount(account))
		r.auditAssigned(ctx, id, account, previous[i])
	}
	return nil
}

// Accounts summarizes every account: devices by state, the latest
// last-seen day, pending invites.
func (r *Relay) Accounts(ctx context.Context) ([]store.Account, error) {
	return r.st.Accounts(ctx, r.cfg.Now())
}

// AccountResult is what an account-wide action did.
type AccountResult struct {
	Changed   []protocol.DeviceID // devices the action changed
	Unchanged []protocol.DeviceID // devices of the account already in that state (or, for suspend and reinstate, revoked)
	Invites   int                 // RevokeAccount: the account's unused invite codes deleted
}

// errNoAccount turns the store's ErrUnknownAccount into a message for an
// admin.
func errNoAccount(err error, label, what string) error {
	if errors.Is(err, store.ErrUnknownAccount) {
		return fmt.Errorf("no account %q: %s (postern-relay admin accounts lists them)", label, what)
	}
	return err
}

// RevokeAccount offboards every device of an account for good, as
// RevokeDevice does for one: their live connections are closed at once,
// they can no longer authenticate, and their mailboxes, queued envelopes,
// capabilities and prekeys are deleted, all in one store transaction that
// also deletes the account's unused invite codes (so that no new device
// can join it with one; a new invite for the label can). Devices already
// revoked are left as they are.
func (r *Relay) RevokeAccount(ctx context.Context, account string) (AccountResult, error) {
	var invites int
	res, closed, err := r.barAccount(ctx, account, reasonRevoked, "no devices and no unused invites",
		func(d store.Device) bool { return !d.Revoked },
		func() ([]protocol.DeviceID, error) {
			revoked, n, err := r.st.RevokeAccount(ctx, account)
			invites = n
			return revoked, err
		})
	if err != nil {
		return AccountResult{}, err
	}
	res.Invites = invites
	r.log.Info("account revoked", "account", r.accountLogID(account), "devices", len(res.Changed), "connections", closed, "invites", invites)
	r.auditAccount(ctx, auditAccountRevoked, account, len(res.Changed), invites)
	return res, nil
}

// SuspendAccount suspends every device of an account that is neither
// suspended nor revoked, as SuspendDevice does for one, in one store
// transaction. Its invite codes stay usable: revoke them (invite revoke)
// if the person must not enrol a new device meanwhile.
func (r *Relay) SuspendAccount(ctx context.Context, account string) (AccountResult, error) {
	res, closed, err := r.barAccount(ctx, account, reasonSuspended, "it has no devices",
		func(d store.Device) bool { return !d.Revoked && !d.Suspended },
		func() ([]protocol.DeviceID, error) { return r.st.SuspendAccount(ctx, account, true) })
	if err != nil {
		return AccountResult{}, err
	}
	r.log.Info("account suspended", "account", r.accountLogID(account), "devices", len(res.Changed), "connections", closed)
	r.auditAccount(ctx, auditAccountSuspended, account, len(res.Changed), -1)
	return res, nil
}

// barAccount revokes or suspends (reason) the devices of an account: the
// devices the listing says op will change (willChange) are barred and
// disconnected before op runs, so that none acts between the two; op
// changes them in one store transaction; a device it changed besides (one
// that joined the account meanwhile) is disconnected after it, and one it
// left alone is unbarred again. It logs and audits each device; the
// account-wide log and audit entry are the caller's. closed counts the
// connections closed.
func (r *Relay) barAccount(ctx context.Context, account, reason, none string, willChange func(store.Device) bool, op func() ([]protocol.DeviceID, error)) (res AccountResult, closed int, err error) {
	if account == "" {
		return AccountResult{}, 0, store.ErrUnknownAccount
	}
	devs, err := r.st.AccountDevices(ctx, account)
	if err != nil {
		return AccountResult{}, 0, err
	}
	var targets []protocol.DeviceID
	for _, d := range devs {
		if willChange(d) {
			targets = append(targets, d.ID)
		}
	}
	closed = r.evictDevices(targets, reason)
	changed, err := op()
	if err != nil {
		r.rebar(devs, nil)
		return AccountResult{}, 0, errNoAccount(err, account, none)
	}
	var late []protocol.DeviceID
	for _, id := range changed {
		if !slices.Contains(targets, id) {
			late = append(late, id)
		}
	}
	closed += r.evictDevices(late, reason)
	r.rebar(devs, changed) // left the account meanwhile: as they were
	res.Changed = changed
	for _, d := range devs {
		if !slices.Contains(changed, d.ID) {
			res.Unchanged = append(res.Unchanged, d.ID)
		}
	}
	for _, id := range changed {
		r.log.Info(reason, "device", id.Short())
		r.auditBarred(ctx, reason, id)
	}
	return res, closed, nil
}

// ReinstateAccount lifts the suspension of every suspended device of an
// account; revoked ones stay revoked.
func (r *Relay) ReinstateAccount(ctx context.Context, account string) (AccountResult, error) {
	if account == "" {
		return AccountResult{}, store.ErrUnknownAccount
	}
	devs, err := r.st.AccountDevices(ctx, account)
	if err != nil {
		return AccountResult{}, err
	}
	changed, err := r.st.SuspendAccount(ctx, account, false)
	if err != nil {
		return AccountResult{}, errNoAccount(err, account, "it has no devices")
	}
	res := AccountResult{Changed: changed}
	for _, d := range devs {
		if !slices.Contains(changed, d.ID) {
			res.Unchanged = append(res.Unchanged, d.ID)
		}
	}
	for _, id := range changed {
		r.devs.unbar(id)
		r.log.Info("device reinstated", "device", id.Short())
		r.auditDeviceBy(ctx, auditDeviceRestored, id)
	}
	r.log.Info("account reinstated", "account", r.accountLogID(account), "devices", len(changed))
	r.auditAccount(ctx, auditAccountRestored, account, len(changed), -1)
	return res, nil
}

// rebar puts the in-memory bar of each listed device that the store did
// not change (not in changed) back as its stored state says: a device
// evicted for an account action that failed, or that left the account
// before the transaction, is barred again only if it was suspended.
func (r *Relay) rebar(devs []store.Device, changed []protocol.DeviceID) {
	for _, d := range devs {
		switch {
		case d.Revoked || slices.Contains(changed, d.ID):
		case d.Suspended:
			r.devs.bar(d.ID, reasonSuspended)
		default:
			r.devs.unbar(d.ID)
		}
	}
}
