package identity

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// KDFParams are the Argon2id cost parameters of a key file. They are stored
// in the file header, so files written with older defaults stay readable.
type KDFParams struct {
	Time      uint32 // passes over memory; 1..MaxKDFTime
	MemoryKiB uint32 // memory in KiB; 8*Threads..MaxKDFMemoryKiB
	Threads   uint8  // parallelism; at least 1
}

// DefaultKDFParams are the parameters for new key files: the RFC 9106
// second recommended option (t=3, m=64 MiB, p=4), which runs in well under a
// second on a laptop.
var DefaultKDFParams = KDFParams{Time: 3, MemoryKiB: 64 * 1024, Threads: 4}

// Caps on the parameters OpenKeyFile accepts. A key file may come from
// anywhere (a backup, a shared drive); without caps, a hostile header could
// ask for 4 TiB of memory or 2^32 passes.
const (
	MaxKDFTime      = 16
	MaxKDFMemoryKiB = 1 << 20 // 1 GiB
)

// Key file layout (SPEC.md): header || XChaCha20-Poly1305(payload), with
// the header as additional data so that no header field can be changed
// without failing authentication.
const (
	kdfArgon2id   = 0x01 // Argon2id version 0x13, RFC 9106
	saltSize      = 16
	keyFileHeader = 2 + 1 + 4 + 4 + 1 + saltSize + chacha20poly1305.NonceSizeX // 52
	keyFileTag    = chacha20poly1305.Overhead
)

func (p KDFParams) check() error {
	switch {
	case p.Time < 1 || p.Time > MaxKDFTime:
		return detail(ErrKeyFileFormat, fmt.Sprintf("identity: key file: Argon2id time %d, want 1..%d", p.Time, MaxKDFTime))
	case p.Threads < 1:
		return detail(ErrKeyFileFormat, "identity: key file: Argon2id threads 0, want at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxKDFMemoryKiB:
		return detail(ErrKeyFileFormat, fmt.Sprintf("identity: key file: Argon2id memory %d KiB, want %d..%d", p.MemoryKiB, 8*uint32(p.Threads), MaxKDFMemoryKiB))
	}
	return nil
}

// SealKeyFile encrypts payload (typically a MarshalSecret output) under
// passphrase: Argon2id(passphrase, random salt, p) gives a 32-byte key for
// XChaCha20-Poly1305 with a random nonce. Use DefaultKDFParams unless you
// have measured a reason not to.
func SealKeyFile(passphrase []byte, payload []byte, p KDFParams) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	var saltNonce [saltSize + chacha20poly1305.NonceSizeX]byte
	if _, err := rand.Read(saltNonce[:]); err != nil {
		return nil, ErrRandom
	}
	return sealKeyFile(passphrase, payload, p, saltNonce)
}

// sealKeyFile is SealKeyFile with the salt and nonce given, so that the
// known-answer vectors can check every byte of a key file.
func sealKeyFile(passphrase, payload []byte, p KDFParams, saltNonce [saltSize + chacha20poly1305.NonceSizeX]byte) ([]byte, error) {
	out := make([]byte, keyFileHeader, keyFileHeader+len(payload)+keyFileTag)
	out[0], out[1], out[2] = tagKeyFile, formatVersion, kdfArgon2id
	binary.BigEndian.PutUint32(out[3:7], p.Time)
	binary.BigEndian.PutUint32(out[7:11], p.MemoryKiB)
	out[11] = p.Threads
	copy(out[12:keyFileHeader], saltNonce[:])
	aead, err := chacha20poly1305.NewX(argon2.IDKey(passphrase, out[12:12+saltSize], p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize))
	if err != nil {
		return nil, ErrKeyFileFormat // unreachable: the key size is fixed
	}
	// A copy, because cipher.AEAD forbids dst overlapping additionalData.
	header := append([]byte(nil), out[:keyFileHeader]...)
	return aead.Seal(out, header[12+saltSize:], payload, header), nil
}

// OpenKeyFile decrypts the output of SealKeyFile. A wrong passphrase or any
// change to the file gives ErrWrongPassphrase; a file that is not ours,
// truncated, or whose Argon2id parameters are out of range (checked before
// any memory is allocated) gives ErrKeyFileFormat.
func OpenKeyFile(passphrase []byte, file []byte) ([]byte, error) {
	if len(file) < keyFileHeader+keyFileTag {
		return nil, detail(ErrKeyFileFormat, fmt.Sprintf("identity: key file: length %d, want at least %d", len(file), keyFileHeader+keyFileTag))
	}
	if file[0] != tagKeyFile {
		return nil, detail(ErrKeyFileFormat, fmt.Sprintf("identity: key file: type tag 0x%02x, want 0x%02x", file[0], tagKeyFile))
	}
	if file[1] != formatVersion {
		return nil, detail(ErrKeyFileFormat, fmt.Sprintf("identity: key file: version %d, want %d", file[1], formatVersion))
	}
	if file[2] != kdfArgon2id {
		return nil, detail(ErrKeyFileFormat, fmt.Sprintf("identity: key file: KDF 0x%02x, want 0x%02x (Argon2id)", file[2], kdfArgon2id))
	}
	p := KDFParams{
		Time:      binary.BigEndian.Uint32(file[3:7]),
		MemoryKiB: binary.BigEndian.Uint32(file[7:11]),
		Threads:   file[11],
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	header := file[:keyFileHeader]
	aead, err := chacha20poly1305.NewX(argon2.IDKey(passphrase, header[12:12+saltSize], p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize))
	if err != nil {
		return nil, ErrKeyFileFormat // unreachable: the key size is fixed
	}
	payload, err := aead.Open(nil, header[12+saltSize:], file[keyFileHeader:], header)
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	return payload, nil
}

// WriteKeyFile creates path with mode 0600 and writes data to it, durably
// (fsync of the file and of its directory). It refuses to overwrite: if path
// exists, even as a dangling symlink, it fails with an error matching
// fs.ErrExist, so a typo cannot destroy an existing key. On failure it
// removes the partial file it created.
func WriteKeyFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := writeSyncClose(f, data); err != nil {
		os.Remove(path)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// ReplaceKeyFile atomically replaces path with data (e.g. after a
// passphrase change): it writes a 0600 temporary file in the same directory,
// fsyncs it, renames it over path and fsyncs the directory. A crash leaves
// either the old or the new file, never a mix. path need not exist.
func ReplaceKeyFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	// CreateTemp already uses 0600; Chmod states it rather than rely on it.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := writeSyncClose(f, data); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

func writeSyncClose(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes a new directory entry durable. Windows cannot fsync a
// directory (and its renames are durable by other means), so it is skipped
// there.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
