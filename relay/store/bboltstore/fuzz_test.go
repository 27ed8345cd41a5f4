package bboltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// Run `go test ./relay/store/bboltstore -run TestWriteFuzzCorpus
// -update-corpus` to regenerate the committed seed corpora below from
// values as the store encodes them.
var updateCorpus = flag.Bool("update-corpus", false, "rewrite the testdata/fuzz seed corpora of fuzz_test.go")

var (
	fuzzDev     = protocol.DeviceID{0xd0, 1}
	fuzzMailbox = protocol.MailboxID{0xb0, 1}
	fuzzEnvID   = protocol.EnvelopeID{0xe0, 1} // its env_id value is the fuzzed value
	fuzzEnvID2  = protocol.EnvelopeID{0xe0, 2} // its env_id value is sequence 1
	fuzzCap     = protocol.CapabilityHash{0xca, 1}
	fuzzInvite  = store.InviteHash{0x1a, 1}
	fuzzAccount = "dr.smith" // the label the corrupted records are indexed under
	fuzzTime    = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
)

// seedEnvelopes are valid env values: every bucket size, and no data.
func seedEnvelopes() [][]byte {
	var out [][]byte
	for _, n := range append([]int{0}, protocol.Buckets[:]...) {
		data := bytes.Repeat([]byte{'p'}, n) // printable: small seed files
		if n > 1 {
			data[0], data[1] = protocol.Version, byte(protocol.KindSealed)
		}
		out = append(out, encodeEnv(store.Envelope{Mailbox: fuzzMailbox, ID: fuzzEnvID, Received: fuzzTime, Expires: fuzzTime.Add(protocol.DefaultRetention), Data: data}))
	}
	return out
}

// seedDevices are valid device values: live, revoked and suspended, with
// and without an account label.
func seedDevices() [][]byte {
	key := bytes.Repeat([]byte{0x5e}, 64)
	return [][]byte{
		encodeDevice(store.Device{ID: fuzzDev, PublicKey: key, Enrolled: fuzzTime}),
		encodeDevice(store.Device{ID: fuzzDev, PublicKey: key, Enrolled: fuzzTime, Revoked: true}),
		encodeDevice(store.Device{ID: fuzzDev, PublicKey: key, Enrolled: fuzzTime, Account: fuzzAccount}),
		encodeDevice(store.Device{ID: fuzzDev, PublicKey: key, Enrolled: fuzzTime, Suspended: true, Account: "Dr. Müller"}),
	}
}

// seedInvites are valid invite values: unused and used, with and without
// an account label.
func seedInvites() [][]byte {
	exp := timeU64(fuzzTime.Add(time.Hour))
	return [][]byte{
		encodeInvite(invite{expires: exp}),
		encodeInvite(invite{expires: exp, used: true}),
		encodeInvite(invite{expires: exp, account: fuzzAccount}),
		encodeInvite(invite{expires: exp, used: true, account: fuzzAccount}),
	}
}

// seedRecords are valid values of every bucket that has them.
func seedRecords() [][]byte {
	out := append(seedEnvelopes()[:2], seedDevices()...)
	return append(out,
		binary.BigEndian.AppendUint32(append([]byte(nil), fuzzDev[:]...), 3), // mailbox: owner || depth
		[]byte{byte(store.CapabilityLive)},
		[]byte{byte(store.CapabilityRevoked)},
		seedInvites()[2], // invite: expires || used || label length || label
		u64(1),           // env_id: sequence
	)
}

func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("corpus regeneration only with -update-corpus")
	}
	for i, v := range seedEnvelopes() {
		writeFuzzSeed(t, "FuzzDecodeEnv", fmt.Sprintf("valid-%d", i), fmt.Sprintf("uint64(%d)", i+1), v)
	}
	writeFuzzSeed(t, "FuzzDecodeEnv", "invalid-0", "uint64(1)", seedEnvelopes()[0][:envHeader-1])
	for i, v := range seedDevices() {
		writeFuzzSeed(t, "FuzzDecodeDevice", fmt.Sprintf("valid-%d", i), "", v)
	}
	writeFuzzSeed(t, "FuzzDecodeDevice", "invalid-0", "", []byte{0, 0, 0, 0})
	writeFuzzSeed(t, "FuzzDecodeDevice", "invalid-1", "", []byte{0, 0, 0, 0, 0, 9, 'd', 'r'})  // label past the end
	writeFuzzSeed(t, "FuzzDecodeDevice", "invalid-2", "", []byte{0, 0, 0, 0, 0, 2, 'd', '\n'}) // control character
	for i, v := range seedInvites() {
		writeFuzzSeed(t, "FuzzDecodeInvite", fmt.Sprintf("valid-%d", i), "", v)
	}
	writeFuzzSeed(t, "FuzzDecodeInvite", "invalid-0", "", append(u64(1), 0)) // schema 1
	writeFuzzSeed(t, "FuzzDecodeInvite", "invalid-1", "", append(u64(1), 2, 0))
	for i, v := range seedRecords() {
		writeFuzzSeed(t, "FuzzCorruptRecords", fmt.Sprintf("valid-%d", i), "", v)
	}
}

// writeFuzzSeed writes a `go test fuzz v1` file: the lines of prefix (if
// any), then v as a []byte.
func writeFuzzSeed(t *testing.T, target, name, prefix string, v []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := "go test fuzz v1\n"
	if prefix != "" {
		body += prefix + "\n"
	}
	body += fmt.Sprintf("[]byte(%q)\n", v)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A fuzz target whose seed folder is gone would quietly start from nothing.
func TestFuzzCorpusPresent(t *testing.T) {
	for _, name := range []string{"FuzzDecodeEnv", "FuzzDecodeDevice", "FuzzDecodeInvite", "FuzzCorruptRecords"} {
		m, _ := filepath.Glob(filepath.Join("testdata", "fuzz", name, "valid-*"))
		if len(m) == 0 {
			t.Errorf("%s has no valid seeds (regenerate with -update-corpus)", name)
		}
	}
}

// FuzzDecodeEnv: an env value read back from the file. Short values are
// refused; what decodes copies its data out of bbolt's memory and
// re-encodes to exactly the stored bytes.
func FuzzDecodeEnv(f *testing.F) {
	f.Add(uint64(1), make([]byte, envHeader))
	f.Fuzz(func(t *testing.T, seq uint64, v []byte) {
		e, err := decodeEnv(seq, v)
		if len(v) < envHeader ||
			binary.BigEndian.Uint64(v[32:40]) > maxStoredTime || binary.BigEndian.Uint64(v[40:48]) > maxStoredTime {
			if !errors.Is(err, errCorrupt) {
				t.Fatalf("accepted a value this package cannot write (%d bytes): %v", len(v), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("refused a %d-byte value: %v", len(v), err)
		}
		if e.Seq != seq {
			t.Fatalf("seq %d, want %d", e.Seq, seq)
		}
		if len(e.Data) > 0 && &e.Data[0] == &v[envHeader] {
			t.Fatal("data aliases the stored value")
		}
		if again := encodeEnv(e); !bytes.Equal(again, v) {
			t.Fatalf("not canonical:\n got %x\nwant %x", again, v)
		}
	})
}

// FuzzDecodeDevice: a device value read back from the file. Values this
// package cannot write (under six bytes, undefined flags, a label past the
// end or one CheckAccountLabel refuses) are refused; what decodes
// re-encodes to exactly the stored bytes.
func FuzzDecodeDevice(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, v []byte) {
		d, ok := decodeDevice(fuzzDev[:], v)
		writable := len(v) >= deviceHeader && v[0]&^3 == 0 && len(v) >= deviceHeader+int(v[5])
		if writable && v[5] > 0 {
			writable = store.CheckAccountLabel(string(v[deviceHeader:deviceHeader+int(v[5])])) == nil
		}
		if !writable {
			if ok {
				t.Fatalf("accepted a value this package cannot write: %x", v[:min(len(v), 8)])
			}
			return
		}
		if !ok {
			t.Fatalf("refused a %d-byte value", len(v))
		}
		if d.ID != fuzzDev {
			t.Fatal("ID not taken from the key")
		}
		if again := encodeDevice(d); !bytes.Equal(again, v) {
			t.Fatalf("not canonical:\n got %x\nwant %x", again, v)
		}
	})
}

// FuzzDecodeInvite: an invite value read back from the file. Values this
// package cannot write are refused; what decodes re-encodes to exactly the
// stored bytes.
func FuzzDecodeInvite(f *testing.F) {
	f.Add(make([]byte, inviteHeader))
	f.Fuzz(func(t *testing.T, v []byte) {
		i, ok := decodeInvite(v)
		writable := len(v) >= inviteHeader && v[8] <= 1 && len(v) == inviteHeader+int(v[9])
		if writable && v[9] > 0 {
			writable = store.CheckAccountLabel(string(v[inviteHeader:])) == nil
		}
		if !writable {
			if ok {
				t.Fatalf("accepted a value this package cannot write: %x", v[:min(len(v), 12)])
			}
			return
		}
		if !ok {
			t.Fatalf("refused a %d-byte value", len(v))
		}
		if again := encodeInvite(i); !bytes.Equal(again, v) {
			t.Fatalf("not canonical:\n got %x\nwant %x", again, v)
		}
	})
}

// FuzzCorruptRecords writes one corrupted value into every bucket at the
// keys the store will read (a device, a mailbox, a capability, an invite,
// an envelope and its indexes, a bundle, a prekey), then runs every Store
// method over them. Each returns a value or an error, never panics.
func FuzzCorruptRecords(f *testing.F) {
	s, _ := openTest(f)
	bg := context.Background()
	appendData := seedEnvelopes()[1][envHeader:]
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		// The owner a corrupted mailbox record names, so that owner-only
		// methods get past the ownership check.
		owner := fuzzDev
		if len(v) == 36 {
			copy(owner[:], v)
		}
		ops := []func(){
			func() { s.Device(bg, fuzzDev) },
			func() {
				s.EnrollDevice(bg, store.Device{ID: fuzzDev, PublicKey: []byte{1}, Enrolled: fuzzTime}, &fuzzInvite, fuzzTime)
			},
			func() {
				s.EnrollDevice(bg, store.Device{ID: protocol.DeviceID{0xd0, 2}, PublicKey: []byte{1}, Enrolled: fuzzTime}, &fuzzInvite, fuzzTime)
			},
			func() { s.RevokeDevice(bg, fuzzDev) },
			func() { s.MailboxOwner(bg, fuzzMailbox) },
			func() { s.CheckCapability(bg, fuzzMailbox, fuzzCap) },
			func() { s.PrekeyStatus(bg, fuzzDev) },
			func() { s.FetchBundle(bg, fuzzMailbox, fuzzCap) },
			func() { s.Range(bg, fuzzMailbox, 0, 10) },
			func() { s.Ack(bg, fuzzMailbox, []protocol.EnvelopeID{fuzzEnvID, fuzzEnvID2}) },
			func() {
				s.Append(bg, store.Envelope{Mailbox: fuzzMailbox, ID: protocol.EnvelopeID{0xe0, 3}, Received: fuzzTime, Expires: fuzzTime, Data: appendData}, fuzzCap)
			},
			func() { s.AddCapability(bg, owner, fuzzMailbox, protocol.CapabilityHash{0xca, 2}) },
			func() { s.RevokeCapability(bg, owner, fuzzMailbox, fuzzCap, protocol.RevokeRestrictedNew) },
			func() { s.CreateMailbox(bg, owner, protocol.MailboxID{0xb0, 2}) },
			func() { s.Purge(bg, fuzzTime, 10) },
			func() { s.DeleteMailbox(bg, owner, fuzzMailbox) },
			func() { s.Devices(bg) },
			func() { s.SuspendDevice(bg, fuzzDev, true) },
			func() { s.AssignAccount(bg, []protocol.DeviceID{fuzzDev}, "dr.jones") },
			func() { s.AccountDevices(bg, fuzzAccount) },
			func() { s.Accounts(bg, fuzzTime) },
			func() { s.RevokeAccount(bg, fuzzAccount) },
			func() { s.SuspendAccount(bg, fuzzAccount, true) },
			func() { s.RevokeInvite(bg, fuzzInvite) },
			func() { s.GetClaim(bg, fuzzSpace, fuzzCap, fuzzToken) }, // claims_test.go
			func() { s.SetClaim(bg, fuzzSpace, fuzzCap, fuzzToken, 1, []byte{1}) },
			func() {
				s.UpdateClaimSpace(bg, fuzzSpace, fuzzCap, protocol.ClaimSpaceDelete, protocol.CapabilityHash{})
			},
			func() { s.CreateClaimSpace(bg, owner, protocol.ClaimSpaceID{0xc5, 2}, fuzzCap, fuzzCap) },
		}
		for _, op := range ops {
			writeCorruptRecords(t, s, v)
			op()
		}
	})
}

// writeCorruptRecords empties the store and writes v as the value at
// every key the Store methods of FuzzCorruptRecords read.
func writeCorruptRecords(t *testing.T, s *Store, v []byte) {
	t.Helper()
	err := s.DB().Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if bytes.Equal(name, bMeta) {
				continue
			}
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		sk := u64(1)
		puts := []struct {
			bucket, key, val []byte
		}{
			{bDevices, fuzzDev[:], v},
			{bMailboxes, fuzzMailbox[:], v},
			{bOwned, cat(fuzzDev[:], fuzzMailbox[:]), nil},
			{bCaps, cat(fuzzMailbox[:], fuzzCap[:]), v},
			{bInvites, fuzzInvite[:], v},
			{bBundles, fuzzDev[:], v},
			{bPrekeys, cat(fuzzDev[:], sk), v},
			{bEnv, sk, v},
			{bEnvMbox, cat(fuzzMailbox[:], sk), nil},
			{bEnvID, fuzzEnvID[:], v},
			{bEnvID, fuzzEnvID2[:], sk},
			{bEnvExp, cat(u64(0), sk), nil},
			{bAccounts, accountKey(fuzzAccount, fuzzDev), v},
			{bClaimSpaces, fuzzSpace[:], v}, // claims_test.go
			{bClaims, cat(fuzzSpace[:], fuzzToken[:]), v},
			{bClaimOwned, cat(fuzzDev[:], fuzzSpace[:]), v},
		}
		if len(v) > 0 && len(v) <= 64 {
			// An index key of any length under the label's prefix.
			puts = append(puts, struct{ bucket, key, val []byte }{bAccounts, cat(accountPrefix(fuzzAccount), v), nil})
		}
		for _, p := range puts {
			if err := tx.Bucket(p.bucket).Put(p.key, p.val); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
