package store

import "errors"

var (
	// ErrTooNew: the home's store was written by a newer version with a
	// layout this one does not know. Nothing is changed; the error says
	// to upgrade postern.
	ErrTooNew = errors.New("store: the local store was written by a newer version of postern")
	// ErrMissing: the store file of an existing home is gone; nothing was
	// made in its place.
	ErrMissing = errors.New("store: the local store file is missing")
	// ErrCorrupt: a value that does not decrypt or decode (a damaged
	// store, or the wrong key).
	ErrCorrupt = errors.New("store: local store value does not decrypt (corrupted store or wrong key)")
	// ErrEraseKeys: erase.keys is missing or does not hold the epoch key
	// that the store names.
	ErrEraseKeys = errors.New("store: " + EraseKeysFileName + " is missing or damaged: this home's sessions and prekeys cannot be read")
	// ErrConversationType: a team-queue conversation given to
	// PutConversation; it is stored only with its queue record (PutQueue).
	ErrConversationType = errors.New("store: a team-queue conversation is stored only with its queue record")
	// ErrStop, returned by the function given to Tx.Each, ends the walk
	// without an error.
	ErrStop = errors.New("store: stop")

	// errNeedsPrepare: View found a store that needs a read-write open
	// first (a migration or a scrub).
	errNeedsPrepare = errors.New("store: local store needs a read-write open first")
)
