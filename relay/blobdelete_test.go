package relay_test

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/relaytest"
	"github.com/postern/postern/relay/store"
)

// The uploader gives a blob up with DELETE and its upload token: the
// reserved size and the unfinished slot are free at once, the file is
// gone, and the ID no longer downloads.
func TestBlobDelete(t *testing.T) {
	srv := relaytest.New(t, &relaytest.Options{BlobQuota: 6 * chunk, MaxBlobSize: 4 * chunk})
	c := dial(t, srv.URL)
	d := newDevice(t)
	wantType[*protocol.Authenticated](t, c.enroll(d, ""))
	idx := srv.Relay().Store().(store.BlobStore)
	usage := func() store.BlobUsage {
		u, err := idx.BlobUsage(bg, deviceID(d))
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	abandoned := createBlob(t, c, 4*chunk)
	wantHTTP(t, put(t, srv, abandoned, 0, randomBytes(chunk)), http.StatusNoContent, 0)
	finished := createBlob(t, c, 2*chunk)
	wantHTTP(t, put(t, srv, finished, 0, randomBytes(2*chunk)), http.StatusNoContent, 0)
	wantCode(t, c.do(&protocol.CreateBlob{Size: chunk}), protocol.CodeBlobQuota)

	url := blobURL(srv, abandoned.Blob)
	wantHTTP(t, blobReq(t, http.MethodDelete, url, "", -1, nil), http.StatusUnauthorized, protocol.CodeBlobToken)
	wantHTTP(t, blobReq(t, http.MethodDelete, url, bearer(finished.Token), -1, nil), http.StatusForbidden, protocol.CodeBlobToken)
	if u := usage(); u.Bytes != 6*chunk || u.Unfinished != 1 {
		t.Fatalf("usage after refused deletes %+v", u)
	}
	wantHTTP(t, blobReq(t, http.MethodDelete, url, bearer(abandoned.Token), -1, nil), http.StatusNoContent, 0)
	if u := usage(); u.Bytes != 2*chunk || u.Unfinished != 0 {
		t.Fatalf("usage after deleting the unfinished blob %+v", u)
	}
	if _, err := os.Stat(filepath.Join(srv.DataDir, relay.BlobDir, relay.BlobFileName(abandoned.Blob))); !os.IsNotExist(err) {
		t.Fatalf("the blob file is still there: %v", err)
	}
	wantHTTP(t, blobReq(t, http.MethodDelete, url, bearer(abandoned.Token), -1, nil), http.StatusNotFound, protocol.CodeUnknownBlob)
	wantHTTP(t, put(t, srv, abandoned, chunk, randomBytes(chunk)), http.StatusNotFound, protocol.CodeUnknownBlob)
	createBlob(t, c, 4*chunk) // the space is free again

	// A finished blob the uploader did not announce after all.
	wantHTTP(t, blobReq(t, http.MethodDelete, blobURL(srv, finished.Blob), bearer(finished.Token), -1, nil), http.StatusNoContent, 0)
	resp, _ := download(t, srv, finished.Blob)
	wantHTTP(t, resp, http.StatusNotFound, protocol.CodeUnknownBlob)
	if u := usage(); u.Bytes != 4*chunk || u.Unfinished != 1 {
		t.Fatalf("usage %+v", u)
	}
}
