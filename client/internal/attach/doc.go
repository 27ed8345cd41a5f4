// Package attach is Postern's attachment encryption: a fresh key per file,
// the file padded to a Padmé-rounded number of 64 KiB chunks, each chunk
// sealed with ChaCha20-Poly1305 in the STREAM construction (as in age: a
// chunk counter and a final-chunk flag in the nonce). It is pure: no
// network, no storage, no logging. protocol/SPEC.md section 12.2 is
// normative for every byte and label.
//
// Memory is constant: one 64 KiB chunk buffer per Reader or Decryptor,
// whatever the file size. The format is chunk-addressable, so uploads and
// downloads resume at any chunk.
//
// # Sending
//
//	key, err := attach.NewKey()
//	digest, err := attach.Digest(f)                 // announced with the key
//	size := attach.CipherSize(plainSize)            // protocol.CreateBlob{Size: size}
//	enc := attach.NewEncryptor(key, f, plainSize)   // f is an *os.File (io.ReaderAt)
//	body := enc.Reader(committed / attach.CipherChunkSize) // PUT from the relay's offset
//
// # Receiving
//
//	dec := attach.NewDecryptor(key, plainSize, part) // part: the .part file
//	_, err = io.Copy(dec, resp.Body)
//	got, err := dec.Close()                          // ErrTruncated if chunks are missing
//	// compare got with the announced digest, then rename part into place
//
// To resume, ResumeAt(plainSize, partLen) gives the chunk to continue from
// and the prefix of the .part file to keep; re-hash that prefix into a
// sha256.New(), then NewDecryptorAt and GET with Range: bytes=CipherOffset(from)-.
//
// # Security
//
//   - Each chunk is authenticated with its index and a flag saying whether it
//     is the last one, under a key unique to the file. Reordering, swapping
//     chunks within a file or between files, flipping any bit, cutting a
//     chunk short, and dropping chunks from the end (including the last one)
//     are all detected; a Decryptor writes only authenticated plaintext.
//   - Every authentication failure is the single error ErrDecrypt.
//   - The padding chunks are encrypted and verified like the others, and
//     their bytes must be zero, so a file has one valid encoding per key.
//   - The relay learns the padded size only: the chunk count rounded up by
//     Padmé, which leaks O(log log n) bits of the chunk count n and costs
//     less than 12 % (plus up to one chunk of rounding).
//   - A key must never encrypt two files: nonces are counters. NewKey for
//     every file, including a re-send of the same file.
//   - The whole-file SHA-256 (Digest, Decryptor.Close) is carried in the
//     announcement; the chunk format alone already authenticates the file
//     against anyone who does not hold the key. The sender, who holds the
//     key, can send whatever it likes.
//   - Go cannot promise that keys are wiped from memory; this package does
//     not try.
package attach
