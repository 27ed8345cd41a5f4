package keys_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/keys/identity"
)

var listCreated = time.Unix(1772366400, 0).UTC()

// testDevices returns n devices with ascending IDs.
func testDevices(n int) []keys.ListedDevice {
	out := make([]keys.ListedDevice, n)
	for i := range out {
		out[i] = keys.ListedDevice{ID: sha256.Sum256([]byte{byte(i)}), Linked: listCreated.Add(-time.Duration(i) * time.Hour), Relay: "wss://relay.example.org"}
		out[i].ID[0] = byte(i) // ascending
	}
	return out
}

func signedList(t *testing.T, id *identity.Identity, version uint64, devs []keys.ListedDevice) []byte {
	t.Helper()
	b, err := id.SignDeviceList(&keys.DeviceList{Version: version, Created: listCreated, Devices: devs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawList encodes a list without any rule check and signs it with id, so
// that each rule is tested against a validly signed encoding.
func rawList(t *testing.T, id *identity.Identity, version, created uint64, devs []keys.ListedDevice) []byte {
	t.Helper()
	b := []byte{0x12, 0x01}
	b = append(b, id.Public().Bytes()...)
	b = binary.BigEndian.AppendUint64(b, version)
	b = binary.BigEndian.AppendUint64(b, created)
	b = append(b, byte(len(devs)))
	for _, d := range devs {
		b = append(b, d.ID[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(d.Linked.Unix()))
		b = binary.BigEndian.AppendUint16(b, uint16(len(d.Relay)))
		b = append(b, d.Relay...)
	}
	sig, err := id.Sign(keys.ContextDeviceList, b)
	if err != nil {
		t.Fatal(err)
	}
	b = binary.BigEndian.AppendUint16(b, keys.SignatureSize)
	return append(b, sig...)
}

func TestDeviceListRoundTrip(t *testing.T) {
	id, _ := fixture()
	for _, n := range []int{1, 3, keys.MaxDevices} {
		devs := testDevices(n)
		b := signedList(t, id, 7, devs)
		l, err := keys.ParseDeviceList(b)
		if err != nil {
			t.Fatalf("%d devices: %v", n, err)
		}
		if !l.Identity.Equal(id.Public()) || l.Version != 7 || !l.Created.Equal(listCreated) || len(l.Devices) != n {
			t.Fatalf("%d devices: fields differ", n)
		}
		for i, d := range l.Devices {
			if d.ID != devs[i].ID || !d.Linked.Equal(devs[i].Linked) || d.Relay != devs[i].Relay || !l.Contains(d.ID) {
				t.Fatalf("device %d differs", i)
			}
		}
		if l.Contains(keys.Fingerprint{0xff}) {
			t.Fatal("Contains an unlisted device")
		}
		again, err := l.Bytes()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		if err := l.Verify(); err != nil {
			t.Fatal(err)
		}
		if h := keys.DeviceListHash(b); h != sha256.Sum256(append([]byte("postern.v1 device-list"), b...)) {
			t.Fatal("DeviceListHash is not SHA-256 of the label and the list")
		}
	}
	if got := len(rawList(t, id, 1, uint64(listCreated.Unix()), []keys.ListedDevice{{Relay: "ws://a"}})); got != keys.MinDeviceListSize+5 {
		t.Fatalf("a 1-device list with a 6-byte URL is %d bytes, want %d", got, keys.MinDeviceListSize+5)
	}
}

// TestDeviceListRules: every rule is refused with its own sentinel (which
// also matches ErrMalformed) even when the signature is valid, and
// SignDeviceList refuses to sign a list that breaks one.
func TestDeviceListRules(t *testing.T) {
	id, _ := fixture()
	other, err := identity.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	created := uint64(listCreated.Unix())
	nine := testDevices(9)
	swapped := testDevices(3)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	dup := testDevices(3)
	dup[2].ID = dup[1].ID
	late := testDevices(2)
	late[1].Linked = listCreated.Add(time.Second)
	badURL := func(u string) []keys.ListedDevice { d := testDevices(2); d[1].Relay = u; return d }
	long := "wss://" + string(bytes.Repeat([]byte("a"), keys.MaxRelayURLSize-5))
	for _, c := range []struct {
		name    string
		devs    []keys.ListedDevice
		version uint64
		want    error
	}{
		{"9 devices", nine, 1, keys.ErrDeviceCount},
		{"no device", nil, 1, keys.ErrDeviceCount},
		{"unsorted", swapped, 1, keys.ErrDeviceOrder},
		{"duplicate", dup, 1, keys.ErrDeviceOrder},
		{"version 0", testDevices(1), 0, keys.ErrListVersion},
		{"linked after created", late, 1, keys.ErrListTime},
		{"https URL", badURL("https://relay.example.org"), 1, keys.ErrRelayURL},
		{"no host", badURL("wss:///path"), 1, keys.ErrRelayURL},
		{"empty URL", badURL(""), 1, keys.ErrRelayURL},
		{"URL too long", badURL(long), 1, keys.ErrRelayURL},
		{"space", badURL("wss://relay example"), 1, keys.ErrRelayURL},
		{"user", badURL("wss://u@relay.example.org"), 1, keys.ErrRelayURL},
		{"query", badURL("wss://relay.example.org/?a=b"), 1, keys.ErrRelayURL},
		{"fragment", badURL("wss://relay.example.org/#x"), 1, keys.ErrRelayURL},
		{"uppercase scheme", badURL("WSS://relay.example.org"), 1, keys.ErrRelayURL},
		{"non-ASCII", badURL("wss://relé.example.org"), 1, keys.ErrRelayURL},
	} {
		_, err := keys.ParseDeviceList(rawList(t, id, c.version, created, c.devs))
		if !errors.Is(err, c.want) || !errors.Is(err, keys.ErrMalformed) {
			t.Errorf("%s: parse: %v, want %v", c.name, err, c.want)
		}
		if _, err := id.SignDeviceList(&keys.DeviceList{Version: c.version, Created: listCreated, Devices: c.devs}); !errors.Is(err, c.want) {
			t.Errorf("%s: sign: %v, want %v", c.name, err, c.want)
		}
	}
	for _, u := range []string{"ws://127.0.0.1:8080", "wss://relay.example.org:443/postern", "wss://[::1]:7878", "ws://a", long[:keys.MaxRelayURLSize]} {
		if err := keys.CheckRelayURL(u); err != nil {
			t.Errorf("CheckRelayURL(%q) = %v", u, err)
		}
	}

	good := signedList(t, id, 2, testDevices(2))
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for _, c := range []struct {
		name string
		b    []byte
		want error
	}{
		{"signature flipped", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), keys.ErrBadSignature},
		{"version changed", mutate(func(b []byte) []byte { b[2+keys.SigningPublicKeySize+7]++; return b }), keys.ErrBadSignature},
		{"identity replaced", mutate(func(b []byte) []byte { copy(b[2:], other.Public().Bytes()); return b }), keys.ErrBadSignature},
		{"device list type tag of a certificate", mutate(func(b []byte) []byte { b[0] = 0x10; return b }), keys.ErrMalformed},
		{"format version 2", mutate(func(b []byte) []byte { b[1] = 2; return b }), keys.ErrMalformed},
		{"trailing byte", append(bytes.Clone(good), 0), keys.ErrMalformed},
		{"truncated", good[:len(good)-1], keys.ErrMalformed},
		{"signature length", mutate(func(b []byte) []byte { b[len(b)-keys.SignatureSize-1]++; return b }), keys.ErrMalformed},
		{"created after 9999", rawList(t, id, 1, 253402300800, testDevices(1)), keys.ErrListTime},
		{"empty", nil, keys.ErrMalformed},
	} {
		if _, err := keys.ParseDeviceList(c.b); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if _, err := other.SignDeviceList(&keys.DeviceList{Identity: id.Public(), Version: 1, Created: listCreated, Devices: testDevices(1)}); err == nil {
		t.Error("SignDeviceList signed a list naming another identity")
	}
}

// FuzzParseDeviceList: whatever parses re-encodes to exactly the input and
// obeys every rule.
func FuzzParseDeviceList(f *testing.F) {
	id, _ := fixture()
	for _, n := range []int{1, 2, keys.MaxDevices} {
		b, err := id.SignDeviceList(&keys.DeviceList{Version: uint64(n), Created: listCreated, Devices: testDevices(n)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(make([]byte, keys.MinDeviceListSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := keys.ParseDeviceList(b)
		if err != nil {
			if l != nil {
				t.Fatal("a list returned with an error")
			}
			return
		}
		again, err := l.Bytes()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %v", err)
		}
		if l.Version == 0 || len(l.Devices) == 0 || len(l.Devices) > keys.MaxDevices {
			t.Fatal("a list that breaks a rule parsed")
		}
	})
}
