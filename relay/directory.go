package relay

// Organisation directories in the transparency log (SPEC.md section 10,
// "Key transparency", and section 15.7). The relay never sees a
// directory: PublishDirectory appends the leaf (log key, version, hash)
// to the device lists' tree, authorised by the organisation's publishing
// capability, and FetchDirectory proves the newest leaf of a log key as
// FetchDeviceList proves a list. Fetches share the device lists' limit
// per address; publishes have an allowance of their own per device
// (DirectoryPublishBurst), as a team's staff list is one leaf per change.

import (
	"context"
	"errors"
	"fmt"

	"github.com/postern/postern/keys/kt"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// directoryLog returns the store as a DirectoryLog and the key that
// signs heads, or false when this relay keeps no transparency log or its
// store logs no directories.
func (r *Relay) directoryLog() (store.DirectoryLog, bool) {
	if _, _, ok := r.ktLog(); !ok {
		return nil, false
	}
	ds, ok := r.st.(store.DirectoryLog)
	return ds, ok
}

func (c *conn) directoryRefusal(id uint32, err error) {
	switch {
	case errors.Is(err, store.ErrUnknownDirectory):
		c.refuse(id, protocol.CodeUnknownDirectory, "")
	case errors.Is(err, store.ErrStaleDirectory):
		c.refuse(id, protocol.CodeStaleDirectory, "")
	case errors.Is(err, store.ErrDirectoryCapability):
		c.refuse(id, protocol.CodeDirectoryCapability, "")
	default:
		c.storeRefusal(id, err)
	}
}

func directoryLeaf(a store.DirectoryAnswer) *protocol.DirectoryLeaf {
	return &protocol.DirectoryLeaf{Version: a.Version, Hash: a.Hash, Index: a.Index, Inclusion: toProof(a.Inclusion), Head: a.Head, Consistency: toProof(a.Consistency)}
}

// fetchDirectory answers FetchDirectory: the newest leaf of the log key
// with its proofs, read in one view of the store.
func (c *conn) fetchDirectory(id uint32, f *protocol.FetchDirectory) {
	ds, ok := c.r.directoryLog()
	if !ok {
		c.refuse(id, protocol.CodeNoTransparencyLog, "this relay keeps no transparency log")
		return
	}
	if c.adm.key.IsValid() {
		if ok, wait := c.r.ktFetches.take(c.adm.key, c.r.cfg.Now()); !ok {
			c.rateLimited(id, "device list fetches", wait, fmt.Sprintf("too many transparency log fetches from this address; retry after %d s", retryAfterSeconds(wait)))
			return
		}
	}
	a, err := ds.DirectoryAnswer(c.ctx, f.LogKey, f.KnownSize)
	if err != nil {
		c.directoryRefusal(id, err)
		return
	}
	c.send(id, directoryLeaf(a))
}

// publishDirectory appends a directory's leaf, durably, before answering
// with a DirectoryLeaf for what is now logged under the log key.
func (c *conn) publishDirectory(id uint32, f *protocol.PublishDirectory) {
	ds, ok := c.r.directoryLog()
	if !ok {
		c.refuse(id, protocol.CodeNoTransparencyLog, "this relay keeps no transparency log")
		return
	}
	_, key, _ := c.r.ktLog()
	now := c.r.cfg.Now()
	if ok, wait := c.r.dirPublishes.take(c.device, now); !ok {
		c.rateLimited(id, "directory publishes", wait, fmt.Sprintf("too many directory publishes; retry after %d s", retryAfterSeconds(wait)))
		return
	}
	e := kt.Entry{Identity: f.LogKey, Version: f.Version, ListHash: f.Hash}
	p := store.DirectoryPublish{LogKey: f.LogKey, Version: f.Version, Hash: f.Hash, Capability: f.Capability.DirectoryHash(), Entry: e.Bytes()}
	var err error
	offStack(func() { _, err = ds.PublishDirectory(context.Background(), p, c.r.signHead(key)) })
	if err != nil {
		c.r.dirPublishes.give(c.device, now) // no leaf was appended
		c.directoryRefusal(id, err)
		return
	}
	c.log.Info("directory leaf logged", "device", c.device.Short(), "version", f.Version)
	a, err := ds.DirectoryAnswer(c.ctx, f.LogKey, 0)
	if err != nil {
		c.directoryRefusal(id, err)
		return
	}
	c.send(id, directoryLeaf(a))
}
