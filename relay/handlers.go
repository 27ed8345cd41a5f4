package relay

import (
	"errors"
	"fmt"
	"time"

	"github.com/coder/websocket"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// handle answers one frame. It returns false when the connection must end.
func (c *conn) handle(b []byte) bool {
	if !c.allow() {
		c.rateLimited(requestID(b), "frames", time.Second, fmt.Sprintf("over the frame limit: %d frames per second, in bursts of at most %d", int(c.frames.Limit()), c.frames.Burst()))
		return true
	}
	id, f, err := protocol.Parse(b)
	if err != nil {
		var unknown *protocol.UnknownTypeError
		if errors.As(err, &unknown) {
			c.refuse(requestID(b), protocol.CodeUnknownFrame, fmt.Sprintf("unknown frame type 0x%02x", uint8(unknown.Type)))
			return true
		}
		// Garbage: the peer does not speak the protocol. Say why, then
		// close this connection only.
		c.log.Info("malformed frame", "err", err)
		c.refuse(0, protocol.CodeMalformed, err.Error())
		c.closeWith(websocket.StatusPolicyViolation, "malformed frame", true)
		return false
	}
	switch f := f.(type) {
	case *protocol.Enroll:
		c.enroll(id, f)
	case *protocol.Auth:
		c.auth(id, f)
	case *protocol.FetchBundle:
		c.fetchBundle(id, f)
	case *protocol.Send:
		c.sendEnvelope(id, f)
	case *protocol.CreateClaimSpace, *protocol.UpdateClaimSpace, *protocol.SetClaim, *protocol.GetClaim:
		c.claimRequest(id, f) // claims.go
	case *protocol.FetchDeviceList: // kt.go
		c.fetchDeviceList(id, f)
	case *protocol.FetchLogKey:
		c.fetchLogKey(id)
	case *protocol.CreateFanout, *protocol.UpdateFanout, *protocol.SendFanout: // fanout.go
		c.fanoutRequest(id, f)
	case *protocol.PublishDeviceList:
		if !c.authed {
			c.refuse(id, protocol.CodeAuthRequired, "authenticate first")
			return true
		}
		c.publishDeviceList(id, f)
	case *protocol.FetchDirectory: // directory.go
		c.fetchDirectory(id, f)
	case *protocol.PublishDirectory:
		if !c.authed {
			c.refuse(id, protocol.CodeAuthRequired, "authenticate first")
			return true
		}
		c.publishDirectory(id, f)
	case *protocol.CreateMailbox, *protocol.AddCapability, *protocol.RevokeCapability,
		*protocol.PublishPrekeys, *protocol.Subscribe, *protocol.Ack,
		*protocol.GetPrekeyStatus, *protocol.DeleteMailbox, *protocol.CreateBlob:
		if !c.authed {
			c.refuse(id, protocol.CodeAuthRequired, "authenticate first")
			return true
		}
		c.ownerRequest(id, f)
	default:
		// A relay frame sent to the relay.
		c.refuse(id, protocol.CodeUnknownFrame, fmt.Sprintf("frame type 0x%02x is not a request", uint8(f.Type())))
	}
	return true
}

// fetchBundle answers FetchBundle, at most Config.BundleFetchBurst at once
// and Config.BundleFetchesPerHour per capability: each fetch hands out a
// one-time prekey, and a real sender fetches a bundle only when it starts
// a session. A fetch the store refuses (an unknown or revoked capability)
// gives its token back, so that guessing costs no capability its
// allowance and the table holds only capabilities that exist.
func (c *conn) fetchBundle(id uint32, f *protocol.FetchBundle) {
	h := f.Capability.Hash()
	now := c.r.cfg.Now()
	ok, wait := c.r.fetches.take(h, now)
	if !ok {
		c.rateLimited(id, "bundle fetches", wait, fmt.Sprintf("too many bundle fetches with this capability; retry after %d s", retryAfterSeconds(wait)))
		return
	}
	bundle, prekey, err := c.r.st.FetchBundle(c.ctx, f.Mailbox, h)
	if err != nil {
		c.r.fetches.give(h, now) // nothing was handed out
		c.storeRefusal(id, err)
		return
	}
	c.send(id, &protocol.Bundle{Bundle: bundle, Prekey: prekey})
}

// rateLimited answers a request refused by a rate limit: counted, logged
// sampled (one line per interval for the whole relay, not one per
// refusal), and the message says when to retry.
func (c *conn) rateLimited(id uint32, what string, wait time.Duration, msg string) {
	c.r.cfg.Metrics.RateLimited()
	c.r.refusals.log(c.r.log, c.r.cfg.Now(), "requests refused by a rate limit", "limit", what, "retry_after_s", retryAfterSeconds(wait))
	if msg != "" {
		c.refuse(id, protocol.CodeRateLimited, msg)
	}
}

// retryAfterSeconds rounds a wait up to whole seconds, at least one.
func retryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

func (c *conn) storeRefusal(id uint32, err error) {
	code := storeCode(err)
	if code == protocol.CodeInternal {
		c.log.Error("store failed", "err", err)
		c.refuse(id, code, "relay storage failed; nothing was changed")
		return
	}
	if code == protocol.CodeStorageFull {
		c.refuse(id, code, "the relay's disk is full; nothing was stored; try again later")
		return
	}
	c.refuse(id, code, "")
}

func (c *conn) verify(pub *keys.SigningPublicKey, sig []byte) error {
	var err error
	offStack(func() { err = pub.Verify(protocol.AuthContext, protocol.AuthMessage(c.nonce, c.host), sig) })
	return err
}

// parseKey parses a device's signing public key, off the reader's stack.
func parseKey(b []byte) (pub *keys.SigningPublicKey, err error) {
	offStack(func() { pub, err = keys.ParseSigningPublicKey(b) })
	return pub, err
}

// offStack runs f on a short-lived goroutine and waits for it. Parsing and
// verifying an ML-DSA-65 key and signature take tens of KiB of stack; on
// the connection's reader goroutine that stack would stay with the
// connection for its whole life (Go shrinks a stack only during a GC, and
// halves it at most once per GC), more than doubling what an idle
// connection costs (BenchmarkIdleConnections in cmd/postern-relay).
func offStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

func (c *conn) enroll(id uint32, f *protocol.Enroll) {
	if c.authed {
		c.refuse(id, protocol.CodeAlreadyAuthed, "")
		return
	}
	pub, err := parseKey(f.DeviceKey)
	if err != nil {
		c.authFailed(id, protocol.CodeAuthFailed, "device key does not parse")
		return
	}
	if err := c.verify(pub, f.Signature); err != nil {
		c.authFailed(id, protocol.CodeAuthFailed, "signature over the challenge does not verify")
		return
	}
	var invite *store.InviteHash
	if c.r.set().enrollment == EnrollInvite {
		if f.Invite == "" {
			c.authFailed(id, protocol.CodeEnrollmentRefused, "this relay requires an invite code")
			return
		}
		h := InviteHash(f.Invite)
		invite = &h
	}
	now := c.r.cfg.Now()
	dev := store.Device{ID: protocol.DeviceID(pub.Fingerprint()), PublicKey: pub.Bytes(), Enrolled: now}
	_, known := c.r.st.Device(c.ctx, dev.ID) // audit only a first enrolment
	stored, err := c.r.st.EnrollDevice(c.ctx, dev, invite, now)
	if err != nil {
		if errors.Is(err, store.ErrEnrollmentRefused) {
			c.authFailed(id, protocol.CodeEnrollmentRefused, "invite code unknown, used or expired")
			return
		}
		if errors.Is(err, store.ErrDeviceSuspended) {
			c.refuse(id, protocol.CodeDeviceRevoked, reasonSuspended)
			return
		}
		c.storeRefusal(id, err)
		return
	}
	if reason, ok := c.admit(stored); !ok {
		c.refuse(id, protocol.CodeDeviceRevoked, reason)
		return
	}
	c.authOK(dev.ID)
	c.log.Info("device enrolled", "device", dev.ID.Short())
	if known != nil {
		c.r.auditDevice(auditDeviceEnrolled, dev.ID)
	}
	c.send(id, &protocol.Authenticated{Device: dev.ID})
}

func (c *conn) auth(id uint32, f *protocol.Auth) {
	if c.authed {
		c.refuse(id, protocol.CodeAlreadyAuthed, "")
		return
	}
	dev, err := c.r.st.Device(c.ctx, f.Device)
	if errors.Is(err, store.ErrUnknownDevice) {
		c.authFailed(id, protocol.CodeUnknownDevice, "")
		return
	}
	if err != nil {
		c.storeRefusal(id, err)
		return
	}
	if dev.Revoked {
		c.refuse(id, protocol.CodeDeviceRevoked, reasonRevoked)
		return
	}
	if dev.Suspended {
		c.refuse(id, protocol.CodeDeviceRevoked, reasonSuspended)
		return
	}
	pub, err := parseKey(dev.PublicKey)
	if err != nil {
		c.log.Error("stored device key does not parse", "device", dev.ID.Short())
		c.refuse(id, protocol.CodeInternal, "")
		return
	}
	if err := c.verify(pub, f.Signature); err != nil {
		c.authFailed(id, protocol.CodeAuthFailed, "signature over the challenge does not verify")
		return
	}
	if reason, ok := c.admit(dev); !ok {
		c.refuse(id, protocol.CodeDeviceRevoked, reason)
		return
	}
	c.authOK(dev.ID)
	c.log.Info("device authenticated", "device", dev.ID.Short())
	c.send(id, &protocol.Authenticated{Device: dev.ID})
}

// authOK records a successful authentication: the connection's upgrade
// gives its per-address token back, and its queued bytes count against
// the device from now on.
func (c *conn) authOK(dev protocol.DeviceID) {
	c.r.authenticated(c.adm)
	c.adm.probation = false
	c.r.budget.attach(c, dev)
}

// authFailed answers a failed Enroll or Auth and counts it: a connection
// is closed after MaxAuthFailuresPerConn failures; an address that has
// used up Config.AuthFailuresPerAddress (or whose connection is on
// probation) has each failure answered after authFailurePenalty, then the
// connection closed. Success is never delayed, so clients behind the same
// address as a failing one are slowed by nothing but its share of the
// relay's CPU.
func (c *conn) authFailed(id uint32, code protocol.Code, msg string) {
	c.authFailures++
	now := c.r.cfg.Now()
	slow := c.adm.probation
	if c.adm.key.IsValid() {
		if ok, _ := c.r.authFails.take(c.adm.key, now); !ok {
			slow = true
		}
	}
	if slow {
		penalty := authFailurePenalty.get()
		c.rateLimited(0, "authentication failures", penalty, "")
		t := time.NewTimer(penalty)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
		c.refuse(id, code, msg)
		c.closeWith(websocket.StatusPolicyViolation, "too many authentication failures from this address", true)
		return
	}
	c.refuse(id, code, msg)
	if c.authFailures >= MaxAuthFailuresPerConn {
		c.closeWith(websocket.StatusPolicyViolation, "too many authentication failures", true)
	}
}

func (c *conn) sendEnvelope(id uint32, f *protocol.Send) {
	h := f.Capability.Hash()
	// Capability first: a sender without one learns nothing else.
	if err := c.r.st.CheckCapability(c.ctx, f.Mailbox, h); err != nil {
		c.storeRefusal(id, err)
		return
	}
	if err := protocol.CheckEnvelope(f.Envelope); err != nil {
		c.refuse(id, protocol.CodeBadEnvelope, err.Error())
		return
	}
	e := c.newEnvelope(f.Mailbox, f.Envelope)
	c.durably(func() {
		// Append returns only once the envelope is durable; only then is
		// the sender told.
		e, err := c.r.st.Append(c.ctx, e, h) // assigns the envelope's ID
		if err != nil {
			c.storeRefusal(id, err)
			return
		}
		// Counted before the wake, so that the delivery it causes finds
		// the commit time.
		c.r.cfg.Metrics.Sent(e.ID, c.r.hub.subscribed(f.Mailbox))
		c.r.hub.wake(f.Mailbox)
		c.send(id, &protocol.Sent{Envelope: e.ID})
	})
}

// newEnvelope is what the relay stores of envelope data sent now to mb
// (the zero mailbox for a fan-out's copies, each given its own).
func (c *conn) newEnvelope(mb protocol.MailboxID, data []byte) store.Envelope {
	received := c.r.cfg.Now().UTC().Truncate(protocol.TimeGranularity)
	return store.Envelope{Mailbox: mb, Received: received, Expires: received.Add(c.r.set().retention), Data: data}
}

// durably runs write, which makes a send durable and answers it, off the
// read loop once the connection has a pipelining slot: backpressure on a
// client that pipelines more than MaxPipelinedSends sends and fan-outs.
func (c *conn) durably(write func()) {
	select {
	case c.sends <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	c.pending.Add(1)
	go func() {
		defer func() { <-c.sends; c.pending.Done() }()
		write()
	}()
}

// ownerRequest handles the requests of an authenticated device.
func (c *conn) ownerRequest(id uint32, f protocol.Frame) {
	st, ctx, dev := c.r.st, c.ctx, c.device
	var err error
	switch f := f.(type) {
	case *protocol.CreateMailbox:
		mb := protocol.NewMailboxID()
		if err = st.CreateMailbox(ctx, dev, mb); err == nil {
			c.log.Info("mailbox created", "mailbox", mb.Short())
			c.send(id, &protocol.MailboxCreated{Mailbox: mb})
			return
		}
	case *protocol.DeleteMailbox:
		if err = st.DeleteMailbox(ctx, dev, f.Mailbox); err == nil {
			if s := c.subs[f.Mailbox]; s != nil {
				c.r.hub.remove(s)
				delete(c.subs, f.Mailbox)
			}
			c.log.Info("mailbox deleted", "mailbox", f.Mailbox.Short())
		}
	case *protocol.AddCapability:
		err = st.AddCapability(ctx, dev, f.Mailbox, f.Hash)
	case *protocol.RevokeCapability:
		if err = st.RevokeCapability(ctx, dev, f.Mailbox, f.Hash, f.Reason); err == nil {
			c.log.Info("capability revoked", "mailbox", f.Mailbox.Short(), "reason", uint8(f.Reason))
		}
	case *protocol.PublishPrekeys:
		err = st.PublishPrekeys(ctx, dev, f.Bundle, f.Prekeys)
	case *protocol.GetPrekeyStatus:
		n, has, err := st.PrekeyStatus(ctx, dev)
		if err != nil {
			c.storeRefusal(id, err)
			return
		}
		c.send(id, &protocol.PrekeyStatus{Count: uint32(n), HasBundle: has})
		return
	case *protocol.Subscribe:
		if err = c.checkOwner(f.Mailbox); err == nil {
			if c.subs[f.Mailbox] == nil {
				c.subscribe(id, f.Mailbox)
				return
			}
		}
	case *protocol.CreateBlob:
		c.createBlob(id, f)
		return
	case *protocol.Ack:
		if err = c.checkOwner(f.Mailbox); err == nil {
			var deleted int
			if deleted, err = st.Ack(ctx, f.Mailbox, f.IDs); err == nil {
				c.r.cfg.Metrics.Acked(deleted)
				// Durable: free the window of every subscription.
				c.r.hub.acked(f.Mailbox, f.IDs)
			}
		}
	}
	if err != nil {
		c.storeRefusal(id, err)
		return
	}
	c.send(id, &protocol.OK{})
}

func (c *conn) checkOwner(mb protocol.MailboxID) error {
	owner, err := c.r.st.MailboxOwner(c.ctx, mb)
	if err != nil {
		return err
	}
	if owner != c.device {
		return store.ErrNotOwner
	}
	return nil
}
