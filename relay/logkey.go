package relay

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/postern/postern/protocol"
)

// LogKeyFile holds, inside Config.DataDir, the relay's secret key for
// account IDs in logs: 32 random bytes, mode 0600, made at first use.
const LogKeyFile = "log.key"

const (
	logKeySize     = 32
	accountLogInfo = protocol.LabelPrefix + "account-log"
)

// logKey is the key accountLogID uses, loaded (or made) once.
type logKey struct {
	once sync.Once
	key  []byte
}

// accountLogID is what logs say of an account: the first 4 bytes of
// HMAC-SHA-256(log key, "postern.v1 account-log" || label). Enough to
// follow one account through the log; without the relay's key, someone
// holding only the log cannot test guesses of a label (a name or an HR
// number is easy to guess, so a plain hash would give it away).
func (r *Relay) accountLogID(label string) string {
	r.logKey.once.Do(func() {
		key, err := loadLogKey(r.cfg.DataDir)
		if err != nil {
			// A per-process key: IDs stay unlinkable to labels, only not
			// stable across restarts.
			r.log.Warn("account log key unavailable; account IDs in the log change at each start", "err", err)
			key = make([]byte, logKeySize)
			rand.Read(key)
		}
		r.logKey.key = key
	})
	m := hmac.New(sha256.New, r.logKey.key)
	m.Write([]byte(accountLogInfo))
	m.Write([]byte(label))
	return hex.EncodeToString(m.Sum(nil)[:4])
}

// logAccount is the log attribute for an optional account.
func (r *Relay) logAccount(label string) string {
	if label == "" {
		return "-"
	}
	return r.accountLogID(label)
}

// loadLogKey reads dir/LogKeyFile, or creates it (exclusively: two
// starts racing both end up with the file's key).
func loadLogKey(dir string) ([]byte, error) {
	if dir == "" {
		return nil, errors.New("no data directory")
	}
	path := filepath.Join(dir, LogKeyFile)
	for range 2 {
		key, err := readLogKey(path)
		if !errors.Is(err, fs.ErrNotExist) {
			return key, err
		}
		key = make([]byte, logKeySize)
		rand.Read(key)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue // made meanwhile: read it
		}
		if err != nil {
			return nil, err
		}
		_, err = f.Write(key)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
			return nil, err
		}
		return key, nil
	}
	return nil, fmt.Errorf("%s: created and removed meanwhile", path)
}

func readLogKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	key := make([]byte, logKeySize+1)
	n, err := io.ReadFull(f, key)
	if n != logKeySize || !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%s: want exactly %d bytes", path, logKeySize)
	}
	return key[:logKeySize], nil
}
