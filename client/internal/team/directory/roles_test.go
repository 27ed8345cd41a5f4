package directory

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/postern/postern/keys"
)

func roleRecord(t *testing.T, signer string, seq uint64, holder keys.Fingerprint) *RoleRecord {
	t.Helper()
	r := &RoleRecord{Org: testOrg, Role: onCall, Seq: seq, Time: issued.Add(time.Duration(seq) * time.Hour), Holder: holder}
	b, err := r.Sign(who(t, signer))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParseRoleRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRoleRecords(t *testing.T) {
	d := sampleDirectory(t)
	signed(t, d, "admin")
	h0, ok := d.Holding(onCall)
	if !ok || d.Holder(h0) != fp(t, "alice") {
		t.Fatal("the directory's holder")
	}
	var none keys.Fingerprint
	for _, tc := range []struct {
		name   string
		signer string
		holder keys.Fingerprint
		want   error
	}{
		{"bob opts in", "bob", fp(t, "bob"), nil},
		{"carol (pharmacy and radiology) opts in", "carol", fp(t, "carol"), nil},
		{"alice opts out", "alice", none, nil},
		{"an admin hands it to bob", "it", fp(t, "bob"), nil},
		{"an admin vacates it", "admin", none, nil},
		{"dan (radiology) opts in", "dan", fp(t, "dan"), ErrNotEntitled},
		{"bob names carol", "bob", fp(t, "carol"), ErrNotEntitled},
		{"an outsider opts in", "mallory", fp(t, "mallory"), ErrNotEntitled},
		{"an admin names a radiographer", "admin", fp(t, "dan"), ErrNotEntitled},
		{"dan vacates a pharmacy role", "dan", none, ErrNotEntitled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := roleRecord(t, tc.signer, 1, tc.holder)
			h, err := d.ApplyRoleRecord(h0, r)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil {
				if h != h0 {
					t.Fatal("a refused record changed the holding")
				}
				return
			}
			if d.Holder(h) != tc.holder {
				t.Fatal("holder not changed")
			}
		})
	}
	// Same or lower sequence than held: refused; other org or role: refused.
	h1, err := d.ApplyRoleRecord(h0, roleRecord(t, "bob", 5, fp(t, "bob")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.ApplyRoleRecord(h1, roleRecord(t, "alice", 4, fp(t, "alice"))); !errors.Is(err, ErrRollback) {
		t.Fatalf("lower sequence: %v", err)
	}
	// The directory's own entry (seq 0) does not undo a record.
	if got := d.Merge(h1); got != h1 {
		t.Fatal("Merge with an older directory entry replaced a record")
	}
	other := &RoleRecord{Org: OrgID{9}, Role: onCall, Seq: 9, Time: issued, Holder: fp(t, "bob")}
	b, err := other.Sign(who(t, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ParseRoleRecord(b)
	if _, err := d.ApplyRoleRecord(h1, r); !errors.Is(err, ErrWrongOrganisation) {
		t.Fatalf("other org: %v", err)
	}
}

// TestRoleConvergence: whatever order devices receive the records in,
// they keep the same holder, including two records of one sequence.
func TestRoleConvergence(t *testing.T) {
	d := sampleDirectory(t)
	signed(t, d, "admin")
	h0, _ := d.Holding(onCall)
	recs := []*RoleRecord{
		roleRecord(t, "bob", 1, fp(t, "bob")),
		roleRecord(t, "carol", 2, fp(t, "carol")),
		roleRecord(t, "alice", 2, keys.Fingerprint{}),
		roleRecord(t, "bob", 2, fp(t, "bob")),
	}
	orders := [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}, {1, 3, 0, 2}}
	var first keys.Fingerprint
	for i, o := range orders {
		h := h0
		for _, j := range o {
			if n, err := d.ApplyRoleRecord(h, recs[j]); err == nil {
				h = n
			} else if !errors.Is(err, ErrRollback) {
				t.Fatal(err)
			}
		}
		if i == 0 {
			first = d.Holder(h)
		} else if d.Holder(h) != first {
			t.Fatalf("order %v gives another holder", o)
		}
	}
}

func TestRoleDirectoryUpdates(t *testing.T) {
	d1 := sampleDirectory(t)
	signed(t, d1, "admin")
	h0, _ := d1.Holding(onCall)
	h1, err := d1.ApplyRoleRecord(h0, roleRecord(t, "bob", 3, fp(t, "bob")))
	if err != nil {
		t.Fatal(err)
	}
	// Version 2 drops bob from pharmacy: the role falls vacant.
	d2 := sampleDirectory(t)
	d2.Version = 2
	for i := range d2.Staff {
		if d2.Staff[i].Identity == fp(t, "bob") {
			d2.Staff[i].Teams = nil
		}
	}
	signed(t, d2, "admin")
	if got := d2.Holder(d2.Merge(h1)); got != (keys.Fingerprint{}) {
		t.Fatal("a holder no longer in the team still holds the role")
	}
	// Version 3: the admins assign carol at sequence 3, beating bob's
	// record of the same sequence.
	d3 := sampleDirectory(t)
	d3.Version = 3
	d3.Roles[0].Holder, d3.Roles[0].HolderSeq = fp(t, "carol"), 3
	signed(t, d3, "admin")
	if got := d3.Holder(d3.Merge(h1)); got != fp(t, "carol") {
		t.Fatal("the admins' entry at an equal sequence does not win")
	}
}

// TestHandover: a role handed over moves its open conversations to the
// new holder.
func TestHandover(t *testing.T) {
	alice, bob, carol := fp(t, "alice"), fp(t, "bob"), fp(t, "carol")
	var none keys.Fingerprint
	other := RoleID{0x77}
	convs := []RoleConversation{
		{ID: []byte("open, alice's"), Role: onCall, Owner: alice, Open: true},
		{ID: []byte("open, unowned"), Role: onCall, Owner: none, Open: true},
		{ID: []byte("open, handed to carol"), Role: onCall, Owner: carol, Open: true},
		{ID: []byte("resolved, alice's"), Role: onCall, Owner: alice, Open: false},
		{ID: []byte("another role's"), Role: other, Owner: alice, Open: true},
		{ID: []byte("open, alice's, 2"), Role: onCall, Owner: alice, Open: true},
	}
	ids := func(ms []Move) []string {
		var out []string
		for _, m := range ms {
			out = append(out, string(m.ID))
		}
		return out
	}
	d := sampleDirectory(t)
	signed(t, d, "admin")
	h0, _ := d.Holding(onCall)
	h1, err := d.ApplyRoleRecord(h0, roleRecord(t, "bob", 1, bob))
	if err != nil {
		t.Fatal(err)
	}
	moves := Handover(onCall, d.Holder(h0), d.Holder(h1), convs)
	if want := []string{"open, alice's", "open, unowned", "open, alice's, 2"}; !slices.Equal(ids(moves), want) {
		t.Fatalf("moved %q, want %q", ids(moves), want)
	}
	for _, m := range moves {
		if m.To != bob || (m.From != alice && m.From != none) {
			t.Fatal("wrong move")
		}
	}
	// Vacated: alice's open conversations go back to the role.
	moves = Handover(onCall, alice, none, convs)
	if want := []string{"open, alice's", "open, alice's, 2"}; !slices.Equal(ids(moves), want) {
		t.Fatalf("vacated: moved %q", ids(moves))
	}
	if Handover(onCall, alice, alice, convs) != nil {
		t.Fatal("no change moved something")
	}
}

func TestRoleRecordDecode(t *testing.T) {
	r := roleRecord(t, "bob", 1, fp(t, "bob"))
	b, _ := r.Bytes()
	for _, tc := range []struct {
		name string
		f    func([]byte) []byte
		want error
	}{
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, ErrMalformed},
		{"tag", func(b []byte) []byte { b[0] = tagDirectory; return b }, ErrMalformed},
		{"sequence 0", func(b []byte) []byte { copy(b[34:42], make([]byte, 8)); return b }, ErrMalformed},
		{"holder changed", func(b []byte) []byte { b[50] ^= 1; return b }, ErrBadSignature},
		{"signature", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseRoleRecord(tc.f(bytes.Clone(b))); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}
