// Package backup is Postern's encrypted backup file format and its
// recovery key. The client decides what goes into a backup (identity,
// profile, contacts, conversations, messages, attachment references); this
// package frames those typed records, encrypts them under a recovery key in
// authenticated chunks, and reads them back one by one. It is pure: no
// storage, no network, no logging. protocol/SPEC.md section 14 is
// normative for every byte, label and limit.
//
// # Writing
//
//	key := backup.NewRecoveryKey()
//	w, err := backup.NewWriter(f, key)          // f: a new file (0600, O_EXCL)
//	err = w.WriteRecord(backup.RecordIdentity, b) // ... one call per record
//	err = w.Close()                              // then fsync f
//	fmt.Println(key.SecretText())                // shown once: 16 groups of 6 digits
//
// # Reading
//
//	key, err := backup.ParseRecoveryKey(typed)   // names the mistyped group
//	r, err := backup.NewReader(f, key)           // ErrWrongKey, ErrDamaged, ...
//	for {
//		rec, err := r.Next()
//		if err == io.EOF { break }               // only now is the backup whole
//		...
//	}
//
// Memory is constant while writing (one 64 KiB chunk) and bounded while
// reading (one chunk and one record of at most MaxRecordSize).
//
// # Security
//
//   - The recovery key is 256 bits from crypto/rand, so no password
//     stretching is needed: HKDF-SHA-256 with a random per-file salt
//     derives the payload key, bound to the header. Whoever holds the key
//     text can read every backup made with it.
//   - The payload is age's STREAM construction: ChaCha20-Poly1305 chunks
//     with a counter and a final-chunk flag in the nonce. A changed byte, a
//     reordered, duplicated or dropped chunk, a chunk from another backup,
//     and a file cut at a chunk boundary are all detected; the Reader
//     returns no byte of a chunk that did not authenticate, and a restore
//     is complete only when Next returns io.EOF.
//   - A wrong key is told apart from damage by a key check value in the
//     header (an HMAC under a key derived from the recovery key, which
//     reveals nothing useful: the key is uniformly random) and an unkeyed
//     header checksum. Accidental damage to the header fails the checksum
//     (ErrDamaged); an intact header with another key fails the key check
//     (ErrWrongKey). A header altered on purpose, checksum recomputed, is
//     reported as a wrong key; it is refused either way.
//   - Record types and sizes are inside the encryption; the file's length
//     shows the backup's size.
//   - Go cannot promise that keys are wiped from memory; this package does
//     not try.
package backup
