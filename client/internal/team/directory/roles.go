package directory

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/postern/postern/keys"
	"github.com/postern/postern/protocol"
)

// ContextRoleRecord is the signature context of a role record (SPEC.md
// section 15.7, "Role accounts").
const ContextRoleRecord = "role-holder"

// labelRoleRecord prefixes the bytes of a role record's tiebreak hash.
const labelRoleRecord = protocol.LabelPrefix + "role-record"

// RoleRecord is a signed change of a role account's holder: a staff member
// of the role's team opting in (Holder = the signer) or out (Holder zero),
// or an administrator setting any holder. It is a record of its own, not
// a new directory, so that taking and leaving a role does not need the
// administrators.
type RoleRecord struct {
	Org    OrgID
	Role   RoleID
	Seq    uint64           // >= 1; see RoleHolding
	Time   time.Time        // when it was signed, unix seconds
	Holder keys.Fingerprint // the new holder; zero: vacant

	Signer    *keys.SigningPublicKey
	Signature []byte

	raw []byte
}

func (r *RoleRecord) check() error {
	if r.Seq == 0 {
		return fail(ErrMalformed, "role record: sequence 0")
	}
	if _, ok := unixTime(r.Time); !ok {
		return fail(ErrMalformed, "role record: time out of range")
	}
	if r.Signer == nil {
		return fail(ErrMalformed, "role record: no signer key")
	}
	return nil
}

func (r *RoleRecord) signedPart() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	t, _ := unixTime(r.Time)
	b := make([]byte, 0, RoleRecordSize)
	b = append(b, tagRoleRecord, encodingVersion)
	b = append(b, r.Org[:]...)
	b = append(b, r.Role[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, t)
	b = append(b, r.Holder[:]...)
	return append(b, r.Signer.Bytes()...), nil
}

// Bytes returns the encoding (RoleRecordSize bytes).
func (r *RoleRecord) Bytes() ([]byte, error) {
	b, err := r.signedPart()
	if err != nil {
		return nil, err
	}
	b = binary.BigEndian.AppendUint16(b, keys.SignatureSize)
	if len(r.Signature) != keys.SignatureSize {
		return append(b, make([]byte, keys.SignatureSize)...), nil
	}
	return append(b, r.Signature...), nil
}

// Sign signs r with s (r.Signer becomes s's key) and returns the encoding,
// parsed back and verified.
func (r *RoleRecord) Sign(s Signer) ([]byte, error) {
	r.Signer = s.Public()
	part, err := r.signedPart()
	if err != nil {
		return nil, err
	}
	if r.Signature, err = s.Sign(ContextRoleRecord, part); err != nil {
		return nil, err
	}
	b, err := r.Bytes()
	if err != nil {
		return nil, err
	}
	if _, err := ParseRoleRecord(b); err != nil {
		return nil, err
	}
	r.raw = b
	return b, nil
}

func decodeRoleRecord(b []byte) (*RoleRecord, error) {
	if len(b) != RoleRecordSize {
		return nil, fail(ErrMalformed, "role record: length %d, want %d", len(b), RoleRecordSize)
	}
	if b[0] != tagRoleRecord || b[1] != encodingVersion {
		return nil, fail(ErrMalformed, "role record: tag 0x%02x version 0x%02x", b[0], b[1])
	}
	rd := &reader{b: b, off: 2}
	r := &RoleRecord{Org: OrgID(rd.id16()), Role: RoleID(rd.id16()), Seq: rd.u64()}
	var ok bool
	if r.Time, ok = rd.time(); !ok {
		return nil, fail(ErrMalformed, "role record: time after 9999-12-31")
	}
	r.Holder = rd.fingerprint()
	k, sig, err := readTrailer(rd, "role record")
	if err != nil {
		return nil, err
	}
	r.Signer, r.Signature = k, sig
	if err := r.check(); err != nil {
		return nil, err
	}
	r.raw = append([]byte(nil), b...)
	return r, nil
}

// ParseRoleRecord parses a role record and verifies its signature by the
// signer key it carries. Whether the signer may make it is
// Directory.CheckRoleRecord's question.
func ParseRoleRecord(b []byte) (*RoleRecord, error) {
	r, err := decodeRoleRecord(b)
	if err != nil {
		return nil, err
	}
	end := RoleRecordSize - 2 - keys.SignatureSize
	if err := verify(r.Signer, ContextRoleRecord, b[:end], r.Signature, "role record"); err != nil {
		return nil, err
	}
	return r, nil
}

// CheckRoleRecord reports whether r may change a role of d: it is of d's
// organisation (ErrWrongOrganisation) and names a listed role (ErrUnknown);
// its holder is zero or a staff member of the role's team, and its signer
// is an administrator of d, or a staff member of the role's team naming
// themselves (opting in) or nobody (opting out) (ErrNotEntitled).
//
// The rule depends only on d, never on who holds the role now, so every
// device reaches the same holder whatever order the records arrive in. A
// consequence, by design: a staff member of the team may vacate the role
// held by a colleague, as they may take it over; the record names them.
func (d *Directory) CheckRoleRecord(r *RoleRecord) error {
	if r.Org != d.Org {
		return ErrWrongOrganisation
	}
	role := d.Role(r.Role)
	if role == nil {
		return fail(ErrUnknown, "role")
	}
	vacant := r.Holder == (keys.Fingerprint{})
	if !vacant && !d.eligible(*role, r.Holder) {
		return fail(ErrNotEntitled, "the holder is not a staff member of the role's team")
	}
	signer := r.Signer.Fingerprint()
	switch {
	case d.IsAdmin(signer):
	case d.eligible(*role, signer) && (vacant || r.Holder == signer):
	default:
		return fail(ErrNotEntitled, "the signer may not change this role")
	}
	return nil
}

// RoleHolding is who holds a role and by which record. Holdings are
// totally ordered by (Seq, Tiebreak), and a device keeps the greatest it
// has seen, so all devices converge on one holder. The directory's own
// entry has Tiebreak all 0xff, so at equal Seq the administrators' word
// wins; a record's Tiebreak is SHA-256("postern.v1 role-record" ||
// record).
type RoleHolding struct {
	Role     RoleID
	Seq      uint64
	Holder   keys.Fingerprint // zero: vacant
	Tiebreak [sha256.Size]byte
}

// Supersedes reports whether h is ordered after o.
func (h RoleHolding) Supersedes(o RoleHolding) bool {
	if h.Seq != o.Seq {
		return h.Seq > o.Seq
	}
	return bytes.Compare(h.Tiebreak[:], o.Tiebreak[:]) > 0
}

// Holding returns the holding the directory records for a role (false if
// the role is not listed).
func (d *Directory) Holding(id RoleID) (RoleHolding, bool) {
	r := d.Role(id)
	if r == nil {
		return RoleHolding{}, false
	}
	h := RoleHolding{Role: id, Seq: r.HolderSeq, Holder: r.Holder}
	for i := range h.Tiebreak {
		h.Tiebreak[i] = 0xff
	}
	return h, true
}

// Holding returns the holding r sets.
func (r *RoleRecord) Holding() RoleHolding {
	h := sha256.New()
	h.Write([]byte(labelRoleRecord))
	h.Write(r.raw)
	out := RoleHolding{Role: r.Role, Seq: r.Seq, Holder: r.Holder}
	h.Sum(out.Tiebreak[:0])
	return out
}

// ApplyRoleRecord checks r against d (CheckRoleRecord) and returns the
// holding that follows cur: r's if it supersedes cur, else ErrRollback and
// cur unchanged. cur must be the holding kept for r's role (start from
// d.Holding). The record's bytes are kept by the caller with the holding.
func (d *Directory) ApplyRoleRecord(cur RoleHolding, r *RoleRecord) (RoleHolding, error) {
	if err := d.CheckRoleRecord(r); err != nil {
		return cur, err
	}
	if r.Role != cur.Role {
		return cur, fail(ErrUnknown, "the record is for another role than the holding")
	}
	next := r.Holding()
	if !next.Supersedes(cur) {
		return cur, fail(ErrRollback, "role record sequence %d does not supersede %d", r.Seq, cur.Seq)
	}
	return next, nil
}

// Merge returns the holding a device keeps for a role when a new
// directory d arrives: the directory's entry if it supersedes cur, else
// cur.
func (d *Directory) Merge(cur RoleHolding) RoleHolding {
	if h, ok := d.Holding(cur.Role); ok && h.Supersedes(cur) {
		return h
	}
	return cur
}

// Holder returns who holds the role under d: h's holder if they are still
// a staff member of the role's team, else zero (vacant; also for a role d
// no longer lists).
func (d *Directory) Holder(h RoleHolding) keys.Fingerprint {
	r := d.Role(h.Role)
	if r == nil || !d.eligible(*r, h.Holder) {
		return keys.Fingerprint{}
	}
	return h.Holder
}

// RoleConversation is what Handover needs of an open or closed
// conversation addressed to a role account.
type RoleConversation struct {
	ID    []byte           // the conversation's ID (opaque)
	Role  RoleID           // the role account it was addressed to
	Owner keys.Fingerprint // who answers it now; zero: nobody yet
	Open  bool             // false once resolved or archived
}

// Move is one conversation handed from one owner to another (To zero: back
// to the role, for its next holder).
type Move struct {
	ID       []byte
	From, To keys.Fingerprint
}

// Handover returns the conversations that move when role passes from one
// holder to another (either may be zero: vacant): every open conversation
// addressed to the role whose owner is the previous holder or nobody goes
// to the new holder. Conversations that the previous holder handed to a
// colleague stay with that colleague, and closed ones stay as they are
// (their history is readable by the role's holder, whoever it is). The
// moves are in the order of convs.
func Handover(role RoleID, from, to keys.Fingerprint, convs []RoleConversation) []Move {
	if from == to {
		return nil
	}
	var out []Move
	for _, c := range convs {
		if c.Role != role || !c.Open {
			continue
		}
		if c.Owner == from || (c.Owner == keys.Fingerprint{} && to != keys.Fingerprint{}) {
			if c.Owner == to {
				continue
			}
			out = append(out, Move{ID: c.ID, From: c.Owner, To: to})
		}
	}
	return out
}
