package relay_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/relay/store"
	"github.com/postern/postern/relay/store/bboltstore"
)

// schema1Manifest is the part of testdata/relay/schema1.json this test
// uses (relay/store/bboltstore/schema1_fixture_test.go writes it).
type schema1Manifest struct {
	Devices []struct {
		Name, ID, State string
		IdentitySecret  string `json:"identity_secret"`
	}
	Invites []struct {
		Code string
		Used bool
	}
	Mailboxes []struct {
		ID, Owner    string
		Deleted      bool
		Capabilities []struct{ Token, State string }
		Envelopes    []struct {
			ID   string
			Fill byte
			Size int
		}
	}
	Prekeys []struct {
		Device, Bundle string
		OneTime        []string `json:"one_time"`
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRelayOnSchema1Fixture starts a relay (relay.New with DataDir) on a
// copy of the committed schema-1 database: it migrates the file, keeping
// a backup, and serves what a schema-1 relay stored. The owner of queued
// envelopes authenticates with its key and fetches them, a sender reaches
// a suspended device's mailbox, a prekey bundle can be fetched, the used
// invite stays used and an unused one enrols a device with no account;
// the suspended and revoked devices are refused.
func TestRelayOnSchema1Fixture(t *testing.T) {
	fixture, err := os.ReadFile("../testdata/relay/schema1.db")
	if err != nil {
		t.Fatal(err)
	}
	j, err := os.ReadFile("../testdata/relay/schema1.json")
	if err != nil {
		t.Fatal(err)
	}
	var m schema1Manifest
	if err := json.Unmarshal(j, &m); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, relay.DBFile), fixture, 0o600); err != nil {
		t.Fatal(err)
	}
	// The fixture's invites were made on 2026-03-01 10:00 UTC for 72 hours.
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	r, err := relay.New(relay.Config{DataDir: dir, Store: relaytest.Store(t, dir), Enrollment: relay.EnrollInvite, Now: func() time.Time { return now }, PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: r}
	go hs.Serve(l)
	url := "ws://" + l.Addr().String()
	defer func() {
		hs.Close()
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		if err := bboltstore.Check(filepath.Join(dir, relay.DBFile)); err != nil {
			t.Error(err)
		}
	}()

	if bak, err := os.ReadFile(filepath.Join(dir, relay.DBFile+fmt.Sprintf(bboltstore.BackupSuffix, 1))); err != nil || !bytes.Equal(bak, fixture) {
		t.Errorf("automatic backup: %v (or not the schema-1 file)", err)
	}

	devs := map[string]*identity.Identity{}
	ids := map[string]protocol.DeviceID{}
	for _, d := range m.Devices {
		idn, err := identity.ParseIdentitySecret(mustHex(t, d.IdentitySecret))
		if err != nil {
			t.Fatal(err)
		}
		devs[d.State] = idn
		ids[d.State] = protocol.DeviceID(mustHex(t, d.ID))
	}
	auth := func(c *client, state string) protocol.Frame {
		sig, err := devs[state].Sign(protocol.AuthContext, c.authMessage())
		if err != nil {
			t.Fatal(err)
		}
		return c.do(&protocol.Auth{Device: ids[state], Signature: sig})
	}

	// The active device fetches its queued envelopes, as stored.
	own := dial(t, url)
	wantType[*protocol.Authenticated](t, auth(own, "active"))
	snd := dial(t, url)
	fetched := 0
	for _, mb := range m.Mailboxes {
		id := protocol.MailboxID(mustHex(t, mb.ID))
		tok, err := protocol.CapabilityTokenFromBytes(mustHex(t, mb.Capabilities[0].Token))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case mb.Deleted:
			wantCode(t, snd.send(id, tok, sealed(1)), protocol.CodeUnknownCapability)
			continue
		case mb.Owner != ids["active"].String():
			// A suspended device's mailbox still receives.
			wantType[*protocol.Sent](t, snd.send(id, tok, sealed(1)))
			continue
		}
		for _, c := range mb.Capabilities[1:] {
			if c.State == "revoked" {
				tok, _ := protocol.CapabilityTokenFromBytes(mustHex(t, c.Token))
				wantCode(t, snd.send(id, tok, sealed(1)), protocol.CodeCapabilityRevoked)
			}
		}
		wantType[*protocol.OK](t, own.do(&protocol.Subscribe{Mailbox: id}))
		for _, want := range mb.Envelopes {
			d, ok := own.push().(*protocol.Deliver)
			if !ok {
				t.Fatalf("mailbox %s: want a Deliver", mb.ID[:8])
			}
			data := bytes.Repeat([]byte{want.Fill}, want.Size)
			data[0], data[1] = protocol.Version, byte(protocol.KindSealed)
			if d.ID.String() != want.ID || !bytes.Equal(d.Envelope, data) || d.Mailbox != id {
				t.Errorf("delivered %s, want %s", d.ID, want.ID)
			}
			fetched++
		}
		wantType[*protocol.Drained](t, own.push())
	}
	if fetched != 3 {
		t.Errorf("fetched %d envelopes, want the fixture's 3", fetched)
	}
	// Its bundle and oldest one-time prekey.
	for _, mb := range m.Mailboxes {
		if mb.Owner != ids["active"].String() || len(mb.Envelopes) > 0 {
			continue
		}
		tok, _ := protocol.CapabilityTokenFromBytes(mustHex(t, mb.Capabilities[0].Token))
		b := wantType[*protocol.Bundle](t, snd.do(&protocol.FetchBundle{Mailbox: protocol.MailboxID(mustHex(t, mb.ID)), Capability: tok}))
		if !bytes.Equal(b.Bundle, mustHex(t, m.Prekeys[0].Bundle)) || !bytes.Equal(b.Prekey, mustHex(t, m.Prekeys[0].OneTime[0])) {
			t.Errorf("bundle %x, prekey %x", b.Bundle[:4], b.Prekey)
		}
	}

	// Suspended and revoked devices are refused.
	for state, msg := range map[string]string{"suspended": "device suspended", "revoked": "device revoked"} {
		f := auth(dial(t, url), state)
		wantCode(t, f, protocol.CodeDeviceRevoked)
		if e := f.(*protocol.ErrorFrame); e.Msg != msg {
			t.Errorf("%s device: %q", state, e.Msg)
		}
	}

	// Invites: the used one stays used; an unused one enrols, with no
	// account.
	for _, inv := range m.Invites {
		d := newDevice(t)
		f := dial(t, url).enroll(d, inv.Code)
		if inv.Used {
			wantCode(t, f, protocol.CodeEnrollmentRefused)
			continue
		}
		wantType[*protocol.Authenticated](t, f)
		got, err := r.Store().Device(bg, deviceID(d))
		if err != nil || got.Account != "" {
			t.Errorf("enrolled with an unlabelled invite: %+v, %v", got, err)
		}
		break
	}
	accts, err := r.Accounts(bg)
	if err != nil || len(accts) != 0 {
		t.Errorf("accounts = %+v, %v", accts, err)
	}
	if _, err := r.RevokeAccount(bg, "dr.smith"); !errors.Is(err, store.ErrUnknownAccount) && (err == nil || !strings.Contains(err.Error(), "no account")) {
		t.Errorf("revoke of an account the fixture does not have = %v", err)
	}
}
