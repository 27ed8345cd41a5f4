package bboltstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/keys/identity"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// The schema-1 fixture, testdata/relay/schema1.db, is a relay database as a
// schema-1 relay wrote it, and schema1.json beside it says what it holds.
// The committed file was written through this package's Store API while
// SchemaVersion was 1 (the steps are listed in buildSchema1Fixture). The
// store no longer writes schema 1, so the writer here is frozen: it puts
// the same records with the schema-1 layout directly, and
// TestSchema1FixtureReproducible checks that it still reproduces the
// committed file record for record. To write it again:
//
//	go test ./relay/store/bboltstore -run TestWriteSchema1Fixture -schema1-fixture=PATH.db
var schema1Fixture = flag.String("schema1-fixture", "", "write the schema-1 fixture database to this path (and its manifest beside it, .json)")

// schema1FixturePath is the committed fixture, from this package.
const schema1FixturePath = "../../../testdata/relay/schema1.db"

// fixtureBytes derives the fixture's every key, ID, code and payload from
// a name, so that the fixture is the same each time it is written.
func fixtureBytes(name string) [32]byte {
	return sha256.Sum256([]byte("postern schema1 fixture " + name))
}

var (
	fixtureT0      = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	fixtureInvites = 72 * time.Hour
)

// fixtureManifest is schema1.json: what the fixture holds, with the
// secrets a test needs to act on it (identity secrets that sign as the
// devices, invite codes, capability tokens). They are test values, public
// on purpose.
type fixtureManifest struct {
	Note      string            `json:"note"`
	Devices   []fixtureDevice   `json:"devices"`
	Invites   []fixtureInvite   `json:"invites"`
	Mailboxes []fixtureMailbox  `json:"mailboxes"`
	Prekeys   []fixturePrekeys  `json:"prekeys"`
	Blobs     []fixtureBlob     `json:"blobs"`
	Times     map[string]string `json:"times"`
}

type fixtureDevice struct {
	Name           string `json:"name"`
	ID             string `json:"id"`
	IdentitySecret string `json:"identity_secret"` // hex; identity.ParseIdentitySecret signs as the device
	State          string `json:"state"`           // active, suspended, revoked
	Enrolled       string `json:"enrolled"`
	LastSeen       string `json:"last_seen"`
	Invite         string `json:"invite,omitempty"` // the code it enrolled with (none: open enrolment)
}

type fixtureInvite struct {
	Code    string `json:"code"`
	Expires int64  `json:"expires"`
	Used    bool   `json:"used"`
}

type fixtureMailbox struct {
	ID           string              `json:"id"`
	Owner        string              `json:"owner"`
	Deleted      bool                `json:"deleted,omitempty"` // its owner was revoked
	Capabilities []fixtureCapability `json:"capabilities"`
	Envelopes    []fixtureEnvelope   `json:"envelopes"` // queued, oldest first
	Acked        []string            `json:"acked,omitempty"`
}

type fixtureCapability struct {
	Token string `json:"token"` // hex
	State string `json:"state"` // live, revoked
}

type fixtureEnvelope struct {
	ID   string `json:"id"`
	Fill byte   `json:"fill"` // the envelope is Version, KindSealed, then Size-2 bytes of Fill
	Size int    `json:"size"`
}

type fixturePrekeys struct {
	Device  string   `json:"device"`
	Bundle  string   `json:"bundle"`   // hex
	OneTime []string `json:"one_time"` // hex, oldest first
}

type fixtureBlob struct {
	Key       string `json:"key"`
	Owner     string `json:"owner"`
	Size      uint64 `json:"size"`
	Committed uint64 `json:"committed"`
	Finished  bool   `json:"finished"`
}

func fixtureIdentity(t testing.TB, name string) (*identity.Identity, []byte) {
	t.Helper()
	ed, ml := fixtureBytes("ed25519 "+name), fixtureBytes("mldsa65 "+name)
	secret := append(append([]byte{0x20, 0x01}, ed[:]...), ml[:]...)
	id, err := identity.ParseIdentitySecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return id, secret
}

func fixtureCode(name string) string {
	b := fixtureBytes("invite " + name)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:16]))
}

// fixtureInviteHash is relay.InviteHash (not importable here: relay
// imports this package).
func fixtureInviteHash(code string) store.InviteHash {
	return sha256.Sum256([]byte(protocol.LabelPrefix + "invite" + code))
}

func fixtureEnvelopeID(name string) protocol.EnvelopeID {
	b := fixtureBytes("envelope " + name)
	var e protocol.EnvelopeID
	copy(e[:], b[:])
	e[6] = e[6]&0x0f | 0x40
	e[8] = e[8]&0x3f | 0x80
	return e
}

func fixtureEnvelopeData(fill byte, size int) []byte {
	b := make([]byte, size)
	b[0], b[1] = protocol.Version, byte(protocol.KindSealed)
	for i := 2; i < size; i++ {
		b[i] = fill
	}
	return b
}

// fixtureBucket is one bucket of the fixture: its sequence and records.
type fixtureBucket struct {
	seq     uint64
	records map[string][]byte
}

// buildSchema1Fixture returns the manifest and the buckets of the
// schema-1 fixture: what a schema-1 store holds after these calls, all at
// fixtureT0 (2026-03-01 10:00 UTC) unless said otherwise:
//
//  1. AddInvites: invites unused-1, unused-2 and used, expiring at t0+72h.
//  2. EnrollDevice: alice-phone with invite used; bob-laptop and
//     carol-tablet without one (open enrolment).
//  3. DeviceSeen: alice-phone at t0+49h.
//  4. CreateMailbox, AddCapability, RevokeCapability, Append (1 KiB
//     envelopes received at t0, expiring 14 days later), Ack: alice-1
//     (capability a live, blocked revoked; envelopes e1 to e4, e2 acked),
//     alice-2 (capabilities a and b, empty), bob-1 (a; e1), carol-1 (a;
//     e1).
//  5. PublishPrekeys: alice a bundle and three one-time prekeys, bob a
//     bundle.
//  6. CreateBlob and CommitBlob: one finished one-chunk blob of alice's,
//     finished at t0+1m.
//  7. SuspendDevice bob-laptop; RevokeDevice carol-tablet (her mailbox,
//     envelope and capability deleted).
func buildSchema1Fixture(t testing.TB) (fixtureManifest, map[string]*fixtureBucket) {
	m := fixtureManifest{
		Note:  "testdata/relay/schema1.db holds this; written by TestWriteSchema1Fixture with the schema-1 store (see README.md). Test values: the secrets below are public on purpose.",
		Times: map[string]string{"t0": fixtureT0.Format(time.RFC3339)},
	}
	buckets := map[string]*fixtureBucket{}
	for _, name := range []string{"meta", "devices", "mailboxes", "owned", "caps", "invites", "bundles", "prekeys", "env", "env_mbox", "env_id", "env_exp", "blobs", "blob_use", "blob_exp", "seen"} {
		buckets[name] = &fixtureBucket{records: map[string][]byte{}}
	}
	put := func(bucket string, k, v []byte) { buckets[bucket].records[string(k)] = v }
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	dayOf := func(t time.Time) uint32 { return uint32(t.Unix() / 86400) }
	dayStr := func(t time.Time) string { return t.UTC().Format(time.DateOnly) }
	put("meta", keySchema, u32(1))

	// Invites: expires u64 || used u8.
	expires := fixtureT0.Add(fixtureInvites)
	for _, n := range []string{"unused-1", "unused-2", "used"} {
		used := n == "used"
		h := fixtureInviteHash(fixtureCode(n))
		v := u64(uint64(expires.Unix()))
		if used {
			v = append(v, 1)
		} else {
			v = append(v, 0)
		}
		put("invites", h[:], v)
		m.Invites = append(m.Invites, fixtureInvite{Code: fixtureCode(n), Expires: expires.Unix(), Used: used})
	}

	// Devices: flags u8 || enrolled day u32 || public key; seen: day u32.
	ids := map[string]protocol.DeviceID{}
	for _, d := range []struct {
		name, state, invite string
		flags               byte
		seen                time.Time
	}{
		{"alice-phone", "active", "used", 0, fixtureT0.Add(49 * time.Hour)},
		{"bob-laptop", "suspended", "", 2, fixtureT0},
		{"carol-tablet", "revoked", "", 1, fixtureT0},
	} {
		idn, secret := fixtureIdentity(t, d.name)
		id := protocol.DeviceID(idn.Public().Fingerprint())
		ids[d.name] = id
		put("devices", id[:], append(append([]byte{d.flags}, u32(dayOf(fixtureT0))...), idn.Public().Bytes()...))
		put("seen", id[:], u32(dayOf(d.seen)))
		code := ""
		if d.invite != "" {
			code = fixtureCode(d.invite)
		}
		m.Devices = append(m.Devices, fixtureDevice{Name: d.name, ID: id.String(), IdentitySecret: hex.EncodeToString(secret), State: d.state, Enrolled: dayStr(fixtureT0), LastSeen: dayStr(d.seen), Invite: code})
	}

	// Mailboxes: owner || depth u32; owned: owner || mailbox; caps:
	// mailbox || hash -> state; env: seq -> mailbox || id || received ||
	// expires || data, with env_mbox, env_id and env_exp. Sequences count
	// every Append, also of envelopes deleted since.
	received := fixtureT0.Truncate(protocol.TimeGranularity)
	envExpires := received.Add(protocol.DefaultRetention)
	var seq uint64
	for _, mbx := range []struct {
		name, owner         string
		caps, revoked, envs []string
		acked               string
	}{
		{"alice-1", "alice-phone", []string{"alice-1-a"}, []string{"alice-1-blocked"}, []string{"alice-1-e1", "alice-1-e2", "alice-1-e3", "alice-1-e4"}, "alice-1-e2"},
		{"alice-2", "alice-phone", []string{"alice-2-a", "alice-2-b"}, nil, nil, ""},
		{"bob-1", "bob-laptop", []string{"bob-1-a"}, nil, []string{"bob-1-e1"}, ""},
		{"carol-1", "carol-tablet", []string{"carol-1-a"}, nil, []string{"carol-1-e1"}, ""},
	} {
		b := fixtureBytes("mailbox " + mbx.name)
		mb := protocol.MailboxID(b[:16])
		owner := ids[mbx.owner]
		deleted := mbx.owner == "carol-tablet"
		fm := fixtureMailbox{ID: mb.String(), Owner: owner.String(), Deleted: deleted}
		for i, c := range append(append([]string(nil), mbx.caps...), mbx.revoked...) {
			tb := fixtureBytes("capability " + c)
			tok, err := protocol.CapabilityTokenFromBytes(tb[:])
			if err != nil {
				t.Fatal(err)
			}
			state, sb := "live", byte(store.CapabilityLive)
			if i >= len(mbx.caps) {
				state, sb = "revoked", byte(store.CapabilityRevoked)
			}
			h := tok.Hash()
			if !deleted {
				put("caps", cat(mb[:], h[:]), []byte{sb})
			}
			fm.Capabilities = append(fm.Capabilities, fixtureCapability{Token: hex.EncodeToString(tb[:]), State: state})
		}
		var depth uint32
		for i, e := range mbx.envs {
			seq++
			fill := byte('a' + i)
			id := fixtureEnvelopeID(e)
			if e == mbx.acked {
				fm.Acked = append(fm.Acked, id.String())
				continue
			}
			if deleted {
				continue
			}
			sk := u64(seq)
			put("env", sk, cat(mb[:], id[:], u64(uint64(received.Unix())), u64(uint64(envExpires.Unix())), fixtureEnvelopeData(fill, 1024)))
			put("env_mbox", cat(mb[:], sk), []byte{})
			put("env_id", id[:], sk)
			put("env_exp", cat(u64(uint64(envExpires.Unix())), sk), []byte{})
			fm.Envelopes = append(fm.Envelopes, fixtureEnvelope{ID: id.String(), Fill: fill, Size: 1024})
			depth++
		}
		if !deleted {
			put("mailboxes", mb[:], cat(owner[:], u32(depth)))
			put("owned", cat(owner[:], mb[:]), []byte{})
		}
		m.Mailboxes = append(m.Mailboxes, fm)
	}
	buckets["env"].seq = seq

	// Prekeys: device || seq -> prekey; bundles: device -> bundle.
	var pseq uint64
	for _, p := range []struct {
		dev, name string
		n         int
	}{{"alice-phone", "alice", 3}, {"bob-laptop", "bob", 0}} {
		id := ids[p.dev]
		bundle := fixtureBytes("bundle " + p.name)
		put("bundles", id[:], bundle[:])
		fp := fixturePrekeys{Device: id.String(), Bundle: hex.EncodeToString(bundle[:])}
		for i := range p.n {
			pk := fixtureBytes("prekey " + p.name + " " + string(rune('0'+i)))
			pseq++
			put("prekeys", cat(id[:], u64(pseq)), pk[:])
			fp.OneTime = append(fp.OneTime, hex.EncodeToString(pk[:]))
		}
		m.Prekeys = append(m.Prekeys, fp)
	}
	buckets["prekeys"].seq = pseq

	// Blobs: key -> owner || size || committed || token hash || created ||
	// finished || expires; blob_use: owner -> bytes u64 || unfinished u32;
	// blob_exp: expires || key.
	alice := ids["alice-phone"]
	key := fixtureBytes("blob alice")
	token := fixtureBytes("blob token alice")
	size := uint64(protocol.BlobCipherChunkSize)
	finished := fixtureT0.Add(time.Minute)
	blobExpires := finished.Add(protocol.DefaultBlobRetention)
	put("blobs", key[:], cat(alice[:], u64(size), u64(size), token[:], u64(uint64(fixtureT0.Unix())), u64(uint64(finished.Unix())), u64(uint64(blobExpires.Unix()))))
	put("blob_use", alice[:], cat(u64(size), u32(0)))
	put("blob_exp", cat(u64(uint64(blobExpires.Unix())), key[:]), []byte{})
	m.Blobs = append(m.Blobs, fixtureBlob{Key: hex.EncodeToString(key[:]), Owner: alice.String(), Size: size, Committed: size, Finished: true})
	return m, buckets
}

// writeSchema1File writes buckets to a new bbolt file at path with the
// store's options, then copies it as `postern-relay backup` does
// (tx.WriteTo), so that the copy holds only the pages in use.
func writeSchema1File(t testing.TB, path string, buckets map[string]*fixtureBucket) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "relay.db")
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{NoFreelistSync: true, FreelistType: bolt.FreelistMapType, PageSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for name, fb := range buckets {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			if err := b.SetSequence(fb.seq); err != nil {
				return err
			}
			for k, v := range fb.records {
				if err := b.Put([]byte(k), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}
	if err := BackupFile(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestWriteSchema1Fixture(t *testing.T) {
	if *schema1Fixture == "" {
		t.Skip("only with -schema1-fixture=PATH")
	}
	path := *schema1Fixture
	if _, err := os.Stat(path); err == nil {
		t.Fatalf("%s exists; the fixture is written once", path)
	}
	m, buckets := buildSchema1Fixture(t)
	writeSchema1File(t, path, buckets)
	j, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(strings.TrimSuffix(path, ".db")+".json", append(j, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// dumpFile reads every bucket of a closed bbolt file: its sequence and
// records.
func dumpFile(t testing.TB, path string) map[string]*fixtureBucket {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	out := map[string]*fixtureBucket{}
	err = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			fb := &fixtureBucket{seq: b.Sequence(), records: map[string][]byte{}}
			out[string(name)] = fb
			return b.ForEach(func(k, v []byte) error {
				fb.records[string(k)] = bytes.Clone(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffBuckets lists how got differs from want (bucket names, sequences,
// keys and values), at most a few lines per bucket.
func diffBuckets(want, got map[string]*fixtureBucket) []string {
	var out []string
	for name, w := range want {
		g := got[name]
		if g == nil {
			out = append(out, fmt.Sprintf("bucket %s missing", name))
			continue
		}
		if g.seq != w.seq {
			out = append(out, fmt.Sprintf("bucket %s: sequence %d, want %d", name, g.seq, w.seq))
		}
		n := 0
		for k, wv := range w.records {
			gv, ok := g.records[k]
			switch {
			case !ok:
				out = append(out, fmt.Sprintf("bucket %s: key %x missing", name, k))
			case !bytes.Equal(gv, wv):
				out = append(out, fmt.Sprintf("bucket %s: key %x: value %x, want %x", name, k, gv[:min(len(gv), 48)], wv[:min(len(wv), 48)]))
			default:
				continue
			}
			if n++; n > 3 {
				break
			}
		}
		for k := range g.records {
			if _, ok := w.records[k]; !ok {
				out = append(out, fmt.Sprintf("bucket %s: extra key %x", name, k))
			}
		}
	}
	for name := range got {
		if want[name] == nil {
			out = append(out, fmt.Sprintf("extra bucket %s", name))
		}
	}
	sort.Strings(out)
	return out
}

// TestSchema1FixtureReproducible: the frozen writer reproduces the
// committed fixture (written by the schema-1 store) record for record,
// and its manifest.
func TestSchema1FixtureReproducible(t *testing.T) {
	m, want := buildSchema1Fixture(t)
	if d := diffBuckets(want, dumpFile(t, schema1FixturePath)); len(d) > 0 {
		t.Errorf("testdata/relay/schema1.db differs from the fixture's definition:\n%s", strings.Join(d, "\n"))
	}
	j, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(strings.TrimSuffix(schema1FixturePath, ".db") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(j, '\n'), committed) {
		t.Error("testdata/relay/schema1.json differs from the fixture's definition")
	}
	path := filepath.Join(t.TempDir(), "schema1.db")
	writeSchema1File(t, path, want)
	if d := diffBuckets(want, dumpFile(t, path)); len(d) > 0 {
		t.Errorf("written fixture differs:\n%s", strings.Join(d, "\n"))
	}
	if fi, err := os.Stat(schema1FixturePath); err != nil || fi.Size() > 200<<10 {
		t.Errorf("fixture size: %v, %v (keep it under 200 KiB)", fi, err)
	}
}
