package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// AdminSocket is the admin socket's file name inside Config.DataDir.
const AdminSocket = "admin.sock"

// MaxInvites bounds the invite codes created by one request.
const MaxInvites = 1000

// DefaultInviteTTL is how long an invite code stays valid by default.
const DefaultInviteTTL = 72 * time.Hour

const inviteLabel = protocol.LabelPrefix + "invite"

var inviteEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewInviteCode returns a fresh invite code: 128 random bits in 26
// lowercase base32 characters.
func NewInviteCode() string {
	var b [16]byte
	rand.Read(b[:])
	return strings.ToLower(inviteEncoding.EncodeToString(b[:]))
}

// InviteHash is what the store keeps of an invite code:
// SHA-256("postern.v1 invite" || code), after trimming spaces and lowering
// case so that a code typed by hand still matches.
func InviteHash(code string) store.InviteHash {
	h := sha256.New()
	h.Write([]byte(inviteLabel))
	h.Write([]byte(strings.ToLower(strings.TrimSpace(code))))
	var out store.InviteHash
	h.Sum(out[:0])
	return out
}

// CreateInvites makes n invite codes valid for ttl from now and stores
// their hashes in st. The codes themselves are returned and never stored.
// CreateAccountInvites (accounts.go) makes codes bound to an account.
func CreateInvites(ctx context.Context, st store.Store, n int, ttl time.Duration, now time.Time) ([]string, error) {
	return CreateAccountInvites(ctx, st, n, ttl, now, "")
}

// CreateInvites makes n invite codes valid for ttl (see the package
// function).
func (r *Relay) CreateInvites(ctx context.Context, n int, ttl time.Duration) ([]string, error) {
	return r.CreateAccountInvites(ctx, n, ttl, "")
}

// AdminRequest is one request on the admin socket (one JSON object per
// connection, answered by one AdminResponse). Ops: "invite.create",
// "invite.revoke", "device.list", "device.revoke", "device.suspend",
// "device.reinstate", "device.assign", "account.list", "account.revoke",
// "account.suspend", "account.reinstate", "backup", "backup.stream"
// (backup.go). "device.restore" and "account.restore" are older names of
// the reinstate ops, still answered.
type AdminRequest struct {
	Op    string   `json:"op"`
	Count int      `json:"count,omitempty"` // invite.create: codes to make (default 1)
	TTL   string   `json:"ttl,omitempty"`   // invite.create: Go duration (default 72h)
	Code  string   `json:"code,omitempty"`  // invite.revoke: the invite code
	IDs   []string `json:"ids,omitempty"`   // device.revoke|suspend|reinstate|assign: device IDs (hex, or unique prefixes of at least 8 hex digits)
	Path  string   `json:"path,omitempty"`  // backup: absolute path of the copy to write
	// OSUser is the login name of the user running the command, filled in
	// by Admin. The relay records the user the kernel reports for the
	// socket's peer (SO_PEERCRED on Linux) instead; only where the
	// platform reports none does it record this claim, marked as claimed.
	OSUser string `json:"os_user,omitempty"`
	// SudoUser is SUDO_USER of the command's environment, filled in by
	// Admin: the person who ran it through sudo as the relay's user. The
	// relay records it as sudo_user, a claim.
	SudoUser string `json:"sudo_user,omitempty"`
	// Account is an account label: invite.create binds the codes to it,
	// device.assign gives it to the devices (empty: removes theirs),
	// device.list lists only its devices, account.revoke|suspend|reinstate
	// act on its devices.
	Account string `json:"account,omitempty"`
}

// AdminResponse answers an AdminRequest.
type AdminResponse struct {
	Error    string         `json:"error,omitempty"`
	Codes    []string       `json:"codes,omitempty"`    // invite.create
	Used     bool           `json:"used,omitempty"`     // invite.revoke: the invite had already enrolled a device
	Devices  []AdminDevice  `json:"devices,omitempty"`  // device.list
	Accounts []AdminAccount `json:"accounts,omitempty"` // account.list
	// Done lists the full IDs acted on: by device.revoke|suspend|reinstate|
	// assign, or changed by account.revoke|suspend|reinstate.
	Done []string `json:"done,omitempty"`
	// Unchanged lists the devices of the account that account.revoke|
	// suspend|reinstate left as they were (already in that state, or
	// revoked).
	Unchanged []string `json:"unchanged,omitempty"`
	// InvitesRevoked counts the unused invite codes account.revoke
	// deleted.
	InvitesRevoked int `json:"invites_revoked,omitempty"`
}

// AdminDevice is one device as device.list shows it: what an admin needs
// to offboard it, and nothing about its mailboxes or counterparts.
type AdminDevice struct {
	ID       string `json:"id"`                  // full device ID, hex
	Short    string `json:"short"`               // first 4 bytes, hex (as in the logs)
	Account  string `json:"account,omitempty"`   // the account label, if it has one
	Enrolled string `json:"enrolled"`            // UTC day, YYYY-MM-DD
	LastSeen string `json:"last_seen,omitempty"` // UTC day of the last authentication, YYYY-MM-DD
	State    string `json:"state"`               // DeviceActive, DeviceSuspended or DeviceRevoked
}

// AdminAccount is one account as account.list shows it: its devices by
// state, and nothing about mailboxes or counterparts.
type AdminAccount struct {
	Account   string `json:"account"`             // the label
	Active    int    `json:"active"`              // devices neither suspended nor revoked
	Suspended int    `json:"suspended"`           // suspended devices
	Revoked   int    `json:"revoked"`             // revoked devices
	LastSeen  string `json:"last_seen,omitempty"` // the latest last-seen day of its devices, YYYY-MM-DD
	Invites   int    `json:"invites"`             // unused, unexpired invite codes bound to it
}

// Device states in AdminDevice.State.
const (
	DeviceActive    = "active"
	DeviceSuspended = "suspended"
	DeviceRevoked   = "revoked"
)

// ListenAdmin creates the admin socket (a unix socket, mode 0600) at
// dir/AdminSocket, replacing a stale one.
func ListenAdmin(dir string) (net.Listener, error) {
	path := filepath.Join(dir, AdminSocket)
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("relay: another relay is serving %s", path)
	}
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("relay: admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("relay: admin socket: %w", err)
	}
	return l, nil
}

// ServeAdmin answers admin requests on l until the relay shuts down (which
// closes l). Only the socket's file mode guards it: keep DataDir private.
func (r *Relay) ServeAdmin(l net.Listener) error {
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		l.Close()
		return ErrClosed
	}
	r.admins = append(r.admins, l)
	r.mu.Unlock()
	for {
		c, err := l.Accept()
		if err != nil {
			r.mu.Lock()
			closing := r.closing
			r.mu.Unlock()
			if closing {
				return nil
			}
			return err
		}
		go r.serveAdminConn(c)
	}
}

func (r *Relay) serveAdminConn(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var req AdminRequest
	var resp AdminResponse
	if err := json.NewDecoder(io.LimitReader(c, maxAdminRequest)).Decode(&req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else {
		if req.Op == "backup.stream" {
			r.streamSnapshot(c) // backup.go: a JSON header, then the bytes
			return
		}
		if req.Op == "backup" {
			c.SetDeadline(time.Now().Add(backupTimeout)) // a large file takes a while
		}
		resp = r.admin(withOperator(context.Background(), adminOperator(c, req)), req)
	}
	json.NewEncoder(c).Encode(resp)
}

// admin answers one request; ctx carries the operator, whom the audit
// entries of the request record.
func (r *Relay) admin(ctx context.Context, req AdminRequest) AdminResponse {
	if op, ok := renamedOps[req.Op]; ok {
		req.Op = op
	}
	switch req.Op {
	case "invite.create":
		n, ttl, err := inviteArgs(req)
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		account := ""
		if req.Account != "" {
			if account, err = ParseAccountLabel(req.Account); err != nil {
				return AdminResponse{Error: err.Error()}
			}
		}
		codes, err := r.CreateAccountInvites(ctx, n, ttl, account)
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		return AdminResponse{Codes: codes}
	case "invite.revoke":
		used, err := r.RevokeInvite(ctx, req.Code)
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		return AdminResponse{Used: used}
	case "device.list":
		var devs []store.Device
		var err error
		if req.Account != "" {
			var account string
			if account, err = ParseAccountLabel(req.Account); err != nil {
				return AdminResponse{Error: err.Error()}
			}
			devs, err = r.st.AccountDevices(ctx, account)
		} else {
			devs, err = r.st.Devices(ctx)
		}
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		out := make([]AdminDevice, len(devs))
		for i, d := range devs {
			out[i] = adminDevice(d)
		}
		return AdminResponse{Devices: out}
	case "device.revoke", "device.suspend", "device.reinstate":
		ids, err := r.resolveDevices(ctx, req.IDs)
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		act := map[string]func(context.Context, protocol.DeviceID) error{
			"device.revoke":    r.RevokeDevice,
			"device.suspend":   r.SuspendDevice,
			"device.reinstate": r.ReinstateDevice,
		}[req.Op]
		var resp AdminResponse
		for _, id := range ids {
			if err := act(ctx, id); err != nil {
				resp.Error = fmt.Sprintf("device %s: %v", id.Short(), err)
				break
			}
			resp.Done = append(resp.Done, id.String())
		}
		return resp
	case "device.assign":
		account := strings.TrimSpace(req.Account)
		if account != "" {
			var err error
			if account, err = ParseAccountLabel(account); err != nil {
				return AdminResponse{Error: err.Error()}
			}
		}
		ids, err := r.resolveDevices(ctx, req.IDs)
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		if err := r.AssignAccount(ctx, ids, account); err != nil {
			return AdminResponse{Error: err.Error()}
		}
		var resp AdminResponse
		for _, id := range ids {
			resp.Done = append(resp.Done, id.String())
		}
		return resp
	case "account.list":
		accts, err := r.Accounts(ctx)
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		out := make([]AdminAccount, len(accts))
		for i, a := range accts {
			out[i] = AdminAccount{Account: a.Label, Active: a.Active, Suspended: a.Suspended, Revoked: a.Revoked, Invites: a.Invites}
			if !a.LastSeen.IsZero() {
				out[i].LastSeen = a.LastSeen.UTC().Format(time.DateOnly)
			}
		}
		return AdminResponse{Accounts: out}
	case "account.revoke", "account.suspend", "account.reinstate":
		account, err := ParseAccountLabel(req.Account)
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		act := map[string]func(context.Context, string) (AccountResult, error){
			"account.revoke":    r.RevokeAccount,
			"account.suspend":   r.SuspendAccount,
			"account.reinstate": r.ReinstateAccount,
		}[req.Op]
		res, err := act(ctx, account)
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		resp := AdminResponse{InvitesRevoked: res.Invites}
		for _, id := range res.Changed {
			resp.Done = append(resp.Done, id.String())
		}
		for _, id := range res.Unchanged {
			resp.Unchanged = append(resp.Unchanged, id.String())
		}
		return resp
	case "backup":
		if err := r.Backup(req.Path); err != nil {
			return AdminResponse{Error: err.Error()}
		}
		return AdminResponse{Done: []string{req.Path}}
	}
	return AdminResponse{Error: fmt.Sprintf("unknown op %q", req.Op)}
}

// renamedOps maps older op names to the current ones: "restore" lifted a
// suspension before it was renamed "reinstate", so that lifting a
// suspension no longer shares a word with restoring a backup.
var renamedOps = map[string]string{
	"device.restore":  "device.reinstate",
	"account.restore": "account.reinstate",
}

func inviteArgs(req AdminRequest) (int, time.Duration, error) {
	n, ttl := req.Count, DefaultInviteTTL
	if n == 0 {
		n = 1
	}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil {
			return 0, 0, fmt.Errorf("ttl: %v", err)
		}
		ttl = d
	}
	return n, ttl, nil
}

// ErrNoAdminSocket: no relay is listening on the admin socket.
var ErrNoAdminSocket = errors.New("relay: no relay is listening on the admin socket")

// Admin sends one request to the admin socket in dir. It returns an error
// wrapping ErrNoAdminSocket when no relay is running there.
func Admin(ctx context.Context, dir string, req AdminRequest) (AdminResponse, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(dir, AdminSocket))
	if err != nil {
		return AdminResponse{}, fmt.Errorf("%w: %v", ErrNoAdminSocket, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if req.OSUser == "" {
		req.OSUser = currentOSUser()
	}
	if req.SudoUser == "" {
		req.SudoUser = os.Getenv("SUDO_USER")
	}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return AdminResponse{}, err
	}
	var resp AdminResponse
	if err := json.NewDecoder(io.LimitReader(c, maxAdminResponse)).Decode(&resp); err != nil {
		return AdminResponse{}, fmt.Errorf("relay: admin response: %w", err)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("relay: admin: %s", resp.Error)
	}
	return resp, nil
}

// Sizes of admin socket messages: a request names at most a few hundred
// devices; a device list is about 200 bytes a device.
const (
	maxAdminRequest  = 64 << 10
	maxAdminResponse = 256 << 20
)

// RevokeInvite deletes an invite code so that it can no longer enrol a
// device, and reports whether it had already been used.
func (r *Relay) RevokeInvite(ctx context.Context, code string) (used bool, err error) {
	if strings.TrimSpace(code) == "" {
		return false, fmt.Errorf("relay: no invite code given")
	}
	used, err = r.st.RevokeInvite(ctx, InviteHash(code))
	if errors.Is(err, store.ErrUnknownInvite) {
		return false, fmt.Errorf("relay: no such invite code")
	}
	if err == nil {
		r.log.Info("invite code revoked", "used", used)
		r.auditInviteRevoked(ctx, used)
	}
	return used, err
}

func adminDevice(d store.Device) AdminDevice {
	a := AdminDevice{ID: d.ID.String(), Short: d.ID.Short(), Account: d.Account, Enrolled: d.Enrolled.UTC().Format(time.DateOnly), State: DeviceActive}
	if !d.LastSeen.IsZero() {
		a.LastSeen = d.LastSeen.UTC().Format(time.DateOnly)
	}
	switch {
	case d.Revoked:
		a.State = DeviceRevoked
	case d.Suspended:
		a.State = DeviceSuspended
	}
	return a
}

// minIDPrefix is the shortest device ID prefix (hex digits) an admin may
// name a device by: the short form shown in logs and listings.
const minIDPrefix = 8

// resolveDevices turns full IDs or unique prefixes into device IDs. Every
// name must match exactly one device, or nothing is done.
func (r *Relay) resolveDevices(ctx context.Context, names []string) ([]protocol.DeviceID, error) {
	if len(names) == 0 {
		return nil, fmt.Errorf("no device IDs given")
	}
	var all []store.Device
	var ids []protocol.DeviceID
	seen := map[protocol.DeviceID]bool{}
	for _, name := range names {
		name = strings.ToLower(strings.TrimSpace(name))
		if len(name) < minIDPrefix || len(name) > 2*len(protocol.DeviceID{}) || strings.Trim(name, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("device ID %q: want %d to %d hex digits", name, minIDPrefix, 2*len(protocol.DeviceID{}))
		}
		if all == nil {
			var err error
			if all, err = r.st.Devices(ctx); err != nil {
				return nil, err
			}
		}
		var match []protocol.DeviceID
		for _, d := range all {
			if strings.HasPrefix(d.ID.String(), name) {
				match = append(match, d.ID)
			}
		}
		switch len(match) {
		case 0:
			return nil, fmt.Errorf("no device %s", name)
		case 1:
		default:
			return nil, fmt.Errorf("device ID %s matches %d devices: give more digits", name, len(match))
		}
		if !seen[match[0]] {
			seen[match[0]] = true
			ids = append(ids, match[0])
		}
	}
	return ids, nil
}

// Reasons given to a barred device: in the Error frame (code
// CodeDeviceRevoked) and the close frame that end its connections, and in
// the Error that answers its later Auth.
const (
	reasonRevoked   = "device revoked"
	reasonSuspended = "device suspended"
)

// RevokeDevice offboards a device for good: its live connections are
// closed at once, it can no longer authenticate or enrol, and its
// mailboxes (with their queued envelopes and capabilities), its prekey
// bundle and its one-time prekeys are deleted. Blobs it uploaded expire as
// usual. Revoking a revoked device again changes nothing.
//
// RevokeAccount (accounts.go) revokes every device of a person at once.
func (r *Relay) RevokeDevice(ctx context.Context, id protocol.DeviceID) error {
	return r.barDevice(ctx, id, reasonRevoked, func() error { return r.st.RevokeDevice(ctx, id) })
}

// SuspendDevice closes the device's live connections at once and refuses
// its authentication until ReinstateDevice; its data is kept and senders can
// still queue envelopes for it.
func (r *Relay) SuspendDevice(ctx context.Context, id protocol.DeviceID) error {
	return r.barDevice(ctx, id, reasonSuspended, func() error { return r.st.SuspendDevice(ctx, id, true) })
}

// ReinstateDevice lifts a suspension. A revoked device cannot be
// reinstated.
func (r *Relay) ReinstateDevice(ctx context.Context, id protocol.DeviceID) error {
	if err := r.st.SuspendDevice(ctx, id, false); err != nil {
		return err
	}
	r.devs.unbar(id)
	r.log.Info("device reinstated", "device", id.Short())
	r.auditDeviceBy(ctx, auditDeviceRestored, id)
	return nil
}

// evictWait bounds how long an admin operation waits for the requests in
// progress on the connections it closes, so that none of them writes
// after the store change. The connections themselves are told at once.
const evictWait = 10 * time.Second

// barDevice bars id from authenticating in this process, closes its live
// connections, waits for their requests in progress, then makes the
// change in the store (lift, if it fails). Barring first closes the race
// with an Auth that read the device record before the change.
func (r *Relay) barDevice(ctx context.Context, id protocol.DeviceID, reason string, change func() error) error {
	d, err := r.st.Device(ctx, id)
	if err != nil {
		return err
	}
	if d.Revoked && reason == reasonSuspended {
		return store.ErrDeviceRevoked
	}
	closed := r.evictDevices([]protocol.DeviceID{id}, reason)
	if err := change(); err != nil {
		if !d.Revoked && !d.Suspended {
			r.devs.unbar(id)
		}
		return err
	}
	r.log.Info(reason, "device", id.Short(), "connections", closed)
	r.auditBarred(ctx, reason, id)
	return nil
}

// evictDevices bars ids from authenticating in this process, closes all
// their live connections at once and waits (at most evictWait) for the
// requests in progress on them, so that none of them writes after the
// store change that follows. It returns how many connections it closed.
func (r *Relay) evictDevices(ids []protocol.DeviceID, reason string) int {
	var conns []*conn
	for _, id := range ids {
		conns = append(conns, r.devs.bar(id, reason)...)
	}
	if len(conns) == 0 {
		return 0
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.evict(reason) })
	}
	idle := make(chan struct{})
	go func() { wg.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(evictWait):
		r.log.Warn("closed connections still busy; changing the store anyway", "devices", len(ids), "connections", len(conns))
	}
	return len(conns)
}

// deviceRegistry knows the authenticated connections of each device, and
// the devices an admin barred while this process runs.
type deviceRegistry struct {
	mu     sync.Mutex
	conns  map[protocol.DeviceID]map[*conn]struct{}
	barred map[protocol.DeviceID]string // reason
}

// add registers c as authenticated for dev, unless dev is barred.
func (g *deviceRegistry) add(c *conn, dev protocol.DeviceID) (reason string, ok bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if reason, barred := g.barred[dev]; barred {
		return reason, false
	}
	if g.conns == nil {
		g.conns = map[protocol.DeviceID]map[*conn]struct{}{}
	}
	if g.conns[dev] == nil {
		g.conns[dev] = map[*conn]struct{}{}
	}
	g.conns[dev][c] = struct{}{}
	return "", true
}

// remove forgets an ended connection. Called from its serve goroutine.
func (g *deviceRegistry) remove(c *conn) {
	if !c.authed {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.conns[c.device], c)
	if len(g.conns[c.device]) == 0 {
		delete(g.conns, c.device)
	}
}

// bar refuses dev's authentication from now on and returns its live
// connections.
func (g *deviceRegistry) bar(dev protocol.DeviceID, reason string) []*conn {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.barred == nil {
		g.barred = map[protocol.DeviceID]string{}
	}
	g.barred[dev] = reason
	out := make([]*conn, 0, len(g.conns[dev]))
	for c := range g.conns[dev] {
		out = append(out, c)
	}
	return out
}

func (g *deviceRegistry) unbar(dev protocol.DeviceID) {
	g.mu.Lock()
	delete(g.barred, dev)
	g.mu.Unlock()
}

// evictFlush bounds the wait for the Error frame before the close frame.
const evictFlush = 250 * time.Millisecond

// evict ends the connection of a barred device: an Error{CodeDeviceRevoked}
// push, then close 1008 with the reason. It returns once the request in
// progress (if any) has finished; the connection handles no other.
func (c *conn) evict(reason string) {
	c.closing.Store(true)
	c.refuse(0, protocol.CodeDeviceRevoked, reason)
	done := make(chan struct{})
	if c.enqueue(outFrame{flush: done}) {
		select {
		case <-done:
		case <-c.ctx.Done():
		case <-time.After(evictFlush):
		}
	}
	go c.closeWith(websocket.StatusPolicyViolation, reason, false)
	c.busy.Lock()
	c.busy.Unlock()
}

// admit makes dev the connection's authenticated device, unless an admin
// barred it since its record was read, and records its last-seen day (at
// most one write a day per device).
func (c *conn) admit(dev store.Device) (reason string, ok bool) {
	if reason, ok := c.r.devs.add(c, dev.ID); !ok {
		return reason, false
	}
	c.authed, c.device = true, dev.ID
	now := c.r.cfg.Now()
	if dev.LastSeen.IsZero() || dev.LastSeen.Unix()/86400 != now.Unix()/86400 {
		if err := c.r.st.DeviceSeen(c.ctx, dev.ID, now); err != nil {
			c.log.Warn("could not record last-seen day", "device", dev.ID.Short(), "err", err)
		}
	}
	return "", true
}
