package relay

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/postern/postern/relay/store"
	"github.com/postern/postern/relay/store/bboltstore"
)

// testStore opens the bbolt store in dir for the package's own tests
// (relaytest.Store cannot be imported here: it imports relay). Only
// tests import bboltstore: TestRelayDoesNotImportBackend.
func testStore(t testing.TB, dir string) store.Store {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	st, err := bboltstore.Open(filepath.Join(dir, DBFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
