package relay

import (
	"github.com/postern/postern/protocol"
)

// Claim spaces (protocol/SPEC.md section 10 "Claim spaces"): per team
// queue, compare-and-set registers the relay keeps without knowing what
// they stand for. Creating a space needs an authenticated device (spaces
// are counted per device); changing it needs its admin capability, and
// setting or reading a register its write capability, on any connection:
// like Send, a claim names no device, so the relay learns which
// connection a write came on and nothing more. The store compares
// capability hashes in constant time and keeps tokens only as hashes.

// claimRequest answers the claim-space frames.
func (c *conn) claimRequest(id uint32, f protocol.Frame) {
	st, ctx := c.r.st, c.ctx
	switch f := f.(type) {
	case *protocol.CreateClaimSpace:
		if !c.authed {
			c.refuse(id, protocol.CodeAuthRequired, "authenticate first")
			return
		}
		sp := protocol.NewClaimSpaceID()
		if err := st.CreateClaimSpace(ctx, c.device, sp, f.Admin, f.Write); err != nil {
			c.storeRefusal(id, err)
			return
		}
		c.log.Info("claim space created", "space", sp.Short())
		c.send(id, &protocol.ClaimSpaceCreated{Space: sp})
	case *protocol.UpdateClaimSpace:
		if err := st.UpdateClaimSpace(ctx, f.Space, f.Admin.Hash(), f.Op, f.Hash); err != nil {
			c.storeRefusal(id, err)
			return
		}
		c.log.Info("claim space changed", "space", f.Space.Short(), "op", uint8(f.Op))
		c.send(id, &protocol.OK{})
	case *protocol.SetClaim:
		// Durable before the answer: SetClaim returns once its write
		// committed (one group commit with the relay's other writes).
		cl, ok, err := st.SetClaim(ctx, f.Space, f.Write.Hash(), f.Token.Hash(), f.Expected, f.Value)
		if err != nil {
			c.storeRefusal(id, err)
			return
		}
		c.send(id, &protocol.ClaimState{OK: ok, Version: cl.Version, Value: cl.Value})
	case *protocol.GetClaim:
		cl, err := st.GetClaim(ctx, f.Space, f.Write.Hash(), f.Token.Hash())
		if err != nil {
			c.storeRefusal(id, err)
			return
		}
		c.send(id, &protocol.ClaimState{OK: true, Version: cl.Version, Value: cl.Value})
	}
}
