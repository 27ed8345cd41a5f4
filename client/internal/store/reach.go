package store

// ReachRecord is what this device keeps to reach colleagues of its
// organisation without an invitation (protocol/SPEC.md section 15.7
// "Reaching a colleague"): the organisation reach secret of the newest
// generation an administrator sent it, where colleagues publish their
// colleague mailboxes (a claim space), and this device's own colleague
// mailbox of that generation, if it made one. It is kept in the directory
// bucket under a key of its own beside the held directory, so that a
// store of schema 8 needs no migration to hold it.
type ReachRecord struct {
	V int `json:"v"`
	// Org is the organisation's ID (16 bytes); Generation the directory
	// version the secret was made with.
	Org        []byte `json:"org"`
	Generation uint64 `json:"generation"`
	// Secret is the reach secret S (32 bytes).
	Secret []byte `json:"secret"`
	// Space, Write and Relay name the claim space of the colleague
	// registers: its ID (16 bytes), its write capability (32 bytes) and
	// the relay that holds it.
	Space []byte `json:"space"`
	Write []byte `json:"write"`
	Relay string `json:"relay"`
	// Admin is the claim space's admin capability (32 bytes), kept only
	// on the administrator's device that made the generation, so that it
	// deletes the space when it makes the next one.
	Admin []byte `json:"admin,omitempty"`
	// Mailbox is this device's colleague mailbox of this generation (16
	// bytes; empty: none made), on this device's relay.
	Mailbox []byte `json:"mailbox,omitempty"`
	// Retired are colleague mailboxes of earlier generations whose
	// capability is still to be revoked and which are still to be
	// deleted on this device's relay; OldSpaces earlier claim spaces
	// (ID then admin capability, 48 bytes each) still to be deleted.
	Retired   [][]byte `json:"retired,omitempty"`
	OldSpaces [][]byte `json:"old_spaces,omitempty"`
}

var keyReach = []byte("reach")

func (r *ReachRecord) check() error {
	if r.V != 1 || len(r.Org) != 16 || len(r.Secret) != 32 || len(r.Space) != 16 || len(r.Write) != 32 ||
		(len(r.Admin) != 0 && len(r.Admin) != 32) || (len(r.Mailbox) != 0 && len(r.Mailbox) != 16) {
		return ErrCorrupt
	}
	for _, m := range r.Retired {
		if len(m) != 16+32 {
			return ErrCorrupt
		}
	}
	for _, s := range r.OldSpaces {
		if len(s) != 16+32 {
			return ErrCorrupt
		}
	}
	return nil
}

// Reach returns the reach record, nil if there is none.
func (t *Tx) Reach() (*ReachRecord, error) {
	var r ReachRecord
	ok, err := t.Get(BucketDirectory, t.Index(BucketDirectory, keyReach), &r)
	if err != nil || !ok {
		return nil, err
	}
	if err := r.check(); err != nil {
		return nil, err
	}
	return &r, nil
}

// PutReach stores r.
func (t *Tx) PutReach(r *ReachRecord) error {
	r.V = 1
	if err := r.check(); err != nil {
		return err
	}
	return t.Put(BucketDirectory, t.Index(BucketDirectory, keyReach), r)
}
