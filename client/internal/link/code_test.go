package link

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
)

var testNow = time.Date(2026, 12, 2, 14, 3, 0, 0, time.UTC)

func testCode(t testing.TB) *Code {
	t.Helper()
	var s [SecretSize]byte
	for i := range s {
		s[i] = byte(i + 1)
	}
	c, err := newCode("wss://relay.example.org", protocol.MailboxID{1, 2, 3}, s, testNow.Add(MaxLifetime))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// payload rebuilds a code's bytes with a correct checksum, so that tests
// can reach the checks after it.
func payload(relay string, mbx protocol.MailboxID, secret []byte, exp uint64, extra []byte) string {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(relay)))
	b = append(b, relay...)
	b = append(b, mbx[:]...)
	b = append(b, secret...)
	b = binary.BigEndian.AppendUint64(b, exp)
	b = append(b, extra...)
	return CodePrefix + base64.RawURLEncoding.EncodeToString(withSum(b))
}

func TestCodeRoundTrip(t *testing.T) {
	c, err := NewCode("WSS://Relay.Example.org/", protocol.NewMailboxID(), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if c.Relay != "wss://relay.example.org" {
		t.Errorf("relay %q not canonical", c.Relay)
	}
	if !c.Expires.Equal(testNow.Add(MaxLifetime)) {
		t.Errorf("expires %v, want now + %v", c.Expires, MaxLifetime)
	}
	text := c.Text()
	if !strings.HasPrefix(text, "postern-link:1:") {
		t.Fatalf("code %q lacks the prefix", text)
	}
	got, err := Parse("  "+text+"\n", testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got.Relay != c.Relay || got.Mailbox != c.Mailbox || !got.Expires.Equal(c.Expires) || got.secret != c.secret {
		t.Fatal("parsed code differs from the original")
	}
	if got.Text() != text {
		t.Fatal("re-encoding differs")
	}
	if strings.Contains(c.String(), base64.RawURLEncoding.EncodeToString(c.secret[:])[:8]) || !strings.Contains(c.String(), "REDACTED") {
		t.Fatalf("String leaks or does not redact: %s", c)
	}
	// Two codes never share a secret.
	c2, _ := NewCode("wss://relay.example.org", c.Mailbox, testNow)
	if c2.secret == c.secret {
		t.Fatal("two codes with one secret")
	}
}

func TestParseErrors(t *testing.T) {
	c := testCode(t)
	good := c.Text()
	exp := uint64(c.Expires.Unix())
	sec := c.secret[:]
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	cases := []struct {
		name string
		in   string
		now  time.Time
		want error
		text string // substring of the message, if any
	}{
		{"invitation, not a link code", "postern-invite:2:AAAA", testNow, ErrMalformed, "not a link code"},
		{"empty", "", testNow, ErrMalformed, ""},
		{"version 2", "postern-link:2:" + good[len(CodePrefix):], testNow, ErrUnsupportedVersion, ""},
		{"version 0", "postern-link:0:" + good[len(CodePrefix):], testNow, ErrUnsupportedVersion, ""},
		{"version 12", "postern-link:12:AAAA", testNow, ErrUnsupportedVersion, ""},
		{"no version", "postern-link:" + good[len(CodePrefix):], testNow, ErrMalformed, "version"},
		{"prefix only", "postern-link:", testNow, ErrMalformed, "version"},
		{"version not a number", "postern-link:x:AAAA", testNow, ErrMalformed, "version"},
		{"padding", good + "=", testNow, ErrMalformed, "base64url"},
		{"standard base64 alphabet", strings.ReplaceAll(strings.ReplaceAll(good, "-", "+"), "_", "/") + "+", testNow, ErrMalformed, ""},
		{"mistyped character (first)", flip(good, len(CodePrefix)), testNow, ErrChecksum, "mistyped"},
		{"mistyped character (middle)", flip(good, len(good)/2), testNow, ErrChecksum, ""},
		{"mistyped character (last but one)", flip(good, len(good)-2), testNow, ErrChecksum, ""},
		{"cut short by a few characters", good[:len(good)-6], testNow, ErrChecksum, ""},
		{"cut to the prefix", CodePrefix + "AAAA", testNow, ErrMalformed, "too short"},
		{"expired", good, c.Expires, ErrExpired, ""},
		{"expired long ago", good, c.Expires.Add(24 * time.Hour), ErrExpired, ""},
		{"expiry too far ahead", good, testNow.Add(-MaxClockSkew - time.Second), ErrMalformed, "clocks"},
		{"trailing bytes", payload(c.Relay, c.Mailbox, sec, exp, []byte{0}), testNow, ErrMalformed, "trailing"},
		{"relay length past the end", payload(c.Relay, c.Mailbox, sec, exp, nil)[:0] + lengthLie(c, 100), testNow, ErrMalformed, "past the end"},
		{"relay not canonical", payload("wss://Relay.example.org/", c.Mailbox, sec, exp, nil), testNow, ErrMalformed, "canonical"},
		{"relay insecure", payload("ws://relay.example.org", c.Mailbox, sec, exp, nil), testNow, ErrMalformed, "insecure"},
		{"relay http", payload("https://relay.example.org", c.Mailbox, sec, exp, nil), testNow, ErrMalformed, "wss"},
		{"relay with a query", payload("wss://relay.example.org?x=1", c.Mailbox, sec, exp, nil), testNow, ErrMalformed, ""},
		{"relay empty", payload("", c.Mailbox, sec, exp, nil), testNow, ErrMalformed, "relay URL"},
		{"relay too long", payload("wss://r.example.org/"+strings.Repeat("a", MaxRelayURLSize), c.Mailbox, sec, exp, nil), testNow, ErrMalformed, "relay URL"},
		{"zero secret", payload(c.Relay, c.Mailbox, make([]byte, SecretSize), exp, nil), testNow, ErrMalformed, "zero secret"},
		{"zero expiry", payload(c.Relay, c.Mailbox, sec, 0, nil), testNow, ErrMalformed, "expiry"},
		{"expiry past 9999", payload(c.Relay, c.Mailbox, sec, maxUnixTime+1, nil), testNow, ErrMalformed, "expiry"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in, tc.now)
			if !errors.Is(err, tc.want) || got != nil {
				t.Fatalf("Parse = %v, %v; want %v", got, err, tc.want)
			}
			if tc.text != "" && !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error %q does not say %q", err, tc.text)
			}
			if strings.Contains(err.Error(), base64.RawURLEncoding.EncodeToString(sec)[:10]) {
				t.Errorf("error %q echoes the secret", err)
			}
		})
	}
	// The boundaries that are accepted: one second before expiry, and an
	// expiry exactly MaxLifetime+MaxClockSkew ahead.
	if _, err := Parse(good, c.Expires.Add(-time.Second)); err != nil {
		t.Errorf("one second before expiry: %v", err)
	}
	if _, err := Parse(good, c.Expires.Add(-MaxLifetime-MaxClockSkew)); err != nil {
		t.Errorf("expiry at the skew limit: %v", err)
	}
}

// lengthLie is a code whose relay length field claims n more bytes than
// there are, with a valid checksum.
func lengthLie(c *Code, n int) string {
	b := []byte(payload(c.Relay, c.Mailbox, c.secret[:], uint64(c.Expires.Unix()), nil))
	raw, _ := base64.RawURLEncoding.DecodeString(string(b[len(CodePrefix):]))
	raw = raw[:len(raw)-checksumSize]
	binary.BigEndian.PutUint16(raw, uint16(len(c.Relay)+n))
	return CodePrefix + base64.RawURLEncoding.EncodeToString(withSum(raw))
}

func TestNewCodeRefuses(t *testing.T) {
	for _, relay := range []string{"", "ws://relay.example.org", "https://relay.example.org", "wss://user@relay.example.org", "wss://relay.example.org#f", "wss://" + strings.Repeat("a", MaxRelayURLSize)} {
		if _, err := NewCode(relay, protocol.MailboxID{}, testNow); !errors.Is(err, ErrMalformed) {
			t.Errorf("NewCode(%q) = %v, want ErrMalformed", relay, err)
		}
	}
	for _, relay := range []string{"ws://localhost:7878", "ws://127.0.0.1", "ws://[::1]:80/p", "wss://relay.example.org:443/x/"} {
		if _, err := NewCode(relay, protocol.MailboxID{}, testNow); err != nil {
			t.Errorf("NewCode(%q) = %v", relay, err)
		}
	}
}

func TestKeysAreSeparated(t *testing.T) {
	c := testCode(t)
	capb := c.Capability().SecretBytes()
	keys := map[string][]byte{"capability": capb, "request": c.requestKey(), "response": c.responseKey()}
	seen := map[string]string{}
	for name, k := range keys {
		if len(k) != 32 {
			t.Fatalf("%s key of %d bytes", name, len(k))
		}
		if other, ok := seen[string(k)]; ok {
			t.Fatalf("%s key equals %s key", name, other)
		}
		seen[string(k)] = name
	}
	// Each key depends on the relay and the mailbox, not only the secret.
	d := *c
	d.Mailbox[0] ^= 1
	if string(d.requestKey()) == string(c.requestKey()) || string(d.Capability().SecretBytes()) == string(capb) {
		t.Error("keys do not depend on the mailbox")
	}
	e := *c
	e.Relay = "wss://relay.example.net"
	if string(e.responseKey()) == string(c.responseKey()) {
		t.Error("keys do not depend on the relay")
	}
}
