package store

// BucketDirectory holds what this device keeps of its organisation's
// directory (protocol/SPEC.md section 15.7 and section 9 "Local state"):
// one record, sealed under the store key like every other value.
var BucketDirectory = []byte("directory")

func init() { allBuckets = append(allBuckets, BucketDirectory) }

var keyDirectory = []byte("held")

// DirectoryRecord is the organisation directory this device holds: the
// encoded directory it accepted last (checked against its anchor and the
// relay's transparency log before it was stored), and, on an
// administrator's device, the organisation's publishing capability.
type DirectoryRecord struct {
	V int `json:"v"`
	// Directory is the held encoded directory; empty before the first.
	Directory []byte `json:"directory,omitempty"`
	// Capability is the organisation's publishing capability (32 bytes),
	// kept by an administrator's device only.
	Capability []byte `json:"capability,omitempty"`
	// CapabilityLogged: the relay accepted a publish with Capability, so
	// a capability another administrator shares never replaces it.
	CapabilityLogged bool `json:"capability_logged,omitempty"`
}

// Directory returns the directory record, nil if there is none.
func (t *Tx) Directory() (*DirectoryRecord, error) {
	var r DirectoryRecord
	ok, err := t.Get(BucketDirectory, t.Index(BucketDirectory, keyDirectory), &r)
	if err != nil || !ok {
		return nil, err
	}
	if r.V != 1 || (len(r.Capability) != 0 && len(r.Capability) != 32) {
		return nil, ErrCorrupt
	}
	return &r, nil
}

// PutDirectory stores r.
func (t *Tx) PutDirectory(r *DirectoryRecord) error {
	if len(r.Capability) != 0 && len(r.Capability) != 32 {
		return ErrCorrupt
	}
	r.V = 1
	return t.Put(BucketDirectory, t.Index(BucketDirectory, keyDirectory), r)
}

// StatusRecord is the newest availability status this device accepted
// for one staff member of its directory (or set for its own person):
// kept in the directory bucket, one record per person, under a key of
// its own beside the held directory, so that a store of schema 8 needs
// no migration to hold them.
type StatusRecord struct {
	V int `json:"v"`
	// Status is the encoded signed status (directory.StatusSize bytes),
	// checked by directory.AcceptStatus before it was stored.
	Status []byte `json:"status"`
}

func statusKey(t *Tx, identity [32]byte) []byte {
	return t.Index(BucketDirectory, []byte("status"), identity[:])
}

// Status returns the status record of the person of identity, nil if
// there is none.
func (t *Tx) Status(identity [32]byte) (*StatusRecord, error) {
	var r StatusRecord
	ok, err := t.Get(BucketDirectory, statusKey(t, identity), &r)
	if err != nil || !ok {
		return nil, err
	}
	if r.V != 1 || len(r.Status) == 0 {
		return nil, ErrCorrupt
	}
	return &r, nil
}

// PutStatus stores r as the status record of the person of identity.
func (t *Tx) PutStatus(identity [32]byte, r *StatusRecord) error {
	if len(r.Status) == 0 {
		return ErrCorrupt
	}
	r.V = 1
	return t.Put(BucketDirectory, statusKey(t, identity), r)
}
