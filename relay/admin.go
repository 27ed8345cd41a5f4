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
	"time"

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
func CreateInvites(ctx context.Context, st store.Store, n int, ttl time.Duration, now time.Time) ([]string, error) {
	if n < 1 || n > MaxInvites {
		return nil, fmt.Errorf("relay: invite count %d, want 1 to %d", n, MaxInvites)
	}
	if ttl <= 0 {
		return nil, fmt.Errorf("relay: invite lifetime must be positive")
	}
	codes := make([]string, n)
	hashes := make([]store.InviteHash, n)
	for i := range codes {
		codes[i] = NewInviteCode()
		hashes[i] = InviteHash(codes[i])
	}
	if err := st.AddInvites(ctx, hashes, now.Add(ttl)); err != nil {
		return nil, err
	}
	return codes, nil
}

// CreateInvites makes n invite codes valid for ttl (see the package
// function).
func (r *Relay) CreateInvites(ctx context.Context, n int, ttl time.Duration) ([]string, error) {
	codes, err := CreateInvites(ctx, r.st, n, ttl, r.cfg.Now())
	if err == nil {
		r.log.Info("invite codes created", "count", n, "ttl", ttl.String())
	}
	return codes, err
}

// AdminRequest is one request on the admin socket (one JSON object per
// connection, answered by one AdminResponse).
type AdminRequest struct {
	Op    string `json:"op"`              // "invite.create"
	Count int    `json:"count,omitempty"` // invite.create: codes to make (default 1)
	TTL   string `json:"ttl,omitempty"`   // invite.create: Go duration (default 72h)
}

// AdminResponse answers an AdminRequest.
type AdminResponse struct {
	Error string   `json:"error,omitempty"`
	Codes []string `json:"codes,omitempty"`
}

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
	if err := json.NewDecoder(io.LimitReader(c, 4096)).Decode(&req); err != nil {
		resp.Error = "bad request: " + err.Error()
	} else {
		resp = r.admin(req)
	}
	json.NewEncoder(c).Encode(resp)
}

func (r *Relay) admin(req AdminRequest) AdminResponse {
	switch req.Op {
	case "invite.create":
		n, ttl, err := inviteArgs(req)
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		codes, err := r.CreateInvites(context.Background(), n, ttl)
		if err != nil {
			return AdminResponse{Error: err.Error()}
		}
		return AdminResponse{Codes: codes}
	}
	return AdminResponse{Error: fmt.Sprintf("unknown op %q", req.Op)}
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
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return AdminResponse{}, err
	}
	var resp AdminResponse
	if err := json.NewDecoder(io.LimitReader(c, 1<<20)).Decode(&resp); err != nil {
		return AdminResponse{}, fmt.Errorf("relay: admin response: %w", err)
	}
	if resp.Error != "" {
		return resp, fmt.Errorf("relay: admin: %s", resp.Error)
	}
	return resp, nil
}
