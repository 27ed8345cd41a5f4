package relay

import (
	"context"
	"net"
	"os/user"
	"strconv"
	"unicode"
	"unicode/utf8"

	"github.com/postern/postern/relay/audit"
)

// operator is who ran an admin command: the operating-system user at the
// other end of the admin socket. The admin socket is guarded by its file
// mode only, so the audit log records which local account used it.
type operator struct {
	uid     string // decimal user ID from the kernel; "" when unknown
	user    string // login name
	claimed bool   // user is what the command said, not what the kernel told
	// sudoUser is the user who ran the command through sudo, as the
	// command said (SUDO_USER): the socket is the relay user's, so the
	// kernel reports that user or root, and the person behind is a claim.
	sudoUser string
}

type operatorKey struct{}

func withOperator(ctx context.Context, op operator) context.Context {
	if op.uid == "" && op.user == "" && op.sudoUser == "" {
		return ctx
	}
	return context.WithValue(ctx, operatorKey{}, op)
}

// operatorFields adds the operator of ctx, if any, to f: os_uid and
// os_user from the socket's peer credentials (SO_PEERCRED on Linux), or,
// where the platform gives none, os_user as the command reported it with
// os_user_claimed true.
func operatorFields(ctx context.Context, f audit.Fields) audit.Fields {
	op, ok := ctx.Value(operatorKey{}).(operator)
	if !ok {
		return f
	}
	if f == nil {
		f = audit.Fields{}
	}
	if op.uid != "" {
		f["os_uid"] = op.uid
	}
	if op.user != "" {
		f["os_user"] = op.user
	}
	if op.claimed {
		f["os_user_claimed"] = true
	}
	if op.sudoUser != "" {
		f["sudo_user"] = op.sudoUser
	}
	return f
}

// adminOperator identifies the peer of an admin connection: by the
// kernel's peer credentials where the platform has them, else by the user
// name the request claims (any local user able to open the socket could
// claim another name there, so it is marked as claimed).
func adminOperator(c net.Conn, req AdminRequest) operator {
	var op operator
	if printableName(req.SudoUser) {
		op.sudoUser = req.SudoUser
	}
	if uid, ok := peerUID(c); ok {
		op.uid = strconv.FormatUint(uint64(uid), 10)
		if u, err := user.LookupId(op.uid); err == nil && printableName(u.Username) {
			op.user = u.Username
		}
		return op
	}
	if printableName(req.OSUser) {
		op.user, op.claimed = req.OSUser, true
	}
	return op
}

// maxOSUser bounds a user name recorded in the audit log.
const maxOSUser = 64

func printableName(s string) bool {
	if s == "" || len(s) > maxOSUser || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// currentOSUser is the login name of the user running this process, for
// AdminRequest.OSUser; "" when unknown.
func currentOSUser() string {
	if u, err := user.Current(); err == nil && printableName(u.Username) {
		return u.Username
	}
	return ""
}
