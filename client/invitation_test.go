package client

import (
	"errors"
	"strings"
	"testing"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

func testInvitation() *Invitation {
	var id keys.Fingerprint
	for i := range id {
		id[i] = byte(i)
	}
	inv := &Invitation{Relay: "wss://relay.example.org", Mailbox: protocol.MailboxID{1, 2, 3}, Identity: id}
	inv.Secret = secret()
	return inv
}

func secret() (s [InvitationSecretSize]byte) {
	copy(s[:], protocol.NewCapabilityToken().SecretBytes())
	return s
}

func TestParseInvitation(t *testing.T) {
	t.Parallel()
	good := testInvitation().Code()
	body := strings.TrimPrefix(good, InvitationPrefix)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"prefix", "postern-invite:3:" + body, ErrInvitationPrefix},
		{"format 1", "postern-invite:1:" + body, ErrInvitationOutdated},
		{"empty", "", ErrInvitationPrefix},
		{"encoding", InvitationPrefix + body + "=", ErrInvitationEncoding},
		{"truncated", good[:len(good)-10], ErrInvitationTruncated},
		{"truncated short", good[:len(InvitationPrefix)+20], ErrInvitationTruncated},
		{"checksum", InvitationPrefix + flip(body, 30), ErrInvitationChecksum},
		{"checksum in sum", InvitationPrefix + flip(body, len(body)-3), ErrInvitationChecksum},
		{"insecure relay", (&Invitation{Relay: "ws://relay.example.org", Secret: secret()}).Code(), ErrInsecureRelay},
		{"bad relay", (&Invitation{Relay: "ftp://x", Secret: secret()}).Code(), ErrInvalidRelayURL},
		{"non-canonical relay", (&Invitation{Relay: "wss://Relay.example.org/", Secret: secret()}).Code(), ErrInvalidInvitation},
		{"zero secret", (&Invitation{Relay: "wss://relay.example.org"}).Code(), ErrInvalidInvitation},
		{"non-zero padding bits", nonCanonicalBase64(t, good), ErrInvitationEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInvitation(tt.in)
			if !errors.Is(err, tt.want) || !errors.Is(err, ErrInvalidInvitation) {
				t.Fatalf("err = %v, want %v (and ErrInvalidInvitation)", err, tt.want)
			}
		})
	}
	inv := testInvitation()
	got, err := ParseInvitation("  " + inv.Code() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if got.Relay != inv.Relay || got.Mailbox != inv.Mailbox || got.Secret != inv.Secret || !got.Capability().Equal(inv.Capability()) || got.Identity != inv.Identity {
		t.Fatalf("round trip: %+v", got)
	}
	if strings.Contains(got.String(), body[:10]) {
		t.Fatal("String leaks the code")
	}
}

func TestCheckRelayURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		err      error
	}{
		{"wss://relay.example.org", "wss://relay.example.org", nil},
		{"WSS://Relay.Example.org:8443/postern/", "wss://relay.example.org:8443/postern", nil},
		{"ws://127.0.0.1:8080", "ws://127.0.0.1:8080", nil},
		{"ws://localhost:1", "ws://localhost:1", nil},
		{"ws://[::1]:1", "ws://[::1]:1", nil},
		{"ws://relay.example.org", "", ErrInsecureRelay},
		{"https://relay.example.org", "", ErrInsecureRelay},
		{"wss://u:p@relay.example.org", "", ErrInvalidRelayURL},
		{"wss://relay.example.org?x=1", "", ErrInvalidRelayURL},
		{"relay.example.org", "", ErrInvalidRelayURL},
		{"wss://", "", ErrInvalidRelayURL},
	}
	for _, tt := range tests {
		got, err := CheckRelayURL(tt.in)
		if got != tt.want || !errors.Is(err, tt.err) {
			t.Errorf("CheckRelayURL(%q) = %q, %v; want %q, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func FuzzParseInvitation(f *testing.F) {
	f.Add(testInvitation().Code())
	f.Add(InvitationPrefix)
	f.Add(InvitationPrefix + "AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		inv, err := ParseInvitation(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidInvitation) {
				t.Fatalf("error %v does not match ErrInvalidInvitation", err)
			}
			return
		}
		// Canonical: what parses re-encodes to the same text.
		if got := inv.Code(); got != strings.TrimSpace(s) {
			t.Fatalf("re-encoded %q, parsed from %q", got, s)
		}
	})
}

// nonCanonicalBase64 sets a padding bit of the invitation's last base64
// character: the same bytes decode from it, but only the canonical text may
// be accepted (found by FuzzParseInvitation).
func nonCanonicalBase64(t *testing.T, code string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	body := strings.TrimPrefix(code, InvitationPrefix)
	if len(body)%4 == 0 {
		// No padding bits at this length: lengthen the relay URL by one.
		t.Fatalf("test invitation's base64 has no padding bits; change its relay URL length")
	}
	last := strings.IndexByte(alphabet, body[len(body)-1])
	return InvitationPrefix + body[:len(body)-1] + string(alphabet[last|1])
}
