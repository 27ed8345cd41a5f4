package relayconn

import (
	"errors"
	"net/http"
)

// ErrClosed: the connection is gone. A Request that fails with it (and
// not with a *protocol.Error) may be retried on a new connection.
var ErrClosed = errors.New("relayconn: relay connection closed")

// DialError is a WebSocket handshake that failed. Response is the HTTP
// answer of the relay or of a proxy in front of it when there was one:
// a refusal before the upgrade carries a Postern-Error header, and maybe
// a Retry-After; its body holds at most its first KiB. Nil when the
// relay could not be reached at all.
type DialError struct {
	Err      error
	Response *http.Response
}

func (e *DialError) Error() string { return "relayconn: connect to relay: " + e.Err.Error() }

func (e *DialError) Unwrap() error { return e.Err }
