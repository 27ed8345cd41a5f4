package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckRelayURL(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"wss://Relay.Example.ORG/", "wss://relay.example.org"},
		{"WSS://relay.example.org:8443/postern/", "wss://relay.example.org:8443/postern"},
		{"ws://127.0.0.1:7000", "ws://127.0.0.1:7000"},
		{"ws://[::1]:7000", "ws://[::1]:7000"},
		{"ws://localhost", "ws://localhost"},
	} {
		got, err := CheckRelayURL(c.in)
		if err != nil || got != c.want {
			t.Errorf("CheckRelayURL(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, c := range []struct {
		in   string
		want error
	}{
		{"", ErrRelayURL},
		{"wss://" + strings.Repeat("a", MaxRelayURLSize), ErrRelayURL},
		{"wss://user@relay.example.org", ErrRelayURL},
		{"wss://relay.example.org/?q=1", ErrRelayURL},
		{"wss://relay.example.org/#f", ErrRelayURL},
		{"wss://relay.example.org:80a", ErrRelayURL},
		{"ftp://relay.example.org", ErrRelayURL},
		{"relay.example.org", ErrRelayURL},
		{"ws://relay.example.org", ErrInsecureRelayURL},
		{"ws://10.0.0.1", ErrInsecureRelayURL},
		{"https://relay.example.org", ErrInsecureRelayURL},
	} {
		if _, err := CheckRelayURL(c.in); !errors.Is(err, c.want) {
			t.Errorf("CheckRelayURL(%q): %v, want %v", c.in, err, c.want)
		}
	}
}
