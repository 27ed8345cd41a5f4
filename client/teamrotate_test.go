package client

import (
	"context"
	"crypto/rand"
	"sync"
	"testing"

	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/protocol"
)

// claimWrite writes a register of its own (a random claim token) in
// team record rec's claim space with the write capability rec holds,
// over c's unauthenticated connection: what any holder of the capability
// can do, whatever its client does.
func claimWrite(ctx context.Context, c *Client, rec *store.TeamRecord) error {
	write, err := protocol.CapabilityTokenFromBytes(rec.WriteCap)
	if err != nil {
		return err
	}
	var tok protocol.ClaimToken
	rand.Read(tok[:])
	_, err = c.anonRequest(ctx, rec.Relay, "test", &protocol.SetClaim{Space: protocol.ClaimSpaceID(rec.Space), Write: write, Token: tok, Value: []byte{1}})
	return err
}

// TestTeamRevokedStaffRotationRetried: ann revokes her second device; the
// intake drops it from the staff group, and the relay goes down just as
// the intake asks it to replace the claim space's write capability. The
// replacement stays owed across a restart of the intake: the revoked
// device's capability still writes while the relay is back and the
// intake is away, and once the intake flushes the relay refuses it, the
// team has one new key epoch (not two), and ann's remaining device,
// which got the new secrets, claims the patient's conversation.
func TestTeamRevokedStaffRotationRetried(t *testing.T) {
	t.Parallel()
	f := newTeamFixtureStaff(t, 1)
	ctx := testCtx(t)
	ann := f.staff[0]
	if _, err := f.pat.Send(ctx, "Pharmacy", "Can I get a refill?"); err != nil {
		t.Fatal(err)
	}
	syncAll(t, 1, f.intake)
	id := queueOf(t, ann[0], "pat").ID
	f.settleQueue(t, id)

	// What the revoked device holds, taken before it wipes itself.
	revoked := teamRecordOf(t, ann[1])
	before := teamRecordOf(t, f.intake)
	if err := claimWrite(ctx, f.pat, revoked); err != nil {
		t.Fatalf("the staff device's write capability before the revoke: %v", err)
	}

	stopped := make(chan struct{})
	var once sync.Once
	hook := func() { once.Do(func() { f.srv.Stop(); close(stopped) }) }
	f.intake.rotateHook.Store(&hook)
	if _, err := ann[0].RevokeDevice(ctx, "ann-2"); err != nil {
		t.Fatal(err)
	}
	// The rounds are a hang guard: the intake learns of the revoke from
	// ann's device list, publishes the staff group without the device,
	// and then tries the replacement. A Sync waits for a relay that is
	// down: each ends when the relay is stopped.
	syncUntilStopped := func(c *Client) {
		sctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-stopped:
				cancel()
			case <-sctx.Done():
			}
		}()
		c.Sync(sctx) // errors: the relay may be down already
	}
	for round := 0; ; round++ {
		select {
		case <-stopped:
		default:
			if round == 10 {
				t.Fatal("the intake never tried to replace the team's secrets")
			}
			syncUntilStopped(ann[0])
			syncUntilStopped(f.intake)
			continue
		}
		break
	}
	home := f.intake.home
	f.intake.rotateHook.Store(nil)
	f.intake.Close() // waits for the failed replacement
	f.srv.Start()
	if err := claimWrite(ctx, f.pat, revoked); err != nil {
		t.Fatalf("the revoked device's write capability after the failed replacement: %v", err)
	}

	intake := dial(t, home)
	var last error
	for range 8 {
		syncAll(t, 1, intake, ann[0])
		last = claimWrite(ctx, f.pat, revoked)
		if protocol.IsCode(last, protocol.CodeClaimCapability) && teamRecordOf(t, ann[0]).Secrets > before.Secrets {
			break
		}
	}
	if !protocol.IsCode(last, protocol.CodeClaimCapability) {
		t.Fatalf("the revoked device's write capability after the intake's flush: %v", last)
	}
	after := teamRecordOf(t, intake)
	if after.RotateOwed || after.Secrets != before.Secrets+1 || len(after.Keys) != len(before.Keys)+1 {
		t.Fatalf("the intake's team: owed %v, secrets %d (before %d), %d key epochs (before %d)",
			after.RotateOwed, after.Secrets, before.Secrets, len(after.Keys), len(before.Keys))
	}
	if got := teamRecordOf(t, ann[0]); got.Secrets != after.Secrets {
		t.Fatalf("ann's device holds the team's secrets %d, want %d", got.Secrets, after.Secrets)
	}
	if _, err := ann[0].Claim(ctx, id); err != nil {
		t.Fatalf("the remaining staff device's claim: %v", err)
	}
}
