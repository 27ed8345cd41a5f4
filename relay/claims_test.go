package relay_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// claimTeam enrols a device that creates a claim space and returns its
// connection, the space and its admin and write capabilities.
func claimTeam(t testing.TB, url string) (*client, protocol.ClaimSpaceID, protocol.CapabilityToken, protocol.CapabilityToken) {
	t.Helper()
	c := dial(t, url)
	wantType[*protocol.Authenticated](t, c.enroll(newDevice(t), ""))
	admin, write := protocol.NewCapabilityToken(), protocol.NewCapabilityToken()
	sp := wantType[*protocol.ClaimSpaceCreated](t, c.do(&protocol.CreateClaimSpace{Admin: admin.Hash(), Write: write.Hash()})).Space
	return c, sp, admin, write
}

func wantState(t testing.TB, f protocol.Frame, ok bool, version uint64, value string) {
	t.Helper()
	s := wantType[*protocol.ClaimState](t, f)
	if s.OK != ok || s.Version != version || string(s.Value) != value {
		t.Fatalf("ClaimState{%v %d %q}, want {%v %d %q}", s.OK, s.Version, s.Value, ok, version, value)
	}
}

func TestClaimSpaces(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, sp, admin, write := claimTeam(t, srv.URL)
	// Set and Get need no authentication: a connection that never
	// authenticates, as for Send.
	staff := dial(t, srv.URL)
	tok := protocol.ClaimToken{1}

	wantCode(t, staff.do(&protocol.CreateClaimSpace{Admin: admin.Hash(), Write: write.Hash()}), protocol.CodeAuthRequired)
	wantState(t, staff.do(&protocol.GetClaim{Space: sp, Write: write, Token: tok}), true, 0, "")
	wantState(t, staff.do(&protocol.SetClaim{Space: sp, Write: write, Token: tok, Expected: 0, Value: []byte("owner A")}), true, 1, "owner A")
	wantState(t, staff.do(&protocol.SetClaim{Space: sp, Write: write, Token: tok, Expected: 0, Value: []byte("owner B")}), false, 1, "owner A")
	wantState(t, staff.do(&protocol.SetClaim{Space: sp, Write: write, Token: tok, Expected: 1, Value: []byte("owner B")}), true, 2, "owner B")
	wantState(t, own.do(&protocol.GetClaim{Space: sp, Write: write, Token: tok}), true, 2, "owner B")
	wantState(t, staff.do(&protocol.SetClaim{Space: sp, Write: write, Token: tok, Expected: 2, Value: bytes.Repeat([]byte{7}, protocol.MaxClaimValue)}), true, 3, string(bytes.Repeat([]byte{7}, protocol.MaxClaimValue)))

	wantCode(t, staff.do(&protocol.SetClaim{Space: sp, Write: admin, Token: tok, Expected: 3}), protocol.CodeClaimCapability)
	wantCode(t, staff.do(&protocol.GetClaim{Space: sp, Write: protocol.NewCapabilityToken(), Token: tok}), protocol.CodeClaimCapability)
	wantCode(t, staff.do(&protocol.GetClaim{Space: protocol.NewClaimSpaceID(), Write: write, Token: tok}), protocol.CodeUnknownClaimSpace)
	wantCode(t, staff.do(&protocol.UpdateClaimSpace{Space: sp, Admin: write, Op: protocol.ClaimSpaceDelete}), protocol.CodeClaimCapability)

	// A staff member is removed: the admins replace the write capability,
	// and the old one is refused from the moment of the OK.
	write2 := protocol.NewCapabilityToken()
	wantType[*protocol.OK](t, dial(t, srv.URL).do(&protocol.UpdateClaimSpace{Space: sp, Admin: admin, Op: protocol.ClaimSpaceSetWrite, Hash: write2.Hash()}))
	wantCode(t, staff.do(&protocol.SetClaim{Space: sp, Write: write, Token: tok, Expected: 3}), protocol.CodeClaimCapability)
	wantCode(t, staff.do(&protocol.GetClaim{Space: sp, Write: write, Token: tok}), protocol.CodeClaimCapability)
	wantState(t, staff.do(&protocol.SetClaim{Space: sp, Write: write2, Token: tok, Expected: 3, Value: []byte("owner C")}), true, 4, "owner C")
	// An admin is removed likewise.
	admin2 := protocol.NewCapabilityToken()
	wantType[*protocol.OK](t, own.do(&protocol.UpdateClaimSpace{Space: sp, Admin: admin, Op: protocol.ClaimSpaceSetAdmin, Hash: admin2.Hash()}))
	wantCode(t, own.do(&protocol.UpdateClaimSpace{Space: sp, Admin: admin, Op: protocol.ClaimSpaceDelete}), protocol.CodeClaimCapability)
	wantType[*protocol.OK](t, own.do(&protocol.UpdateClaimSpace{Space: sp, Admin: admin2, Op: protocol.ClaimSpaceDelete}))
	wantCode(t, staff.do(&protocol.GetClaim{Space: sp, Write: write2, Token: tok}), protocol.CodeUnknownClaimSpace)

	// Spaces per device: the deleted one gave its place back.
	for i := range protocol.MaxClaimSpacesPerDevice {
		wantType[*protocol.ClaimSpaceCreated](t, own.do(&protocol.CreateClaimSpace{Admin: admin.Hash(), Write: protocol.CapabilityHash{byte(i)}}))
	}
	wantCode(t, own.do(&protocol.CreateClaimSpace{Admin: admin.Hash(), Write: write.Hash()}), protocol.CodeClaimLimit)

	// A value above MaxClaimValue does not parse: the connection ends.
	var raw []byte
	raw = append(raw, byte(protocol.TypeSetClaim), 0, 0, 0, 9)
	raw = append(raw, sp[:]...)
	raw = append(raw, write2.SecretBytes()...)
	raw = append(raw, tok[:]...)
	raw = append(raw, make([]byte, 8)...)
	raw = binary.BigEndian.AppendUint16(raw, protocol.MaxClaimValue+1)
	raw = append(raw, make([]byte, protocol.MaxClaimValue+1)...)
	if err := staff.ws.Write(bg, websocket.MessageBinary, raw); err != nil {
		t.Fatal(err)
	}
	wantCode(t, staff.answer(0), protocol.CodeMalformed)
}

// claim sends one SetClaim and reads its answer without the testing.T
// (for goroutines).
func claim(c *client, id uint32, f *protocol.SetClaim) (*protocol.ClaimState, error) {
	ctx, cancel := context.WithTimeout(bg, 60*time.Second) // a hang guard
	defer cancel()
	if err := c.conn.WriteFrame(ctx, id, f); err != nil {
		return nil, err
	}
	rid, fr, err := c.conn.ReadFrame(ctx)
	if err != nil {
		return nil, err
	}
	s, ok := fr.(*protocol.ClaimState)
	if rid != id || !ok {
		return nil, fmt.Errorf("answer %d %T %+v to request %d", rid, fr, fr, id)
	}
	return s, nil
}

// Three staff with two devices each claim the same conversation at the
// same moment, 100 times over: exactly one claim wins each time, every
// device is told the same owner, and a later read agrees. Half the rounds
// claim a new conversation (from version 0), half take over the previous
// one from the version all devices saw.
func TestClaimRace(t *testing.T) {
	srv := relaytest.New(t, nil)
	_, sp, _, write := claimTeam(t, srv.URL)
	const devices, rounds = 6, 100
	conns := make([]*client, devices)
	for i := range conns {
		conns[i] = dial(t, srv.URL)
	}
	var tok protocol.ClaimToken
	var version uint64
	for round := range rounds {
		if round%2 == 0 {
			tok = protocol.ClaimToken{byte(round), byte(round >> 8), 0xcc}
			version = 0
		}
		start := make(chan struct{})
		states := make([]*protocol.ClaimState, devices)
		errs := make([]error, devices)
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Go(func() {
				<-start
				states[i], errs[i] = claim(c, uint32(round+1), &protocol.SetClaim{Space: sp, Write: write, Token: tok, Expected: version, Value: []byte(fmt.Sprintf("device %d", i))})
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		var owner string
		for i, s := range states {
			if errs[i] != nil {
				t.Fatalf("round %d, device %d: %v", round, i, errs[i])
			}
			if s.OK {
				winners++
				owner = string(s.Value)
			}
		}
		if winners != 1 {
			t.Fatalf("round %d: %d claims won, want exactly 1", round, winners)
		}
		for i, s := range states {
			if s.Version != version+1 || string(s.Value) != owner {
				t.Fatalf("round %d: device %d sees {%d %q}, winner {%d %q}", round, i, s.Version, s.Value, version+1, owner)
			}
		}
		version++
		wantState(t, conns[round%devices].do(&protocol.GetClaim{Space: sp, Write: write, Token: tok}), true, version, owner)
	}
}

// A claim survives a restart of the relay: version and value are read
// back, and a set from a stale version still loses.
func TestClaimsSurviveRestart(t *testing.T) {
	srv := relaytest.New(t, nil)
	_, sp, admin, write := claimTeam(t, srv.URL)
	tok := protocol.ClaimToken{9}
	c := dial(t, srv.URL)
	wantState(t, c.do(&protocol.SetClaim{Space: sp, Write: write, Token: tok, Value: []byte("first")}), true, 1, "first")
	wantState(t, c.do(&protocol.SetClaim{Space: sp, Write: write, Token: tok, Expected: 1, Value: []byte("second")}), true, 2, "second")
	write2 := protocol.NewCapabilityToken()
	wantType[*protocol.OK](t, c.do(&protocol.UpdateClaimSpace{Space: sp, Admin: admin, Op: protocol.ClaimSpaceSetWrite, Hash: write2.Hash()}))
	srv.Restart()
	c = dial(t, srv.URL)
	wantState(t, c.do(&protocol.GetClaim{Space: sp, Write: write2, Token: tok}), true, 2, "second")
	wantState(t, c.do(&protocol.SetClaim{Space: sp, Write: write2, Token: tok, Expected: 1, Value: []byte("stale")}), false, 2, "second")
	wantCode(t, c.do(&protocol.GetClaim{Space: sp, Write: write, Token: tok}), protocol.CodeClaimCapability)
}

// Each revocation reason refuses Send and FetchBundle with its own code,
// through a restart; a revocation without the reason byte (as every
// client before reasons sent it) still blocks with code 23; re-adding the
// capability lifts any of them.
func TestRevokeReasons(t *testing.T) {
	srv := relaytest.New(t, nil)
	own, dev, mb, _ := owner(t, srv.URL)
	anon := dial(t, srv.URL)
	want := map[protocol.RevokeReason]protocol.Code{
		protocol.RevokeBlocked:           protocol.CodeCapabilityRevoked,
		protocol.RevokeRestrictedService: protocol.CodeRestrictedService,
		protocol.RevokeRestrictedNew:     protocol.CodeRestrictedNew,
		protocol.RevokeRestrictedReplies: protocol.CodeRestrictedReplies,
	}
	toks := map[protocol.RevokeReason]protocol.CapabilityToken{}
	for r := range want {
		tok := protocol.NewCapabilityToken()
		toks[r] = tok
		wantType[*protocol.OK](t, own.do(&protocol.AddCapability{Mailbox: mb, Hash: tok.Hash()}))
		wantType[*protocol.Sent](t, anon.send(mb, tok, sealed(1)))
		if r == protocol.RevokeBlocked {
			// The old encoding: no reason byte at all.
			var raw []byte
			raw = append(raw, byte(protocol.TypeRevokeCapability), 0, 0, 0, 77)
			h := tok.Hash()
			raw = append(append(raw, mb[:]...), h[:]...)
			if err := own.ws.Write(bg, websocket.MessageBinary, raw); err != nil {
				t.Fatal(err)
			}
			wantType[*protocol.OK](t, own.answer(77))
			continue
		}
		wantType[*protocol.OK](t, own.do(&protocol.RevokeCapability{Mailbox: mb, Hash: tok.Hash(), Reason: r}))
	}
	check := func() {
		t.Helper()
		for r, code := range want {
			wantCode(t, anon.send(mb, toks[r], sealed(2)), code)
			wantCode(t, anon.do(&protocol.FetchBundle{Mailbox: mb, Capability: toks[r]}), code)
		}
	}
	check()
	srv.Restart()
	own = dial(t, srv.URL)
	wantType[*protocol.Authenticated](t, own.auth(dev))
	anon = dial(t, srv.URL)
	check()
	for r := range want {
		wantType[*protocol.OK](t, own.do(&protocol.AddCapability{Mailbox: mb, Hash: toks[r].Hash()}))
		wantType[*protocol.Sent](t, anon.send(mb, toks[r], sealed(3)))
	}
}
