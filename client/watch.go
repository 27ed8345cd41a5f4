package client

import (
	"context"
	"os"
	"time"

	"github.com/postern/postern/protocol"
)

// Mailboxes added by another process on the same home (a 'postern invite'
// or 'postern accept' beside a running 'postern listen') are in the store
// but not subscribed on this Client's connection: without a watch, what
// arrives in them would wait for the next reconnection or Sync.
const (
	// mailboxPoll is how often the receive loop checks whether the store
	// file changed (a stat, no lock).
	mailboxPoll = 500 * time.Millisecond
	// mailboxRescan reads the mailbox list even when the file looks
	// unchanged, for file systems with coarse modification times.
	mailboxRescan = 30 * time.Second
)

// watchMailboxes runs for the life of a connected Client: whenever the
// store file changes, it subscribes the current connection to mailboxes it
// does not know yet.
func (c *Client) watchMailboxes() {
	defer c.wg.Done()
	tick := time.NewTicker(mailboxPoll)
	defer tick.Stop()
	var (
		last     storeStamp
		lastScan time.Time
		lastConn *conn
		refused  map[protocol.MailboxID]bool // by lastConn: not asked again
	)
	for {
		select {
		case <-tick.C:
		case <-c.ctx.Done():
			return
		}
		st := stampOf(c.st.Path())
		if st == last && time.Since(lastScan) < mailboxRescan {
			continue
		}
		c.mu.Lock()
		cn := c.cur
		c.mu.Unlock()
		if cn == nil || cn.isClosed() {
			continue // the next connection subscribes from the store
		}
		if cn != lastConn {
			lastConn, refused = cn, make(map[protocol.MailboxID]bool)
		}
		if err := c.subscribeNew(cn, refused); err != nil {
			c.log.Debug("looking for new mailboxes failed", "err", err)
			continue // try again at the next tick
		}
		last, lastScan = st, time.Now()
	}
}

// subscribeNew subscribes cn to every stored mailbox it is not subscribed
// to, except those it refused before (recorded in refused).
func (c *Client) subscribeNew(cn *conn, refused map[protocol.MailboxID]bool) error {
	var mbs []mailboxRecord
	if err := c.st.view(func(t *tx) (err error) { mbs, err = t.mailboxes(); return err }); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, 30*time.Second)
	defer cancel()
	for _, m := range mbs {
		var id protocol.MailboxID
		copy(id[:], m.ID)
		c.mu.Lock()
		_, known := c.subs[id]
		c.mu.Unlock()
		if known || refused[id] {
			continue
		}
		if err := c.subscribe(ctx, cn, id); err != nil {
			if !isRefusal(err) {
				return err
			}
			refused[id] = true
			continue
		}
		c.log.Debug("subscribed to a mailbox added by another process", "mailbox", id.Short())
	}
	return nil
}

// storeStamp identifies a version of the store file cheaply.
type storeStamp struct {
	mod  time.Time
	size int64
}

func stampOf(path string) storeStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return storeStamp{}
	}
	return storeStamp{mod: fi.ModTime(), size: fi.Size()}
}
