package protocol

import (
	"errors"
	"net"
	"net/url"
	"strings"
)

// MaxRelayURLSize bounds a relay URL wherever one travels (invitations,
// link codes, introductions and routes): SPEC.md section 9 "Invitations" (relay URLs).
const MaxRelayURLSize = 512

var (
	// ErrRelayURL: a relay URL that does not parse, or has user info, a
	// query or a fragment, or another scheme than ws/wss/http/https.
	ErrRelayURL = errors.New("protocol: invalid relay URL")
	// ErrInsecureRelayURL: http(s)://, or ws:// to a host that is not
	// loopback.
	ErrInsecureRelayURL = errors.New("protocol: relay URL must be wss:// (ws:// only for loopback hosts)")
)

// CheckRelayURL applies the relay URL rules of SPEC.md section 9
// "Invitations" (relay URLs) and returns the canonical form: scheme and host in lower case, no
// trailing "/". It is the one place those rules live; the client, its link
// codes and its parsers of peers' contents all call it.
func CheckRelayURL(s string) (string, error) {
	if s == "" || len(s) > MaxRelayURLSize {
		return "", ErrRelayURL
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return "", ErrRelayURL
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" {
		return "", ErrRelayURL
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	switch scheme {
	case "wss":
	case "ws":
		if !isLoopback(u.Hostname()) {
			return "", ErrInsecureRelayURL
		}
	case "http", "https":
		return "", ErrInsecureRelayURL // say what to use rather than "invalid"
	default:
		return "", ErrRelayURL
	}
	for _, c := range u.Port() {
		if c < '0' || c > '9' {
			return "", ErrRelayURL
		}
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

// IsLoopback reports whether host (no port) is localhost or a loopback
// address.
func IsLoopback(host string) bool { return isLoopback(host) }

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
