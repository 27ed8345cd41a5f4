package bboltstore

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"math"

	bolt "go.etcd.io/bbolt"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/store"
)

// Claim-space buckets (SPEC.md section 10 "Claim spaces"). Added within
// schema 4: Open creates missing buckets, so a file written before gains
// them, empty, without a migration.
var (
	// space ID (16) -> creator device (32) || admin capability hash (32)
	// || write capability hash (32) || registers u32
	bClaimSpaces = []byte("claim_spaces")
	// creator device (32) || space ID (16) -> empty (counts spaces per
	// device)
	bClaimOwned = []byte("claim_owned")
	// space ID (16) || SHA-256(label || token) (32) -> version u64 ||
	// value (0..protocol.MaxClaimValue bytes); version >= 1
	bClaims = []byte("claims")
)

func init() { allBuckets = append(allBuckets, bClaimSpaces, bClaimOwned, bClaims) }

const claimSpaceRecordSize = 32 + 32 + 32 + 4

type claimSpace struct {
	creator      protocol.DeviceID
	admin, write protocol.CapabilityHash
	registers    uint32
}

func encodeClaimSpace(sp claimSpace) []byte {
	v := make([]byte, 0, claimSpaceRecordSize)
	v = append(v, sp.creator[:]...)
	v = append(v, sp.admin[:]...)
	v = append(v, sp.write[:]...)
	return binary.BigEndian.AppendUint32(v, sp.registers)
}

func decodeClaimSpace(v []byte) (claimSpace, error) {
	var sp claimSpace
	if len(v) != claimSpaceRecordSize {
		return sp, corrupt("claim space record of %d bytes", len(v))
	}
	copy(sp.creator[:], v[0:32])
	copy(sp.admin[:], v[32:64])
	copy(sp.write[:], v[64:96])
	sp.registers = binary.BigEndian.Uint32(v[96:])
	if sp.registers > protocol.MaxClaimsPerSpace {
		return sp, corrupt("claim space record: %d registers", sp.registers)
	}
	return sp, nil
}

// encodeClaim and decodeClaim are a register's value: version u64 ||
// value. A stored register has been written at least once (version >= 1).
func encodeClaim(c store.Claim) []byte {
	return append(binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(c.Value)), c.Version), c.Value...)
}

func decodeClaim(v []byte) (store.Claim, error) {
	if len(v) < 8 || len(v) > 8+protocol.MaxClaimValue {
		return store.Claim{}, corrupt("claim record of %d bytes", len(v))
	}
	c := store.Claim{Version: binary.BigEndian.Uint64(v[:8]), Value: bytes.Clone(v[8:])}
	if c.Version == 0 {
		return store.Claim{}, corrupt("claim record at version 0")
	}
	return c, nil
}

// readClaimSpace returns the space and checks that h is its capability
// (the write one, or the admin one with admin true) in constant time.
func readClaimSpace(tx *bolt.Tx, id protocol.ClaimSpaceID, h protocol.CapabilityHash, admin bool) (claimSpace, error) {
	v := tx.Bucket(bClaimSpaces).Get(id[:])
	if v == nil {
		return claimSpace{}, store.ErrUnknownClaimSpace
	}
	sp, err := decodeClaimSpace(v)
	if err != nil {
		return sp, err
	}
	want := sp.write
	if admin {
		want = sp.admin
	}
	if subtle.ConstantTimeCompare(want[:], h[:]) != 1 {
		return sp, store.ErrClaimCapability
	}
	return sp, nil
}

// readClaim returns the register (version 0 and no value if it was never
// written) and whether it is stored.
func readClaim(tx *bolt.Tx, id protocol.ClaimSpaceID, token protocol.ClaimTokenHash) (store.Claim, bool, error) {
	v := tx.Bucket(bClaims).Get(cat(id[:], token[:]))
	if v == nil {
		return store.Claim{}, false, nil
	}
	c, err := decodeClaim(v)
	return c, true, err
}

func (s *Store) CreateClaimSpace(ctx context.Context, creator protocol.DeviceID, id protocol.ClaimSpaceID, admin, write protocol.CapabilityHash) error {
	return s.update(func(tx *bolt.Tx) error {
		n := 0
		c := tx.Bucket(bClaimOwned).Cursor()
		for k, _ := c.Seek(creator[:]); k != nil && hasPrefix(k, creator[:]); k, _ = c.Next() {
			n++
		}
		if n >= protocol.MaxClaimSpacesPerDevice {
			return store.ErrClaimLimit
		}
		spaces := tx.Bucket(bClaimSpaces)
		if spaces.Get(id[:]) != nil {
			// 128 random bits do not collide; a caller's bug must not
			// overwrite another team's space.
			return corrupt("claim space %s exists", id.Short())
		}
		if err := spaces.Put(id[:], encodeClaimSpace(claimSpace{creator: creator, admin: admin, write: write})); err != nil {
			return err
		}
		return tx.Bucket(bClaimOwned).Put(cat(creator[:], id[:]), nil)
	})
}

func (s *Store) UpdateClaimSpace(ctx context.Context, id protocol.ClaimSpaceID, admin protocol.CapabilityHash, op protocol.ClaimSpaceOp, h protocol.CapabilityHash) error {
	// Freeing: replacing a capability writes a record of the same size,
	// and removing staff must work on a full disk as revocations do.
	return s.updateFreeing(func(tx *bolt.Tx) error {
		sp, err := readClaimSpace(tx, id, admin, true)
		if err != nil {
			return err
		}
		switch op {
		case protocol.ClaimSpaceSetWrite:
			sp.write = h
		case protocol.ClaimSpaceSetAdmin:
			sp.admin = h
		case protocol.ClaimSpaceDelete:
			return deleteClaimSpace(tx, id, sp)
		default:
			return corrupt("claim space operation %d", op) // the decoder refuses it
		}
		return tx.Bucket(bClaimSpaces).Put(id[:], encodeClaimSpace(sp))
	})
}

func deleteClaimSpace(tx *bolt.Tx, id protocol.ClaimSpaceID, sp claimSpace) error {
	claims := tx.Bucket(bClaims)
	var keys [][]byte
	c := claims.Cursor()
	for k, _ := c.Seek(id[:]); k != nil && hasPrefix(k, id[:]); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k))
	}
	for _, k := range keys {
		if err := claims.Delete(k); err != nil {
			return err
		}
	}
	if err := tx.Bucket(bClaimOwned).Delete(cat(sp.creator[:], id[:])); err != nil {
		return err
	}
	return tx.Bucket(bClaimSpaces).Delete(id[:])
}

func (s *Store) SetClaim(ctx context.Context, id protocol.ClaimSpaceID, write protocol.CapabilityHash, token protocol.ClaimTokenHash, expected uint64, value []byte) (store.Claim, bool, error) {
	if len(value) > protocol.MaxClaimValue {
		return store.Claim{}, false, store.ErrClaimLimit // the decoder refuses it
	}
	// A read-only look first: a refused set, or one that lost to a
	// committed write, costs no commit. What it reports is committed.
	var cur store.Claim
	err := s.view(func(tx *bolt.Tx) error {
		if _, err := readClaimSpace(tx, id, write, false); err != nil {
			return err
		}
		var err error
		cur, _, err = readClaim(tx, id, token)
		return err
	})
	if err != nil {
		return store.Claim{}, false, err
	}
	if cur.Version != expected {
		return cur, false, nil
	}
	if expected == math.MaxUint64 {
		return store.Claim{}, false, store.ErrClaimLimit
	}
	// The compare that counts is inside the committing transaction: the
	// committer applies writes one after another, so of two sets with
	// the same expected version the second sees the first's.
	var won bool
	err = s.update(func(tx *bolt.Tx) error {
		won = false // the committer may run this twice (a batch, then alone)
		sp, err := readClaimSpace(tx, id, write, false)
		if err != nil {
			return err
		}
		var stored bool
		cur, stored, err = readClaim(tx, id, token)
		if err != nil || cur.Version != expected {
			return err
		}
		if !stored {
			if sp.registers >= protocol.MaxClaimsPerSpace {
				return store.ErrClaimLimit
			}
			sp.registers++
			if err := tx.Bucket(bClaimSpaces).Put(id[:], encodeClaimSpace(sp)); err != nil {
				return err
			}
		}
		next := store.Claim{Version: expected + 1, Value: bytes.Clone(value)}
		if err := tx.Bucket(bClaims).Put(cat(id[:], token[:]), encodeClaim(next)); err != nil {
			return err
		}
		cur, won = next, true
		return nil
	})
	if err != nil {
		return store.Claim{}, false, err
	}
	return cur, won, nil
}

func (s *Store) GetClaim(ctx context.Context, id protocol.ClaimSpaceID, write protocol.CapabilityHash, token protocol.ClaimTokenHash) (store.Claim, error) {
	var cur store.Claim
	err := s.view(func(tx *bolt.Tx) error {
		if _, err := readClaimSpace(tx, id, write, false); err != nil {
			return err
		}
		var err error
		cur, _, err = readClaim(tx, id, token)
		return err
	})
	return cur, err
}
