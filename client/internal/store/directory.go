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
