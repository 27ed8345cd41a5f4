package protocol

import "encoding/binary"

// The encoders' helpers; Reader (reader.go) is their inverse.

func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// appendBytes16 writes a u16 length prefix and the bytes. Callers keep
// lengths within the limits (Marshal is for well-formed frames); a longer
// value is truncated in the prefix and will fail to parse, never panic.
func appendBytes16(b, v []byte) []byte {
	return append(appendU16(b, uint16(len(v))), v...)
}
