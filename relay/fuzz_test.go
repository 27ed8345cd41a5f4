package relay

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Run `go test ./relay -run TestWriteFuzzCorpus -update-corpus` to
// regenerate the committed seed corpus of FuzzAdminRequest.
var updateCorpus = flag.Bool("update-corpus", false, "rewrite the testdata/fuzz seed corpora of fuzz_test.go")

// adminSeeds are requests as the admin client (Admin) encodes them, and a
// few malformed ones.
func adminSeeds() map[string][]byte {
	enc := func(r AdminRequest) []byte {
		var b bytes.Buffer
		if err := json.NewEncoder(&b).Encode(r); err != nil {
			panic(err)
		}
		return b.Bytes()
	}
	return map[string][]byte{
		"valid-0":               enc(AdminRequest{Op: "invite.create"}),
		"valid-1":               enc(AdminRequest{Op: "invite.create", Count: 3, TTL: "1h30m"}),
		"valid-2":               enc(AdminRequest{Op: "invite.create", Count: MaxInvites, TTL: "720h"}),
		"invalid-op":            enc(AdminRequest{Op: "invite.delete"}),
		"invalid-count":         enc(AdminRequest{Op: "invite.create", Count: MaxInvites + 1}),
		"invalid-ttl":           enc(AdminRequest{Op: "invite.create", TTL: "-1h"}),
		"invalid-ttl-syntax":    enc(AdminRequest{Op: "invite.create", TTL: "soon"}),
		"invalid-truncated":     enc(AdminRequest{Op: "invite.create", Count: 2})[:20],
		"invalid-not-an-object": []byte("[\"invite.create\"]\n"),
		"valid-account-0":       enc(AdminRequest{Op: "invite.create", Count: 2, Account: "dr.smith"}),
		"valid-account-1":       enc(AdminRequest{Op: "account.list"}),
		"valid-account-2":       enc(AdminRequest{Op: "device.list", Account: "dr.smith"}),
		"valid-account-3":       enc(AdminRequest{Op: "account.revoke", Account: "dr.smith"}),
		"invalid-account-label": enc(AdminRequest{Op: "invite.create", Account: "dr.\u202esmith"}),
		"invalid-account-long":  enc(AdminRequest{Op: "account.suspend", Account: strings.Repeat("x", 65)}),
		"invalid-account-none":  enc(AdminRequest{Op: "account.revoke"}),
	}
}

func TestWriteFuzzCorpus(t *testing.T) {
	if !*updateCorpus {
		t.Skip("corpus regeneration only with -update-corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzAdminRequest")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range adminSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A fuzz target whose seed folder is gone would quietly start from nothing.
func TestFuzzCorpusPresent(t *testing.T) {
	for name := range adminSeeds() {
		if _, err := os.Stat(filepath.Join("testdata", "fuzz", "FuzzAdminRequest", name)); err != nil {
			t.Errorf("%v (regenerate with -update-corpus)", err)
		}
	}
}

// adminConn is one admin connection in memory: the request bytes, then
// EOF (as a client that half-closes), and a buffer for the answer.
type adminConn struct {
	r io.Reader
	w bytes.Buffer
}

func (c *adminConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *adminConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c *adminConn) Close() error                     { return nil }
func (c *adminConn) LocalAddr() net.Addr              { return &net.UnixAddr{Name: AdminSocket, Net: "unix"} }
func (c *adminConn) RemoteAddr() net.Addr             { return &net.UnixAddr{Net: "unix"} }
func (c *adminConn) SetDeadline(time.Time) error      { return nil }
func (c *adminConn) SetReadDeadline(time.Time) error  { return nil }
func (c *adminConn) SetWriteDeadline(time.Time) error { return nil }

// FuzzAdminRequest feeds arbitrary bytes to the admin socket's connection
// handler, over a real relay and store on a temp dir but no listener. The
// answer is always exactly one JSON AdminResponse: an error, or the answer
// to a known op; codes only for a well-formed invite.create (a valid
// account label, if any), as many as asked, each a fresh 26-character
// lowercase base32 code. Backup requests are skipped: they write files.
func FuzzAdminRequest(f *testing.F) {
	dir := f.TempDir()
	r, err := New(Config{DataDir: dir, Store: testStore(f, dir), PurgeInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { r.Close() })
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, req []byte) {
		var peek AdminRequest
		if json.NewDecoder(io.LimitReader(bytes.NewReader(req), maxAdminRequest)).Decode(&peek) == nil && peek.Op == "backup" {
			t.Skip("backup writes a file where the request says")
		}
		c := &adminConn{r: bytes.NewReader(req)}
		r.serveAdminConn(c)
		dec := json.NewDecoder(&c.w)
		dec.DisallowUnknownFields()
		var resp AdminResponse
		if err := dec.Decode(&resp); err != nil {
			t.Fatalf("answer %q: %v", c.w.String(), err)
		}
		if dec.More() {
			t.Fatal("more than one answer")
		}
		if resp.Error != "" {
			if len(resp.Codes) != 0 {
				t.Fatalf("answer %+v: an error and codes", resp)
			}
			return
		}
		// What the handler must have understood (same limit, same decoder).
		var want AdminRequest
		if err := json.NewDecoder(io.LimitReader(bytes.NewReader(req), maxAdminRequest)).Decode(&want); err != nil {
			t.Fatalf("an answer for an undecodable request: %v", err)
		}
		switch want.Op {
		case "invite.create":
		case "invite.revoke", "device.list", "device.revoke", "device.suspend", "device.reinstate", "device.restore", "device.assign",
			"account.list", "account.revoke", "account.suspend", "account.reinstate", "account.restore":
			if len(resp.Codes) != 0 {
				t.Fatalf("codes for %+v", want)
			}
			if strings.HasPrefix(want.Op, "account.") && want.Op != "account.list" {
				if _, err := ParseAccountLabel(want.Account); err != nil {
					t.Fatalf("%s of a bad label %q answered %+v", want.Op, want.Account, resp)
				}
			}
			return
		default:
			t.Fatalf("answer %+v to an unknown op %q", resp, want.Op)
		}
		if want.Account != "" {
			if _, err := ParseAccountLabel(want.Account); err != nil {
				t.Fatalf("codes for a bad account label %q", want.Account)
			}
		}
		n := want.Count
		if n == 0 {
			n = 1
		}
		if want.Op != "invite.create" || n < 1 || n > MaxInvites || len(resp.Codes) != n {
			t.Fatalf("%d codes for %+v", len(resp.Codes), want)
		}
		if want.TTL != "" {
			if d, err := time.ParseDuration(want.TTL); err != nil || d <= 0 {
				t.Fatalf("codes for ttl %q", want.TTL)
			}
		}
		seen := map[string]bool{}
		for _, code := range resp.Codes {
			if len(code) != 26 || strings.Trim(code, "abcdefghijklmnopqrstuvwxyz234567") != "" || seen[code] {
				t.Fatalf("bad or repeated code %q", code)
			}
			seen[code] = true
		}
	})
}
