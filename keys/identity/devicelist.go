package identity

import (
	"github.com/postern/postern/keys"
)

// SignDeviceList signs l with the identity key and returns the encoded,
// verified list (keys.ParseDeviceList accepts it). l.Identity is set to
// the identity's public key (a different key there is refused) and
// l.Signature to the new signature. Every rule of the list is checked
// first (keys.ErrDeviceCount, keys.ErrDeviceOrder, ...).
func (i *Identity) SignDeviceList(l *keys.DeviceList) ([]byte, error) {
	if l.Identity != nil && !l.Identity.Equal(i.Public()) {
		return nil, detail(keys.ErrMalformed, "identity: device list names another identity key")
	}
	l.Identity = i.Public()
	part, err := l.SignedPart()
	if err != nil {
		return nil, err
	}
	sig, err := i.Sign(keys.ContextDeviceList, part)
	if err != nil {
		return nil, err
	}
	l.Signature = sig
	b, err := l.Bytes()
	if err != nil {
		return nil, err
	}
	// Parse back what we produced: it verifies the fresh signature, which
	// catches a faulty signing before the list is published.
	if _, err := keys.ParseDeviceList(b); err != nil {
		return nil, err
	}
	return b, nil
}
