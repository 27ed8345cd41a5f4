package bboltstore

import (
	"errors"
	"testing"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// TestRevokeDevice: revocation deletes the device's mailboxes with their
// queues and capabilities, its bundle and prekeys, and nothing of another
// device; the device cannot enrol again.
func TestRevokeDevice(t *testing.T) {
	s, _ := openTest(t)
	other := protocol.DeviceID{9}
	for _, id := range []protocol.DeviceID{ownr, other} {
		if _, err := s.EnrollDevice(ctx, store.Device{ID: id, PublicKey: []byte{1}, Enrolled: t0}, nil, t0); err != nil {
			t.Fatal(err)
		}
	}
	mb, h := mailboxWithCap(t, s)
	mb2, _ := mailboxWithCap(t, s)
	for range 3 {
		if _, err := s.Append(ctx, envelope(mb, t0), h); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.PublishPrekeys(ctx, ownr, []byte("bundle"), [][]byte{{1}, {2}}); err != nil {
		t.Fatal(err)
	}
	keep := protocol.NewMailboxID()
	if err := s.CreateMailbox(ctx, other, keep); err != nil {
		t.Fatal(err)
	}
	if err := s.PublishPrekeys(ctx, other, []byte("b"), [][]byte{{3}}); err != nil {
		t.Fatal(err)
	}

	if err := s.RevokeDevice(ctx, ownr); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeDevice(ctx, ownr); err != nil {
		t.Errorf("revoking again = %v", err)
	}
	for _, m := range []protocol.MailboxID{mb, mb2} {
		if _, err := s.MailboxOwner(ctx, m); !errors.Is(err, store.ErrUnknownMailbox) {
			t.Errorf("mailbox of revoked device: %v", err)
		}
		if envs, err := s.Range(ctx, m, 0, 100); err != nil || len(envs) != 0 {
			t.Errorf("queued envelopes after revocation: %d, %v", len(envs), err)
		}
	}
	if err := s.CheckCapability(ctx, mb, h); !errors.Is(err, store.ErrUnknownCapability) {
		t.Errorf("capability after revocation = %v", err)
	}
	if n, has, err := s.PrekeyStatus(ctx, ownr); n != 0 || has || err != nil {
		t.Errorf("prekeys after revocation: %d, %v, %v", n, has, err)
	}
	if n, has, _ := s.PrekeyStatus(ctx, other); n != 1 || !has {
		t.Errorf("other device's prekeys: %d, %v", n, has)
	}
	if _, err := s.MailboxOwner(ctx, keep); err != nil {
		t.Errorf("other device's mailbox: %v", err)
	}
	if _, err := s.EnrollDevice(ctx, store.Device{ID: ownr, PublicKey: []byte{1}, Enrolled: t0}, nil, t0); !errors.Is(err, store.ErrDeviceRevoked) {
		t.Errorf("re-enrol revoked = %v", err)
	}
	if err := s.SuspendDevice(ctx, ownr, false); !errors.Is(err, store.ErrDeviceRevoked) {
		t.Errorf("restore revoked = %v", err)
	}
	if err := s.RevokeDevice(ctx, protocol.DeviceID{77}); !errors.Is(err, store.ErrUnknownDevice) {
		t.Errorf("revoke unknown = %v", err)
	}
}

func TestSuspendSeenList(t *testing.T) {
	s, _ := openTest(t)
	if _, err := s.EnrollDevice(ctx, store.Device{ID: ownr, PublicKey: []byte{1}, Enrolled: t0}, nil, t0); err != nil {
		t.Fatal(err)
	}
	mb, h := mailboxWithCap(t, s)
	if err := s.SuspendDevice(ctx, ownr, true); err != nil {
		t.Fatal(err)
	}
	d, _ := s.Device(ctx, ownr)
	if !d.Suspended || d.Revoked {
		t.Errorf("suspended device = %+v", d)
	}
	if _, err := s.EnrollDevice(ctx, store.Device{ID: ownr, PublicKey: []byte{1}, Enrolled: t0}, nil, t0); !errors.Is(err, store.ErrDeviceSuspended) {
		t.Errorf("enrol suspended = %v", err)
	}
	// A suspended device keeps its data: senders still queue.
	if _, err := s.Append(ctx, envelope(mb, t0), h); err != nil {
		t.Errorf("append to a suspended device's mailbox = %v", err)
	}
	if err := s.SuspendDevice(ctx, ownr, false); err != nil {
		t.Fatal(err)
	}
	later := t0.Add(50 * time.Hour)
	if err := s.DeviceSeen(ctx, ownr, later); err != nil {
		t.Fatal(err)
	}
	if err := s.DeviceSeen(ctx, protocol.DeviceID{5}, later); !errors.Is(err, store.ErrUnknownDevice) {
		t.Errorf("seen unknown = %v", err)
	}
	devs, err := s.Devices(ctx)
	if err != nil || len(devs) != 1 {
		t.Fatalf("Devices = %v, %v", devs, err)
	}
	d = devs[0]
	if d.Suspended || d.Revoked || !d.Enrolled.Equal(t0.Truncate(24*time.Hour)) || !d.LastSeen.Equal(later.Truncate(24*time.Hour)) {
		t.Errorf("listed %+v", d)
	}
}

func TestRevokeInvite(t *testing.T) {
	s, _ := openTest(t)
	a, b := store.InviteHash{1}, store.InviteHash{2}
	s.AddInvites(ctx, []store.InviteHash{a, b}, t0.Add(time.Hour), "")
	if _, err := s.EnrollDevice(ctx, store.Device{ID: ownr, PublicKey: []byte{1}, Enrolled: t0}, &b, t0); err != nil {
		t.Fatal(err)
	}
	if used, err := s.RevokeInvite(ctx, a); used || err != nil {
		t.Errorf("revoke unused = %v, %v", used, err)
	}
	if _, err := s.EnrollDevice(ctx, store.Device{ID: protocol.DeviceID{4}, PublicKey: []byte{1}, Enrolled: t0}, &a, t0); !errors.Is(err, store.ErrEnrollmentRefused) {
		t.Errorf("enrol with revoked invite = %v", err)
	}
	if used, err := s.RevokeInvite(ctx, b); !used || err != nil {
		t.Errorf("revoke used = %v, %v", used, err)
	}
	if _, err := s.RevokeInvite(ctx, a); !errors.Is(err, store.ErrUnknownInvite) {
		t.Errorf("revoke twice = %v", err)
	}
}
