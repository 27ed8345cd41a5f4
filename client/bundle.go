package client

import (
	"encoding/binary"
	"fmt"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// Prekey bundle layout (opaque to the relay; protocol/SPEC.md section 9 "Prekey bundle"):
//
//	u8 version (1) | u16 len | device certificate | u16 len | signed last-resort prekey
const bundleVersion = 1

func marshalBundle(cert *keys.DeviceCertificate, lastResort *keys.SignedPrekey) []byte {
	c, p := cert.Bytes(), lastResort.Bytes()
	b := make([]byte, 0, 5+len(c)+len(p))
	b = append(b, bundleVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c)))
	b = append(b, c...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	return append(b, p...)
}

// parseBundle parses and verifies a bundle: the certificate's signature by
// its identity, and the prekey's signature by the certified device. The
// caller must still compare the identity with the one it expects.
func parseBundle(b []byte) (*keys.DeviceCertificate, *keys.SignedPrekey, error) {
	r := protocol.NewReader(b)
	if r.U8("version") != bundleVersion {
		return nil, nil, fmt.Errorf("client: prekey bundle: bad version")
	}
	cb := r.Take(int(r.U16("certificate length")), "certificate")
	pb := r.Take(int(r.U16("prekey length")), "prekey")
	if r.Finish("prekey bundle") != nil {
		return nil, nil, fmt.Errorf("client: prekey bundle: malformed")
	}
	cert, err := keys.ParseDeviceCertificate(cb)
	if err != nil {
		return nil, nil, fmt.Errorf("client: prekey bundle: %w", err)
	}
	pk, err := keys.ParseSignedPrekey(cert.Signing, pb)
	if err != nil {
		return nil, nil, fmt.Errorf("client: prekey bundle: %w", err)
	}
	return cert, pk, nil
}
