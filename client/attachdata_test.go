package client

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/postern/postern/client/internal/attach"
	"github.com/postern/postern/client/internal/store"
	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay/relaytest"
)

// MaxFileSize is the largest plaintext whose padded blob fits the
// default relay limit.
func TestMaxFileSize(t *testing.T) {
	t.Parallel()
	if got := attach.CipherSize(MaxFileSize); got > protocol.DefaultMaxBlobSize {
		t.Fatalf("CipherSize(MaxFileSize) = %d > %d", got, int64(protocol.DefaultMaxBlobSize))
	}
	if got := attach.CipherSize(MaxFileSize + 1); got <= protocol.DefaultMaxBlobSize {
		t.Fatalf("CipherSize(MaxFileSize+1) = %d fits: MaxFileSize is not the largest", got)
	}
}

// SendData sends files read through io.ReaderAt; ReadAttachment gives
// them back from any offset, and holds the last chunk back from a file
// whose digest does not match.
func TestSendDataReadAttachment(t *testing.T) {
	t.Parallel()
	srv := relaytest.New(t, nil)
	alice, bob, _, _ := pair(t, srv)
	fastTransfers(alice, nil)
	fastTransfers(bob, nil)
	ctx := testCtx(t)
	data := make([]byte, 3*attach.ChunkSize+777)
	rand.Read(data)
	sent, err := alice.SendData(ctx, "bob", "the scan", []FileData{
		{Name: `C:\scans\ward/scan.bin`, Size: int64(len(data)), Data: bytes.NewReader(data)},
		{Name: "empty.txt", Size: 0, Data: bytes.NewReader(nil)},
	}, &SendOptions{Subject: "Scan"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sent.Attachments) != 2 || sent.Attachments[0].Name != "scan.bin" || sent.Attachments[0].Size != int64(len(data)) || sent.Subject != "Scan" {
		t.Fatalf("sent %+v", sent)
	}
	if _, err := bob.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, attach.ChunkSize, attach.ChunkSize + 5, int64(len(data)) - 1, int64(len(data))} {
		var b bytes.Buffer
		if err := bob.ReadAttachment(ctx, sent.ID, 0, off, &b); err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		if !bytes.Equal(b.Bytes(), data[off:]) {
			t.Fatalf("offset %d: %d bytes differ from the file's %d", off, b.Len(), len(data)-int(off))
		}
	}
	var b bytes.Buffer
	if err := bob.ReadAttachment(ctx, sent.ID, 1, 0, &b); err != nil || b.Len() != 0 {
		t.Fatalf("empty file: %d bytes, %v", b.Len(), err)
	}
	if err := bob.ReadAttachment(ctx, sent.ID, 2, 0, &b); !errors.Is(err, ErrNoAttachments) {
		t.Fatalf("file 2 of 2: %v", err)
	}
	if err := bob.ReadAttachment(ctx, sent.ID, 0, int64(len(data))+1, &b); !errors.Is(err, ErrInvalidAttachment) {
		t.Fatalf("offset beyond the file: %v", err)
	}

	// A wrong digest in the stored message (as a forged announcement
	// would give): everything but the last chunk arrives, then the error.
	err = bob.st.update(func(t *tx) error {
		_, err := t.UpdateMessage(sent.ID, func(m *store.Message) { m.Attachments[0].Digest[0] ^= 1 })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	err = bob.ReadAttachment(ctx, sent.ID, 0, 0, &b)
	if !errors.Is(err, ErrAttachmentCorrupt) {
		t.Fatalf("wrong digest: %v", err)
	}
	if b.Len() != 3*attach.ChunkSize || !bytes.Equal(b.Bytes(), data[:b.Len()]) {
		t.Fatalf("wrong digest: %d bytes reached the writer, want the first %d", b.Len(), 3*attach.ChunkSize)
	}
	// A writer that fails ends the read with its own error.
	if err := bob.ReadAttachment(ctx, sent.ID, 0, attach.ChunkSize, failingWriter{}); !errors.Is(err, errWriterBroke) {
		t.Fatalf("failing writer: %v", err)
	}
	if fs, _ := os.ReadDir(filepath.Join(bob.home, "tmp")); len(fs) != 0 {
		t.Fatalf("%d files left in tmp", len(fs))
	}
}

var errWriterBroke = errors.New("writer broke")

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errWriterBroke }

var _ io.Writer = failingWriter{}
