package protocol

// Key transparency frames (SPEC.md section 4 and section 10 "Key
// transparency"): publishing a person's signed device list, fetching one
// with its proofs, and fetching the key that signs the relay's tree heads.
// The relay verifies lists with package keys and builds proofs with
// keys/kt; here they are opaque bytes and 32-byte hashes, bounded.

// Frame types of the transparency log.
const (
	TypePublishDeviceList FrameType = 0x10
	TypeFetchDeviceList   FrameType = 0x11
	TypeFetchLogKey       FrameType = 0x12

	TypeDeviceList FrameType = 0x90
	TypeLogKey     FrameType = 0x91
)

// Limits of the transparency frames.
const (
	// MaxDeviceListSize is the largest encoded device list
	// (keys.MaxDeviceListSize: 8 devices with 256-byte relay URLs).
	MaxDeviceListSize = 7762
	// MaxProofHashes bounds each proof in a DeviceList frame
	// (kt.MaxProofHashes).
	MaxProofHashes = 64
	// MaxTreeHeadSize bounds a signed tree head (kt.HeadSize is 3457).
	MaxTreeHeadSize = 4096
)

// ProofHash is one hash of an inclusion or consistency proof.
type ProofHash [32]byte

// newKTFrame is newFrame for the transparency frames.
func newKTFrame(t FrameType) Frame {
	switch t {
	case TypePublishDeviceList:
		return new(PublishDeviceList)
	case TypeFetchDeviceList:
		return new(FetchDeviceList)
	case TypeFetchLogKey:
		return new(FetchLogKey)
	case TypeDeviceList:
		return new(DeviceList)
	case TypeLogKey:
		return new(LogKey)
	}
	return nil
}

// PublishDeviceList stores the authenticated device's person's new signed
// device list and appends it to the relay's log. The relay answers with a
// DeviceList frame for it (no consistency proof) once both are durable.
type PublishDeviceList struct {
	List []byte // the encoded keys.DeviceList; the rest of the frame
}

func (*PublishDeviceList) Type() FrameType { return TypePublishDeviceList }
func (f *PublishDeviceList) appendBody(b []byte) ([]byte, error) {
	if len(f.List) == 0 {
		return nil, errorf(ErrMalformed, "empty device list")
	}
	if err := checkLen("device list", f.List, MaxDeviceListSize); err != nil {
		return nil, err
	}
	return append(b, f.List...), nil
}
func (f *PublishDeviceList) parseBody(r *Reader) {
	f.List = r.Rest()
	switch {
	case r.Err() != nil:
	case len(f.List) == 0:
		r.Failf("empty device list")
	case len(f.List) > MaxDeviceListSize:
		r.SetErr(errorf(ErrTooLarge, "device list: %d bytes, limit %d", len(f.List), MaxDeviceListSize))
	}
}

// FetchDeviceList asks for the newest device list of the person whose
// identity key has fingerprint Identity, with a consistency proof from the
// tree size KnownSize (0: none) to the relay's newest head. No
// authentication.
type FetchDeviceList struct {
	Identity  [32]byte
	KnownSize uint64
}

func (*FetchDeviceList) Type() FrameType { return TypeFetchDeviceList }
func (f *FetchDeviceList) appendBody(b []byte) ([]byte, error) {
	return appendU64(append(b, f.Identity[:]...), f.KnownSize), nil
}
func (f *FetchDeviceList) parseBody(r *Reader) {
	r.Array(f.Identity[:], "identity")
	f.KnownSize = r.U64("known tree size")
}

// FetchLogKey asks for the public key that signs the relay's tree heads
// (answered by LogKey). No authentication; clients pin it on first use.
type FetchLogKey struct{}

func (*FetchLogKey) Type() FrameType                     { return TypeFetchLogKey }
func (*FetchLogKey) appendBody(b []byte) ([]byte, error) { return b, nil }
func (*FetchLogKey) parseBody(*Reader)                   {}

// DeviceList answers FetchDeviceList and PublishDeviceList: the list, its
// leaf index, the inclusion proof of that leaf in the tree of Head, the
// relay's newest signed head, and the consistency proof from the asked
// known size to Head's size (empty when that size is 0 or Head's).
type DeviceList struct {
	List        []byte
	Index       uint64
	Inclusion   []ProofHash
	Head        []byte
	Consistency []ProofHash
}

func (*DeviceList) Type() FrameType { return TypeDeviceList }
func (f *DeviceList) appendBody(b []byte) ([]byte, error) {
	if len(f.List) == 0 || len(f.Head) == 0 {
		return nil, errorf(ErrMalformed, "device list answer without a list or a head")
	}
	if err := checkLen("device list", f.List, MaxDeviceListSize); err != nil {
		return nil, err
	}
	if err := checkLen("tree head", f.Head, MaxTreeHeadSize); err != nil {
		return nil, err
	}
	if len(f.Inclusion) > MaxProofHashes || len(f.Consistency) > MaxProofHashes {
		return nil, errorf(ErrTooLarge, "proof of %d or %d hashes, limit %d", len(f.Inclusion), len(f.Consistency), MaxProofHashes)
	}
	b = appendBytes16(b, f.List)
	b = appendU64(b, f.Index)
	b = appendProof(b, f.Inclusion)
	b = appendBytes16(b, f.Head)
	return appendProof(b, f.Consistency), nil
}
func (f *DeviceList) parseBody(r *Reader) {
	f.List = r.Bytes16(MaxDeviceListSize, "device list")
	if r.Err() == nil && len(f.List) == 0 {
		r.Failf("empty device list")
	}
	f.Index = r.U64("leaf index")
	f.Inclusion = readProof(r, "inclusion proof")
	f.Head = r.Bytes16(MaxTreeHeadSize, "tree head")
	if r.Err() == nil && len(f.Head) == 0 {
		r.Failf("empty tree head")
	}
	f.Consistency = readProof(r, "consistency proof")
}

func appendProof(b []byte, p []ProofHash) []byte {
	b = append(b, byte(len(p)))
	for _, h := range p {
		b = append(b, h[:]...)
	}
	return b
}

func readProof(r *Reader, what string) []ProofHash {
	n := int(r.U8(what + " count"))
	if r.Err() == nil && n > MaxProofHashes {
		r.SetErr(errorf(ErrTooLarge, "%s: %d hashes, limit %d", what, n, MaxProofHashes))
	}
	if r.Err() != nil || n == 0 {
		return nil
	}
	p := make([]ProofHash, n)
	for i := range p {
		r.Array(p[i][:], what)
	}
	return p
}

// LogKey answers FetchLogKey: the relay's hybrid signing public key
// (keys.SigningPublicKey encoding).
type LogKey struct{ Key []byte }

func (*LogKey) Type() FrameType { return TypeLogKey }
func (f *LogKey) appendBody(b []byte) ([]byte, error) {
	if len(f.Key) == 0 {
		return nil, errorf(ErrMalformed, "empty log key")
	}
	if err := checkLen("log key", f.Key, MaxDeviceKeySize); err != nil {
		return nil, err
	}
	return appendBytes16(b, f.Key), nil
}
func (f *LogKey) parseBody(r *Reader) {
	f.Key = r.Bytes16(MaxDeviceKeySize, "log key")
	if r.Err() == nil && len(f.Key) == 0 {
		r.Failf("empty log key")
	}
}
