package audit

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/hybrid"
	"github.com/postern/postern/protocol"
)

// KeyFile is the relay key's file name inside the data directory;
// PublicKeyFile holds its public half (base64 of keys.SigningPublicKeySize
// bytes and a newline) for reviewers.
const (
	KeyFile       = "relay-key"
	PublicKeyFile = "relay-key.pub"
)

// keyLabel starts the key file: label || 0x00 || Ed25519 seed || ML-DSA-65 seed.
const keyLabel = protocol.LabelPrefix + "relay-key"

const (
	seedSize    = hybrid.SeedSize
	keyFileSize = len(keyLabel) + 1 + 2*seedSize
)

// Key is the relay's hybrid signing key (Ed25519 + ML-DSA-65, the
// construction of SPEC.md section 8, implemented by keys/hybrid:
// keys.SigningPublicKey.Verify checks its signatures). The relay binary
// never links keys/identity: this is the relay's own key, not a person's.
// Printing a Key with any fmt verb shows a redacted form.
type Key struct {
	s *hybrid.Signer
}

// LoadOrCreateKey reads the key file at path, or creates it (mode 0600,
// O_EXCL, fresh seeds from crypto/rand) if it does not exist, and then
// writes the public half to path+".pub" if that is missing. A key file readable by group or
// others is refused.
func LoadOrCreateKey(path string) (*Key, error) {
	k, err := loadKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err = createKey(path)
		if errors.Is(err, fs.ErrExist) { // created concurrently
			k, err = loadKey(path)
		}
	}
	if err != nil {
		return nil, err
	}
	pubPath := path + ".pub" // KeyFile + ".pub" is PublicKeyFile
	if _, err := os.Stat(pubPath); errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(pubPath, []byte(EncodePublicKey(k.Public())+"\n"), 0o644); err != nil {
			return nil, fmt.Errorf("audit: write public key: %w", err)
		}
	}
	return k, nil
}

func loadKey(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is readable by others (mode %04o): chmod 600 it", ErrKeyFile, path, st.Mode().Perm())
	}
	b := make([]byte, keyFileSize+1)
	n, _ := f.Read(b)
	// Never echo the content: it is secret.
	if n != keyFileSize || !bytes.HasPrefix(b, []byte(keyLabel+"\x00")) {
		return nil, fmt.Errorf("%w: %s is not a relay key (want %d bytes starting %q)", ErrKeyFile, path, keyFileSize, keyLabel)
	}
	s := b[len(keyLabel)+1 : keyFileSize]
	return keyFromSeeds(s[:seedSize], s[seedSize:])
}

func createKey(path string) (*Key, error) {
	var seeds [2 * seedSize]byte
	if _, err := rand.Read(seeds[:]); err != nil {
		return nil, fmt.Errorf("audit: random: %v", err)
	}
	k, err := keyFromSeeds(seeds[:seedSize], seeds[seedSize:])
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	b := append(append([]byte(keyLabel), 0), seeds[:]...)
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("audit: write relay key: %w", err)
	}
	return k, nil
}

func keyFromSeeds(edSeed, mlSeed []byte) (*Key, error) {
	hs, err := hybrid.FromSeeds(edSeed, mlSeed)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	return &Key{s: hs}, nil
}

// Public returns the public half.
func (k *Key) Public() *keys.SigningPublicKey { return k.s.Public() }

// Sign returns the hybrid signature of msg in context (keys/hybrid).
func (k *Key) Sign(context string, msg []byte) ([]byte, error) {
	sig, err := k.s.Sign(context, msg)
	if err != nil {
		return nil, fmt.Errorf("audit: sign: %v", err)
	}
	return sig, nil
}

// Format prints a redacted form for every verb, so that a stray %v in a
// log line cannot leak the seeds.
func (k *Key) Format(f fmt.State, _ rune) { fmt.Fprint(f, "audit.Key{REDACTED}") }

// EncodePublicKey is the text form of a relay public key: standard base64
// of its keys.SigningPublicKeySize bytes.
func EncodePublicKey(pub *keys.SigningPublicKey) string {
	return base64.StdEncoding.EncodeToString(pub.Bytes())
}

// ParsePublicKey parses EncodePublicKey's form (surrounding space ignored).
func ParsePublicKey(s string) (*keys.SigningPublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("audit: public key: not base64")
	}
	return keys.ParseSigningPublicKey(b)
}

// ReadPublicKey reads a public key file (PublicKeyFile's format).
func ReadPublicKey(path string) (*keys.SigningPublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParsePublicKey(string(b))
}
