package backup_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/postern/postern/client/internal/backup"
)

func Example() {
	key := backup.NewRecoveryKey()
	var file bytes.Buffer
	w, err := backup.NewWriter(&file, key)
	if err != nil {
		panic(err)
	}
	w.WriteRecord(backup.RecordIdentity, []byte("identity"))
	w.WriteRecord(backup.RecordMessages, []byte("messages"))
	if err := w.Close(); err != nil {
		panic(err)
	}

	// On the new machine the user types the key shown once.
	typed, err := backup.ParseRecoveryKey(key.SecretText())
	if err != nil {
		panic(err)
	}
	r, err := backup.NewReader(bytes.NewReader(file.Bytes()), typed)
	if err != nil {
		panic(err)
	}
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		fmt.Printf("record %d: %s\n", rec.Type, rec.Data)
	}

	// Another key is told apart from a damaged file.
	_, err = backup.NewReader(bytes.NewReader(file.Bytes()), backup.NewRecoveryKey())
	fmt.Println(errors.Is(err, backup.ErrWrongKey))
	// Output:
	// record 1: identity
	// record 5: messages
	// true
}
