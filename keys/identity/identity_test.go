package identity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/postern/postern/keys"
)

// testKDF keeps Argon2id cheap in tests; TestKeyFileDefaults covers the
// real defaults once.
var testKDF = KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}

var fixture = sync.OnceValues(func() (*Identity, *Device) {
	id, err := GenerateIdentity()
	if err != nil {
		panic(err)
	}
	d, err := NewDevice(id)
	if err != nil {
		panic(err)
	}
	return id, d
})

func TestSealOpen(t *testing.T) {
	_, d := fixture()
	pk, err := NewPrekey(d, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewPrekey(d, 2, true)
	type opener interface {
		Open(info, aad, sealed []byte) ([]byte, error)
	}
	for _, tc := range []struct {
		name string
		to   *keys.Recipient
		o    opener
	}{
		{"device", d.Certificate().KEM, d},
		{"prekey", pk.Public().Key, pk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, aad, msg := []byte("info"), []byte("aad"), []byte("a message")
			sealed, err := tc.to.Seal(info, aad, msg)
			if err != nil {
				t.Fatal(err)
			}
			pt, err := tc.o.Open(info, aad, sealed)
			if err != nil || !bytes.Equal(pt, msg) {
				t.Fatalf("round trip: %v", err)
			}
			empty, _ := tc.to.Seal(nil, nil, nil)
			if pt, err := tc.o.Open(nil, nil, empty); err != nil || len(pt) != 0 {
				t.Fatalf("empty plaintext: %v", err)
			}
			flip := func(i int) []byte { b := bytes.Clone(sealed); b[i] ^= 1; return b }
			failures := []struct {
				name            string
				o               opener
				info, aad, data []byte
			}{
				{"wrong key", other, info, aad, sealed},
				{"flipped enc (ML-KEM part)", tc.o, info, aad, flip(0)},
				{"flipped enc (X25519 part)", tc.o, info, aad, flip(keys.XWingCiphertextSize - 1)},
				{"flipped ciphertext", tc.o, info, aad, flip(keys.XWingCiphertextSize)},
				{"flipped tag", tc.o, info, aad, flip(len(sealed) - 1)},
				{"wrong aad", tc.o, info, []byte("aaD"), sealed},
				{"wrong info", tc.o, []byte("infO"), aad, sealed},
				{"truncated by one", tc.o, info, aad, sealed[:len(sealed)-1]},
				{"truncated to overhead-1", tc.o, info, aad, sealed[:keys.SealOverhead-1]},
				{"empty", tc.o, info, aad, nil},
				{"extended", tc.o, info, aad, append(bytes.Clone(sealed), 0)},
			}
			for _, f := range failures {
				_, err := f.o.Open(f.info, f.aad, f.data)
				if !errors.Is(err, ErrDecrypt) || err.Error() != ErrDecrypt.Error() {
					t.Errorf("%s: got %v, want exactly ErrDecrypt", f.name, err)
				}
			}
		})
	}
}

func TestSecretRoundTrip(t *testing.T) {
	id, d := fixture()
	pk, _ := NewPrekey(d, 9, false)

	id2, err := ParseIdentitySecret(id.MarshalSecret())
	if err != nil || !id2.Public().Equal(id.Public()) || !bytes.Equal(id2.MarshalSecret(), id.MarshalSecret()) {
		t.Fatalf("identity: %v", err)
	}
	d2, err := ParseDeviceSecret(d.MarshalSecret())
	if err != nil || !bytes.Equal(d2.MarshalSecret(), d.MarshalSecret()) {
		t.Fatalf("device: %v", err)
	}
	sealed, _ := d.Certificate().KEM.Seal(nil, nil, []byte("x"))
	if _, err := d2.Open(nil, nil, sealed); err != nil {
		t.Fatal("parsed device cannot open")
	}
	sig, _ := d2.Sign("ctx", []byte("m"))
	if d.Certificate().Signing.Verify("ctx", []byte("m"), sig) != nil {
		t.Fatal("parsed device signs with another key")
	}
	pk2, err := ParsePrekeySecret(pk.MarshalSecret())
	if err != nil || !bytes.Equal(pk2.MarshalSecret(), pk.MarshalSecret()) || !pk2.Device().Equal(d.Certificate().Signing) {
		t.Fatalf("prekey: %v", err)
	}

	// A device secret whose seeds belong to another device's certificate.
	other, _ := NewDevice(id)
	mixed := d.MarshalSecret()
	copy(mixed[2+3*seedSize:], other.Certificate().Bytes())
	if _, err := ParseDeviceSecret(mixed); !errors.Is(err, ErrMalformedSecret) {
		t.Fatalf("mismatched device secret: %v", err)
	}
	for name, b := range map[string][]byte{
		"identity": id.MarshalSecret(), "device": d.MarshalSecret(), "prekey": pk.MarshalSecret(),
	} {
		parse := map[string]func([]byte) error{
			"identity": func(b []byte) error { _, err := ParseIdentitySecret(b); return err },
			"device":   func(b []byte) error { _, err := ParseDeviceSecret(b); return err },
			"prekey":   func(b []byte) error { _, err := ParsePrekeySecret(b); return err },
		}[name]
		for _, bad := range [][]byte{nil, b[:len(b)-1], append(bytes.Clone(b), 0), append([]byte{b[0] ^ 1}, b[1:]...), append([]byte{b[0], 2}, b[2:]...)} {
			if err := parse(bad); err == nil {
				t.Errorf("%s: malformed secret accepted", name)
			}
		}
	}
}

func TestStringRedacts(t *testing.T) {
	id, d := fixture()
	pk, _ := NewPrekey(d, 3, true)
	is, ds := id.s.AppendSeeds(nil), d.s.AppendSeeds(nil)
	seeds := [][]byte{is[:seedSize], is[seedSize:], ds[:seedSize], ds[seedSize:], d.kem.seed[:], pk.kem.seed[:]}
	for _, v := range []any{id, d, pk, *id, *d, *pk} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d", "%q"} {
			out := fmt.Sprintf(verb, v)
			if !strings.Contains(out, "REDACTED") {
				t.Errorf("%T %s: %q not redacted", v, verb, out)
			}
			for _, s := range seeds {
				if strings.Contains(strings.ToLower(out), hex.EncodeToString(s)) || strings.Contains(out, hex.EncodeToString(s[:8])) {
					t.Errorf("%T %s leaks a seed", v, verb)
				}
			}
		}
	}
}

func TestKeyFile(t *testing.T) {
	payload := []byte("secret payload")
	pass := []byte("correct horse")
	file, err := SealKeyFile(pass, payload, testKDF)
	if err != nil {
		t.Fatal(err)
	}
	if len(file) != keyFileHeader+len(payload)+keyFileTag {
		t.Fatalf("length %d", len(file))
	}
	got, err := OpenKeyFile(pass, file)
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("round trip: %v", err)
	}
	if _, err := OpenKeyFile([]byte("wrong"), file); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	// Every header byte is authenticated or checked.
	for i := 0; i < keyFileHeader; i++ {
		b := bytes.Clone(file)
		b[i] ^= 1
		if _, err := OpenKeyFile(pass, b); err == nil {
			t.Errorf("header byte %d flipped: accepted", i)
		}
	}
	for _, i := range []int{keyFileHeader, len(file) - 1} {
		b := bytes.Clone(file)
		b[i] ^= 1
		if _, err := OpenKeyFile(pass, b); !errors.Is(err, ErrWrongPassphrase) {
			t.Errorf("body byte %d flipped: %v", i, err)
		}
	}
	if _, err := OpenKeyFile(pass, file[:keyFileHeader+keyFileTag-1]); !errors.Is(err, ErrKeyFileFormat) {
		t.Errorf("truncated: %v", err)
	}
	for _, p := range []KDFParams{{0, 1024, 1}, {17, 1024, 1}, {1, 4, 1}, {1, 1024, 0}, {1, MaxKDFMemoryKiB + 1, 1}} {
		if _, err := SealKeyFile(pass, payload, p); !errors.Is(err, ErrKeyFileFormat) {
			t.Errorf("SealKeyFile(%+v): %v", p, err)
		}
	}
}

// A hostile header asking for 4 TiB of memory or 2^32 passes is refused
// before Argon2id runs.
func TestKeyFileHostileParams(t *testing.T) {
	file, _ := SealKeyFile([]byte("p"), []byte("x"), testKDF)
	hostile := []struct {
		name string
		off  int
		val  []byte
	}{
		{"memory 4 TiB", 7, []byte{0xff, 0xff, 0xff, 0xff}},
		{"memory 1 GiB + 1 KiB", 7, []byte{0x00, 0x10, 0x00, 0x01}},
		{"time 2^32-1", 3, []byte{0xff, 0xff, 0xff, 0xff}},
		{"time 17", 3, []byte{0, 0, 0, 17}},
		{"time 0", 3, []byte{0, 0, 0, 0}},
		{"threads 0", 11, []byte{0}},
	}
	for _, h := range hostile {
		t.Run(h.name, func(t *testing.T) {
			b := bytes.Clone(file)
			copy(b[h.off:], h.val)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, err := OpenKeyFile([]byte("p"), b)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrKeyFileFormat) {
				t.Fatalf("got %v, want ErrKeyFileFormat", err)
			}
			if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
				t.Fatalf("allocated %d bytes before refusing", n)
			}
		})
	}
}

func TestKeyFileDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("Argon2id with 64 MiB; skipped in -short")
	}
	file, err := SealKeyFile([]byte("pass"), []byte("payload"), DefaultKDFParams)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := OpenKeyFile([]byte("pass"), file); err != nil || string(got) != "payload" {
		t.Fatalf("defaults round trip: %v", err)
	}
}

func TestWriteKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "device.key")
	if err := WriteKeyFile(path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path)
	if err := WriteKeyFile(path, []byte("two")); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("overwrite: got %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Fatal("WriteKeyFile overwrote an existing file")
	}
	if err := ReplaceKeyFile(path, []byte("three")); err != nil {
		t.Fatal(err)
	}
	checkMode(t, path)
	if b, _ := os.ReadFile(path); string(b) != "three" {
		t.Fatal("ReplaceKeyFile did not replace")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
	if err := ReplaceKeyFile(filepath.Join(dir, "missing", "x.key"), []byte("x")); err == nil {
		t.Fatal("ReplaceKeyFile into a missing directory succeeded")
	}
}

func checkMode(t *testing.T, path string) {
	t.Helper()
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

// End to end: a device secret stored in a key file on disk and read back.
func TestDeviceKeyFileRoundTrip(t *testing.T) {
	_, d := fixture()
	path := filepath.Join(t.TempDir(), "device.key")
	file, err := SealKeyFile([]byte("pw"), d.MarshalSecret(), testKDF)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(path, file); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	payload, err := OpenKeyFile([]byte("pw"), raw)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := ParseDeviceSecret(payload)
	if err != nil || d2.Certificate().DeviceID() != d.Certificate().DeviceID() {
		t.Fatalf("device from key file: %v", err)
	}
}

func TestNotComparable(t *testing.T) {
	// A compile-time property; asserted here through reflection so a
	// refactor that drops noCompare fails a test.
	for _, v := range []any{Identity{}, Device{}, Prekey{}} {
		if typeComparable(v) {
			t.Errorf("%T is comparable with ==", v)
		}
	}
}
