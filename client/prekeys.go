package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
)

// Prekey lifecycle (protocol/SPEC.md section 9 "Prekey lifecycle").
//
// The relay hands out each one-time prekey once (FetchBundle); the client
// keeps the relay's supply between prekeyLowWater and prekeyTarget, and
// rotates the bundle's last-resort (signed) prekey every
// signedPrekeyRotation, keeping replaced ones for signedPrekeyGrace so that
// initiations made with the previous bundle still open. Secrets are stored
// before they are published, so that a published prekey always has its
// secret. A one-time prekey's secret is deleted when the session it opened
// is stored (tx.deletePrekey, in that same transaction).
const (
	// prekeyLowWater: fewer one-time prekeys left on the relay than this
	// triggers a top-up.
	prekeyLowWater = 20
	// prekeyTarget is how many one-time prekeys a top-up leaves on the relay.
	prekeyTarget = 60
	// signedPrekeyRotation is the age (by Options.Now) at which the
	// last-resort prekey is replaced.
	signedPrekeyRotation = 7 * 24 * time.Hour
	// signedPrekeyGrace is how long a replaced last-resort prekey's secret
	// is kept.
	signedPrekeyGrace = 30 * 24 * time.Hour
	// oneTimePrekeyLife is how long an unused one-time prekey's secret is
	// kept after it was made: initiators stop using a one-time prekey at
	// maxOneTimePrekeyUse, and an initiation made just before that may
	// wait in the relay for its envelope retention (14 days) and a day more.
	oneTimePrekeyLife = maxOneTimePrekeyUse + 15*24*time.Hour
	// prekeyCheckTimeout bounds a background check after connecting.
	prekeyCheckTimeout = time.Minute
)

// prekeySupply is the range a device keeps its one-time prekeys on the
// relay in: below low, a top-up brings them back to target.
type prekeySupply struct{ low, target int }

// defaultPrekeySupply is every Client's, unless its Options say
// otherwise. It is a variable only so that this package's tests can make
// it smaller for the many devices they create (TestMain): making and
// signing one-time prekeys is most of what a new device costs, and the
// prekey tests themselves run with prekeyLowWater and prekeyTarget.
var defaultPrekeySupply = prekeySupply{low: prekeyLowWater, target: prekeyTarget}

// MaxSignedPrekeyAge is the oldest signed (last-resort) prekey an initiator
// accepts from a bundle (by its signed creation time): a device rotates it
// every 7 days while it is online, so an older one means the device has
// been away for weeks or the relay is serving a bundle it should have
// replaced. Starting a session with it fails with ErrStalePrekey.
const MaxSignedPrekeyAge = 30 * 24 * time.Hour

// maxOneTimePrekeyUse is the oldest one-time prekey an initiator uses; an
// older one is ignored and the handshake uses the signed prekey alone.
const maxOneTimePrekeyUse = 60 * 24 * time.Hour

// Compile-time checks: low water below target, and a top-up never asks
// the relay to hold more than it keeps.
var (
	_ [prekeyTarget - prekeyLowWater - 1]struct{}
	_ [protocol.MaxStoredPrekeys - prekeyTarget]struct{}
)

// errNotOneTimePrekey: consumption named a last-resort prekey, which is
// never deleted by consumption (a caller error, or an Init that names the
// signed prekey as its one-time prekey).
var errNotOneTimePrekey = errors.New("client: prekey is a last-resort prekey, not a one-time prekey")

// prekeyStateRecord is the local bookkeeping of this device's prekeys, in
// the meta bucket. The secrets themselves are in bucketPrekeys, keyed by
// index(bucketPrekeys, u32 id).
type prekeyStateRecord struct {
	V int `json:"v"`
	// NextID is the next unused prekey ID (IDs only increase).
	NextID uint32 `json:"next_id"`
	// Signed is the ID of the current last-resort prekey, the one in the
	// published bundle; SignedAt is when it became current (Options.Now).
	Signed   uint32    `json:"signed"`
	SignedAt time.Time `json:"signed_at"`
	// BundleStale: the relay may still hold a bundle with an older
	// last-resort prekey (a rotation whose publication has not succeeded).
	BundleStale bool `json:"bundle_stale,omitempty"`
	// ExpiryChecked is when unused one-time prekeys were last checked for
	// expiry (at most daily: it parses every stored secret).
	ExpiryChecked time.Time `json:"expiry_checked,omitzero"`
	// Retired are replaced last-resort prekeys whose secrets are kept
	// until Replaced + signedPrekeyGrace.
	Retired []retiredPrekey `json:"retired,omitempty"`
}

type retiredPrekey struct {
	ID       uint32    `json:"id"`
	Replaced time.Time `json:"replaced"`
}

var keyPrekeyState = []byte("prekey-state")

func prekeyKey(t *tx, id uint32) []byte {
	return t.Index(bucketPrekeys, binary.BigEndian.AppendUint32(nil, id))
}

// prekeyState returns the prekey bookkeeping, or nil if there is none
// (a home made before it existed).
func (t *tx) prekeyState() (*prekeyStateRecord, error) {
	var p prekeyStateRecord
	ok, err := t.Get(bucketMeta, t.Index(bucketMeta, keyPrekeyState), &p)
	if err != nil || !ok {
		return nil, err
	}
	return &p, nil
}

func (t *tx) putPrekeyState(p *prekeyStateRecord) error {
	p.V = 1
	return t.Put(bucketMeta, t.Index(bucketMeta, keyPrekeyState), p)
}

// putPrekey stores a prekey's secret under its ID.
func (t *tx) putPrekey(p *identity.Prekey) error {
	id := p.Public().ID
	return t.PutRaw(bucketPrekeys, prekeyKey(t, id), p.MarshalSecret())
}

// prekey returns the stored secret of prekey id, or ErrNoPrekey.
func (t *tx) prekey(id uint32) (*identity.Prekey, error) {
	b, err := t.GetRaw(bucketPrekeys, prekeyKey(t, id))
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, ErrNoPrekey
	}
	p, err := identity.ParsePrekeySecret(b)
	if err != nil || p.Public().ID != id {
		return nil, errStoreCorrupt
	}
	return p, nil
}

// deletePrekey consumes one-time prekey id: it deletes its secret, in this
// transaction. Call it in the transaction that stores the session the
// prekey opened, so that neither a used secret nor the session can be
// left behind. ErrNoPrekey if it is unknown or already consumed;
// errNotOneTimePrekey (and nothing deleted) for a last-resort prekey.
func (t *tx) deletePrekey(id uint32) error {
	p, err := t.prekey(id)
	if err != nil {
		return err
	}
	if !p.Public().OneTime {
		return errNotOneTimePrekey
	}
	return t.Delete(bucketPrekeys, prekeyKey(t, id))
}

// purgePrekey deletes the secret of prekey id, whatever its kind, if it
// is stored.
func (t *tx) purgePrekey(id uint32) error {
	return t.Delete(bucketPrekeys, prekeyKey(t, id))
}

// prekeySecret returns the secret of this device's prekey id (one-time or
// last-resort, current or retired within its grace period), or ErrNoPrekey
// if it is unknown, consumed or purged.
func (c *Client) prekeySecret(id uint32) (*identity.Prekey, error) {
	var p *identity.Prekey
	err := c.st.view(func(t *tx) (err error) { p, err = t.prekey(id); return err })
	if err != nil {
		return nil, err
	}
	if !p.Device().Equal(c.dev.Certificate().Signing) {
		return nil, errStoreCorrupt
	}
	return p, nil
}

// consumeOneTimePrekey deletes one-time prekey id's secret in a
// transaction of its own. Session code that stores a session should use
// tx.deletePrekey in the same transaction instead.
func (c *Client) consumeOneTimePrekey(id uint32) error {
	return c.st.update(func(t *tx) error { return t.deletePrekey(id) })
}

// goCheckPrekeys runs checkPrekeys on cn in the background (after a
// connection authenticated). It skips if a check is already running.
func (c *Client) goCheckPrekeys(cn *conn) {
	c.goBackground(func() {
		select {
		case c.prekeyBusy <- struct{}{}:
			defer func() { <-c.prekeyBusy }()
		default:
			return // a check runs; it does the same
		}
		ctx, cancel := context.WithTimeout(c.ctx, prekeyCheckTimeout)
		defer cancel()
		if err := c.checkPrekeysLocked(ctx, cn); err != nil && c.ctx.Err() == nil {
			c.log.Warn("prekey maintenance failed", "err", err)
		}
	})
}

// goBackground runs fn in a goroutine the Client waits for on Close,
// unless the Client is already closed.
func (c *Client) goBackground(fn func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// syncPrekeys is checkPrekeys on the current connection, for the end of a
// Sync. Failures are logged, never returned: they must not fail the Sync.
func (c *Client) syncPrekeys(ctx context.Context) {
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn == nil {
		return // reconnecting: the new connection checks
	}
	select {
	case c.prekeyBusy <- struct{}{}:
		defer func() { <-c.prekeyBusy }()
	case <-ctx.Done():
		return
	}
	if err := c.checkPrekeysLocked(ctx, cn); err != nil {
		c.log.Warn("prekey maintenance failed", "err", err)
	}
}

// checkPrekeysLocked rotates the last-resort prekey when due, purges
// retired ones past their grace period, republishes the bundle if the
// relay lacks the current one, and tops the one-time prekeys up. The
// caller holds c.prekeyBusy.
func (c *Client) checkPrekeysLocked(ctx context.Context, cn *conn) error {
	now := c.now().UTC()
	st, err := c.prekeyBookkeeping(now)
	if err != nil {
		return err
	}
	if now.Sub(st.SignedAt) >= signedPrekeyRotation {
		if st, err = c.rotateSignedPrekey(st.Signed, now); err != nil {
			return fmt.Errorf("rotate signed prekey: %w", err)
		}
	}
	if err := c.purgeRetiredPrekeys(now); err != nil {
		return fmt.Errorf("purge retired prekeys: %w", err)
	}
	if err := c.purgeExpiredOneTimePrekeys(now); err != nil {
		return fmt.Errorf("purge expired one-time prekeys: %w", err)
	}
	r, err := cn.request(ctx, &protocol.GetPrekeyStatus{})
	if err != nil {
		return fmt.Errorf("prekey status: %w", err)
	}
	status, ok := r.(*protocol.PrekeyStatus)
	if !ok {
		return unexpected(r)
	}
	if st.BundleStale || !status.HasBundle {
		if err := c.publishBundle(ctx, cn, st.Signed); err != nil {
			return fmt.Errorf("publish bundle: %w", err)
		}
	}
	if int(status.Count) < c.prekeys.low {
		if err := c.topUpPrekeys(ctx, cn, c.prekeys.target-int(status.Count)); err != nil {
			return fmt.Errorf("top up one-time prekeys: %w", err)
		}
	}
	return nil
}

// prekeyBookkeeping returns the prekey state, rebuilding it from the
// stored secrets for a home made before it was kept.
func (c *Client) prekeyBookkeeping(now time.Time) (*prekeyStateRecord, error) {
	var st *prekeyStateRecord
	err := c.st.update(func(t *tx) (err error) {
		if st, err = t.prekeyState(); err != nil || st != nil {
			return err
		}
		st = &prekeyStateRecord{}
		var signed []uint32
		err = t.Each(bucketPrekeys, func(_, b []byte) error {
			p, err := identity.ParsePrekeySecret(b)
			if err != nil {
				return errStoreCorrupt
			}
			pub := p.Public()
			st.NextID = max(st.NextID, pub.ID+1)
			if !pub.OneTime {
				signed = append(signed, pub.ID)
				if len(signed) == 1 || pub.ID > st.Signed {
					// When it became current was not recorded; its
					// signed creation time is the best estimate.
					st.Signed, st.SignedAt = pub.ID, pub.Created
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, id := range signed {
			if id != st.Signed {
				st.Retired = append(st.Retired, retiredPrekey{ID: id, Replaced: now})
			}
		}
		// With no last-resort prekey at all, the zero SignedAt makes the
		// next check generate and publish one.
		st.BundleStale = len(signed) == 0
		return t.putPrekeyState(st)
	})
	return st, err
}

// allocatePrekeyIDs reserves n consecutive prekey IDs and returns the first.
func (t *tx) allocatePrekeyIDs(n int) (uint32, error) {
	st, err := t.prekeyState()
	if err != nil {
		return 0, err
	}
	if st == nil {
		return 0, errors.New("client: no prekey state")
	}
	first := st.NextID
	if uint64(first)+uint64(n) > 1<<32-1 {
		return 0, errors.New("client: prekey IDs exhausted")
	}
	st.NextID += uint32(n)
	return first, t.putPrekeyState(st)
}

// rotateSignedPrekey replaces last-resort prekey old with a new one:
// stores its secret, retires old, and marks the bundle stale until it is
// published. If another Client on this home rotated meanwhile, it keeps
// theirs.
func (c *Client) rotateSignedPrekey(old uint32, now time.Time) (*prekeyStateRecord, error) {
	var id uint32
	err := c.st.update(func(t *tx) (err error) { id, err = t.allocatePrekeyIDs(1); return err })
	if err != nil {
		return nil, err
	}
	p, err := identity.NewPrekey(c.dev, id, false)
	if err != nil {
		return nil, err
	}
	var st *prekeyStateRecord
	err = c.st.update(func(t *tx) (err error) {
		if st, err = t.prekeyState(); err != nil {
			return err
		}
		if st == nil || st.Signed != old {
			return nil // rotated by someone else: theirs stands
		}
		if err := t.putPrekey(p); err != nil {
			return err
		}
		if t.Has(bucketPrekeys, prekeyKey(t, old)) {
			st.Retired = append(st.Retired, retiredPrekey{ID: old, Replaced: now})
		}
		st.Signed, st.SignedAt, st.BundleStale = id, now, true
		return t.putPrekeyState(st)
	})
	if err == nil && st == nil {
		err = errors.New("client: no prekey state")
	}
	if err == nil && st.Signed == id {
		c.log.Info("rotated signed prekey")
	}
	return st, err
}

// purgeRetiredPrekeys deletes the secrets of last-resort prekeys replaced
// signedPrekeyGrace or more ago.
func (c *Client) purgeRetiredPrekeys(now time.Time) error {
	purged := 0
	err := c.st.update(func(t *tx) error {
		purged = 0
		st, err := t.prekeyState()
		if err != nil || st == nil {
			return err
		}
		keep := st.Retired[:0]
		for _, r := range st.Retired {
			if now.Sub(r.Replaced) < signedPrekeyGrace {
				keep = append(keep, r)
				continue
			}
			if err := t.purgePrekey(r.ID); err != nil {
				return err
			}
			purged++
		}
		if purged == 0 {
			return nil
		}
		st.Retired = keep
		return t.putPrekeyState(st)
	})
	if err == nil && purged > 0 {
		c.log.Info("deleted retired signed prekeys", "count", purged)
	}
	return err
}

// publishBundle publishes the bundle with last-resort prekey id, in a
// frame of its own (with one-time prekeys it may not fit), and clears
// BundleStale if id is still current.
func (c *Client) publishBundle(ctx context.Context, cn *conn, id uint32) error {
	p, err := c.prekeySecret(id)
	if err != nil {
		return err
	}
	if p.Public().OneTime {
		return errStoreCorrupt
	}
	if err := cn.ok(ctx, &protocol.PublishPrekeys{Bundle: marshalBundle(c.dev.Certificate(), p.Public())}); err != nil {
		return err
	}
	c.log.Info("published prekey bundle")
	return c.st.update(func(t *tx) error {
		st, err := t.prekeyState()
		if err != nil || st == nil || st.Signed != id || !st.BundleStale {
			return err
		}
		st.BundleStale = false
		return t.putPrekeyState(st)
	})
}

// topUpPrekeys generates n one-time prekeys, stores their secrets, then
// publishes them, protocol.MaxPrekeysPerPublish per frame. Secrets whose
// publication failed stay stored: republishing them could hand one out
// twice if the relay did store them.
func (c *Client) topUpPrekeys(ctx context.Context, cn *conn, n int) error {
	if n <= 0 {
		return nil
	}
	var first uint32
	err := c.st.update(func(t *tx) (err error) { first, err = t.allocatePrekeyIDs(n); return err })
	if err != nil {
		return err
	}
	ps := make([]*identity.Prekey, n)
	for i := range ps {
		if ps[i], err = identity.NewPrekey(c.dev, first+uint32(i), true); err != nil {
			return err
		}
	}
	err = c.st.update(func(t *tx) error {
		for _, p := range ps {
			if err := t.putPrekey(p); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	published := 0
	for len(ps) > 0 {
		k := min(len(ps), protocol.MaxPrekeysPerPublish)
		f := &protocol.PublishPrekeys{Prekeys: make([][]byte, k)}
		for i, p := range ps[:k] {
			f.Prekeys[i] = p.Public().Bytes()
		}
		if err := cn.ok(ctx, f); err != nil {
			c.log.Info("published one-time prekeys", "count", published)
			return err
		}
		published += k
		ps = ps[k:]
	}
	c.log.Info("published one-time prekeys", "count", published)
	return nil
}

// purgeExpiredOneTimePrekeys deletes the secrets of one-time prekeys made
// oneTimePrekeyLife or more ago and never consumed (SPEC section 9 "Prekey
// lifecycle"): a secret that waits for ever on an unused prekey would be
// one more thing a stolen device gives away. It runs at most once a day.
func (c *Client) purgeExpiredOneTimePrekeys(now time.Time) error {
	purged := 0
	err := c.st.update(func(t *tx) error {
		purged = 0
		st, err := t.prekeyState()
		if err != nil || st == nil {
			return err
		}
		if !st.ExpiryChecked.IsZero() && now.Sub(st.ExpiryChecked) < 24*time.Hour && !now.Before(st.ExpiryChecked) {
			return nil
		}
		var expired [][]byte
		err = t.Each(bucketPrekeys, func(k, b []byte) error {
			p, err := identity.ParsePrekeySecret(b)
			if err != nil {
				return errStoreCorrupt
			}
			if pub := p.Public(); pub.OneTime && now.Sub(pub.Created) >= oneTimePrekeyLife {
				expired = append(expired, append([]byte(nil), k...))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range expired {
			if err := t.Delete(bucketPrekeys, k); err != nil {
				return err
			}
		}
		purged = len(expired)
		st.ExpiryChecked = now
		return t.putPrekeyState(st)
	})
	if err == nil && purged > 0 {
		c.log.Info("deleted expired one-time prekey secrets", "count", purged)
	}
	return err
}
