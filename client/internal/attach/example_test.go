package attach_test

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/postern/postern/client/internal/attach"
)

// A whole transfer: the sender encrypts, the recipient decrypts and checks
// the digest the announcement carried.
func Example() {
	file := strings.NewReader("the quarterly report")
	size := file.Size()

	key, err := attach.NewKey()
	if err != nil {
		log.Fatal(err)
	}
	digest, _ := attach.Digest(io.NewSectionReader(file, 0, size))
	fmt.Println("blob size:", attach.CipherSize(size))

	var blob bytes.Buffer // stands for the relay
	io.Copy(&blob, attach.NewEncryptor(key, file, size).Reader(0))

	var got bytes.Buffer
	d := attach.NewDecryptor(key, size, &got)
	io.Copy(d, &blob)
	sum, err := d.Close()
	fmt.Println(got.String(), err, sum == digest)
	// Output:
	// blob size: 65552
	// the quarterly report <nil> true
}

// Resuming a download into a partial file: keep the verified prefix,
// re-hash it, and continue from the chunk ResumeAt names.
func ExampleNewDecryptorAt() {
	key, _ := attach.NewKey()
	plain := bytes.Repeat([]byte("x"), 3*attach.ChunkSize+10)
	size := int64(len(plain))
	var blob bytes.Buffer
	io.Copy(&blob, attach.NewEncryptor(key, bytes.NewReader(plain), size).Reader(0))
	ct := blob.Bytes()

	// The first attempt stops 100 000 bytes in.
	var part bytes.Buffer
	attach.NewDecryptor(key, size, &part).Write(ct[:100000])

	from, keep := attach.ResumeAt(size, int64(part.Len()))
	part.Truncate(int(keep))
	h := sha256.New()
	h.Write(part.Bytes()) // a client re-reads its .part file here
	d, err := attach.NewDecryptorAt(key, size, &part, from, h)
	if err != nil {
		log.Fatal(err)
	}
	d.Write(ct[attach.CipherOffset(from):]) // GET with Range: bytes=CipherOffset(from)-
	sum, err := d.Close()
	fmt.Println(from, err, sum == sha256.Sum256(plain))
	// Output: 1 <nil> true
}
