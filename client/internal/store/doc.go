// Package store is a Postern home's encrypted local store: the bbolt file
// store.db and, beside it, erase.keys. protocol/SPEC.md section 9 ("Local
// state" and "Erasure") is normative for its layout.
//
// It owns:
//   - access to the file: one bbolt transaction per call (Update, View),
//     the file opened and closed around it, so that several processes can
//     share a home;
//   - sealing: every value XChaCha20-Poly1305 under a key derived from the
//     store key, bound to its bucket and key; keys are keyed HMAC indexes
//     (Index) or random IDs, never names;
//   - crypto-erasure: the values of the ephemeral buckets (prekey secrets,
//     session states) sealed under record keys that are dropped with an
//     epoch key overwritten in erase.keys;
//   - the schema: a store record with the schema version, the ordered
//     migrations from every older schema, run in one transaction (a store
//     is at its old schema or the current one, never between), the scrub
//     of free pages a migration asks for, and the refusal of a newer
//     schema (ErrTooNew) without changing a byte;
//   - the model (model.go): persons (Self for this device's own), their
//     devices with the routes between each and this device, conversations
//     (direct, group, team queue: the last stored only with its queue
//     record, team.go), messages with their conversation, subject and
//     reply-to, the mailbox index that finds the device writing to a
//     mailbox of ours in one lookup, and the person -> devices index
//     (persondevices.go) that finds a person's devices without opening
//     every device record. A migration and the code that reads its result
//     share these definitions.
//
// Other records (profile, mailbox list, invitations, prekey bookkeeping,
// session states) are the client's: it stores them with Put and Get as
// JSON, or with PutRaw, under the keys it chooses.
//
// # Use
//
//	st, err := store.New(filepath.Join(home, "store.db"), key, nil)
//	err = st.Update(func(t *store.Tx) error {
//		return t.Put(store.BucketMeta, t.Index(store.BucketMeta, []byte("profile")), &p)
//	})
//
// A Tx is valid only inside the function it is given to. Update commits
// (with fsync) before it returns nil; an error from the function rolls
// everything back, erase.keys included.
//
// # Security
//
//   - The store key comes from the key file, opened with the passphrase;
//     the store never sees the passphrase.
//   - A deleted or replaced ephemeral value does not decrypt from the free
//     pages of store.db once its transaction has committed; other values
//     are protected by the store key only.
//   - A store whose epoch key is gone (an old copy of store.db, a lost
//     erase.keys) loses its ephemeral values, and only those.
package store
