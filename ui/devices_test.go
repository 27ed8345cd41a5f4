package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image/png"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	qr "github.com/piglig/go-qr"

	"github.com/postern/postern/client"
	"github.com/postern/postern/relay/relaytest"
)

// syncBuffer is a log sink that several goroutines write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds; the deadline is a hang guard.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s after 60 s", what)
		}
	}
}

// decodeQR reads the PNG a QR endpoint answers back into its text.
func decodeQR(t *testing.T, a *app, path string) string {
	t.Helper()
	resp, body := a.do("GET", path, "", nil)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/png" {
		t.Fatalf("QR: status %d, type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("QR: Cache-Control %q, want no-store", cc)
	}
	img, err := png.Decode(strings.NewReader(body))
	if err != nil {
		t.Fatalf("QR: not a PNG: %v", err)
	}
	text, err := qr.Decode(img)
	if err != nil {
		t.Fatalf("QR: does not decode: %v", err)
	}
	return text
}

// Linking a device from the API, as the page does: the code comes back
// from the start and from the QR endpoint; the new device's request waits
// for the person's answer; once linked its alert is not shown here,
// where it was linked. A device that sibling links is alerted here until
// acknowledged, also after a lock. Revoking an unknown device gives the
// CLI's sentence; revoking the linked devices gets them refused. The
// link code appears in no log line of the app or its client.
func TestLinkAndRevokeAPI(t *testing.T) {
	r := relaytest.New(t, nil)
	home, alice, _, _ := pair(t, r)
	alice.Close()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass), Logger: logger, Client: &client.Options{KDF: testKDF, Logger: logger}})
	a.login()
	ctx := context.Background()
	state := func() linkJSON {
		t.Helper()
		resp, body := a.do("GET", "/api/devices/link", "", nil)
		return decode[linkJSON](t, "link state", resp, body, http.StatusOK)
	}
	if st := state(); st.State != linkNone || st.Code != "" {
		t.Fatalf("before linking: %+v", st)
	}
	if resp, body := a.do("GET", "/api/devices/link/qr", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("QR without a link: %d %s", resp.StatusCode, body)
	}

	resp, body := a.do("POST", "/api/devices/link", "", nil)
	st := decode[linkJSON](t, "start", resp, body, http.StatusOK)
	if st.State != linkWaiting || !strings.HasPrefix(st.Code, "postern-link:") || st.Expires == nil {
		t.Fatalf("started: %+v", st)
	}
	if d := time.Until(*st.Expires); d < 5*time.Minute || d > 11*time.Minute {
		t.Fatalf("the code expires in %v", d)
	}
	code := st.Code
	if got := decodeQR(t, a, "/api/devices/link/qr"); got != code {
		t.Fatalf("the link QR holds %q, want the code", got)
	}

	type linked struct {
		c   *client.Client
		err error
	}
	done := make(chan linked, 1)
	tabletHome := filepath.Join(t.TempDir(), "tablet")
	go func() {
		c, err := client.LinkWith(ctx, tabletHome, []byte(alicePass), code, "TABLET", &client.Options{KDF: testKDF})
		done <- linked{c, err}
	}()
	waitFor(t, "the tablet's request", func() bool { return state().State == linkConfirm })
	if st := state(); st.Asking != "TABLET" {
		t.Fatalf("asking: %+v", st)
	}
	if resp, body := a.do("POST", "/api/devices/link/confirm", `{}`, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("confirm without an answer: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("POST", "/api/devices/link/confirm", `{"link":true}`, nil)
	if st := decode[linkJSON](t, "confirm", resp, body, http.StatusOK); st.State != linkLinking && st.State != linkLinked {
		t.Fatalf("answered: %+v", st)
	}
	if resp, body := a.do("POST", "/api/devices/link/confirm", `{"link":false}`, nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("a second answer: %d %s", resp.StatusCode, body)
	}
	res := <-done
	if res.err != nil {
		t.Fatalf("LinkWith: %v", res.err)
	}
	tablet := res.c
	t.Cleanup(func() { tablet.Close() })
	waitFor(t, "linked", func() bool { return state().State == linkLinked })
	st = state()
	if st.Code != "" || st.Device == nil || st.Device.Name != "TABLET" ||
		st.Message != fmt.Sprintf("Linked TABLET (%s). Your other devices show an alert; your contacts learn of it when it first writes to them.", tablet.Whoami().Device.Short()) {
		t.Fatalf("after linking: %+v", st)
	}
	if resp, _ := a.do("GET", "/api/devices/link/qr", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the spent code's QR: %d", resp.StatusCode)
	}
	alerts := func() []deviceAlertJSON {
		t.Helper()
		resp, body := a.do("GET", "/api/devices/alerts", "", nil)
		return decode[[]deviceAlertJSON](t, "alerts", resp, body, http.StatusOK)
	}
	if as := alerts(); len(as) != 0 {
		t.Fatalf("the device linked here is alerted here: %+v", as)
	}

	// The tablet links a laptop: this device alerts, until acknowledged.
	if _, err := tablet.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	laptopCode := make(chan string, 1)
	linkDone := make(chan error, 1)
	go func() {
		_, err := tablet.LinkDevice(ctx, &client.LinkOptions{Show: func(c string) { laptopCode <- c }})
		linkDone <- err
	}()
	var lc string
	select {
	case lc = <-laptopCode:
	case err := <-linkDone:
		t.Fatalf("tablet LinkDevice: %v", err)
	}
	laptop, err := client.LinkWith(ctx, filepath.Join(t.TempDir(), "laptop"), []byte(alicePass), lc, "LAPTOP", &client.Options{KDF: testKDF})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { laptop.Close() })
	if err := <-linkDone; err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the laptop's alert", func() bool { return len(alerts()) == 1 })
	as := alerts()
	if as[0].Name != "LAPTOP" || as[0].Device != laptop.Whoami().Device.String() || as[0].Linked.IsZero() {
		t.Fatalf("alert: %+v", as)
	}
	a.do("POST", "/api/lock", "", nil)
	a.unlock(alicePass)
	if as := alerts(); len(as) != 1 || as[0].Name != "LAPTOP" {
		t.Fatalf("after a lock: %+v", as)
	}
	if resp, _ := a.do("POST", "/api/devices/alerts/"+as[0].ID+"/ack", "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("ack: %d", resp.StatusCode)
	}
	if as := alerts(); len(as) != 0 {
		t.Fatalf("after the ack: %+v", as)
	}
	if resp, _ := a.do("POST", "/api/devices/alerts/0011223344556677/ack", "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("ack of an unknown alert: %d", resp.StatusCode)
	}

	// Revoke: an unknown device, this device, then the two others.
	resp, body = a.do("POST", "/api/devices/NOPE/revoke", "", nil)
	want := strings.TrimPrefix(fmt.Errorf("%w: %q", client.ErrNoSuchDevice, "NOPE").Error(), "client: ")
	if resp.StatusCode != http.StatusNotFound || errorOf(t, body) != want {
		t.Fatalf("revoke of an unknown device: %d %s, want %q", resp.StatusCode, body, want)
	}
	resp, body = a.do("POST", "/api/devices/"+a.s.client().Whoami().Device.String()+"/revoke", "", nil)
	if resp.StatusCode != http.StatusConflict || errorOf(t, body) != strings.TrimPrefix(client.ErrRevokeSelf.Error(), "client: ") {
		t.Fatalf("revoke of this device: %d %s", resp.StatusCode, body)
	}
	for _, c := range []*client.Client{laptop, tablet} {
		id := c.Whoami().Device
		resp, body = a.do("POST", "/api/devices/"+id.String()+"/revoke", "", nil)
		rv := decode[revokeResponse](t, "revoke", resp, body, http.StatusOK)
		if rv.Device.ID != id.String() || !strings.HasPrefix(rv.Message, "Revoked ") ||
			!strings.Contains(rv.Message, "("+id.Short()+"). The relay refuses it from now on; it deletes its keys and messages the next time it reaches the relay.") {
			t.Fatalf("revoked: %+v", rv)
		}
		if _, err := c.Sync(ctx); !errors.Is(err, client.ErrDeviceRevoked) {
			t.Fatalf("the revoked device syncs: %v", err)
		}
	}
	resp, body = a.do("GET", "/api/devices", "", nil)
	if ds := decode[[]deviceJSON](t, "devices", resp, body, http.StatusOK); len(ds) != 1 || !ds[0].This {
		t.Fatalf("devices after the revokes: %s", body)
	}

	for _, secret := range []string{code, code[len("postern-link:"):], lc} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a link code is in the log:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), "linked a new device") {
		t.Fatalf("the log was not captured:\n%s", logs.String())
	}
}

// A link waiting when the app locks is dropped with its code: after the
// unlock there is no link, and the code no longer works. A request
// declined gets the CLI's "Not linked.".
func TestLinkDroppedOnLockAndDeclined(t *testing.T) {
	r := relaytest.New(t, nil)
	home, alice, _, _ := pair(t, r)
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	ctx := context.Background()
	resp, body := a.do("POST", "/api/devices/link", "", nil)
	code := decode[linkJSON](t, "start", resp, body, http.StatusOK).Code
	a.do("POST", "/api/lock", "", nil)
	a.unlock(alicePass)
	resp, body = a.do("GET", "/api/devices/link", "", nil)
	if st := decode[linkJSON](t, "after the lock", resp, body, http.StatusOK); st.State != linkNone || st.Code != "" {
		t.Fatalf("after a lock: %s", body)
	}
	if _, err := client.LinkWith(ctx, filepath.Join(t.TempDir(), "late"), []byte(alicePass), code, "LATE", &client.Options{KDF: testKDF}); !errors.Is(err, client.ErrLinkCode) {
		t.Fatalf("the dropped code: %v", err)
	}

	resp, body = a.do("POST", "/api/devices/link", "", nil)
	code = decode[linkJSON](t, "start", resp, body, http.StatusOK).Code
	done := make(chan error, 1)
	go func() {
		c, err := client.LinkWith(ctx, filepath.Join(t.TempDir(), "unwanted"), []byte(alicePass), code, "UNWANTED", &client.Options{KDF: testKDF})
		if c != nil {
			c.Close()
		}
		done <- err
	}()
	var st linkJSON
	waitFor(t, "the request", func() bool {
		resp, body := a.do("GET", "/api/devices/link", "", nil)
		st = decode[linkJSON](t, "state", resp, body, http.StatusOK)
		return st.State == linkConfirm
	})
	a.do("POST", "/api/devices/link/confirm", `{"link":false}`, nil)
	waitFor(t, "declined", func() bool {
		resp, body := a.do("GET", "/api/devices/link", "", nil)
		st = decode[linkJSON](t, "state", resp, body, http.StatusOK)
		return st.State == linkDeclined
	})
	if st.Message != "Not linked." || st.Code != "" {
		t.Fatalf("declined: %+v", st)
	}
	// The declined device gets no answer; it waits until the code's
	// expiry unless it gives up: here the test does not wait for it.
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a declined device was linked")
		}
	default:
	}
	resp, body = a.do("GET", "/api/devices", "", nil)
	if ds := decode[[]deviceJSON](t, "devices", resp, body, http.StatusOK); len(ds) != 1 {
		t.Fatalf("devices after declining: %s", body)
	}
}

// The contact's page: the safety number's QR code (no-store) holds the
// versioned text of SPEC section 8; verifying needs the person to say
// they compared; a number that does not match gives the CLI's sentence
// and changes nothing; the QR text verifies.
func TestContactQRAndVerifyAPI(t *testing.T) {
	home, alice, _, _ := pair(t, relaytest.New(t, nil))
	alice.Close()
	a := newApp(t, home, &Options{Passphrase: []byte(alicePass)})
	a.login()
	resp, body := a.do("GET", "/api/contacts/bob", "", nil)
	bob := decode[contactJSON](t, "contact", resp, body, http.StatusOK)
	if bob.Verification != "unverified" || len(bob.SafetyNumber) != 71 {
		t.Fatalf("bob: %+v", bob)
	}
	qrText := decodeQR(t, a, "/api/contacts/bob/qr")
	if qrText != "postern-safety:1:"+strings.ReplaceAll(bob.SafetyNumber, " ", "") {
		t.Fatalf("QR text %q for %q", qrText, bob.SafetyNumber)
	}
	if resp, body := a.do("GET", "/api/contacts/zed/qr", "", nil); resp.StatusCode != http.StatusNotFound || errorOf(t, body) != `no contact named "zed"` {
		t.Fatalf("unknown contact's QR: %d %s", resp.StatusCode, body)
	}
	if resp, body := a.do("POST", "/api/contacts/bob/verify", `{"number":""}`, nil); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("verify without comparing: %d %s", resp.StatusCode, body)
	}
	wrong := []byte(qrText)
	wrong[len(wrong)-1] = '0' + (wrong[len(wrong)-1]-'0'+1)%10
	resp, body = a.do("POST", "/api/contacts/bob/verify", `{"compared":true,"number":`+quote(string(wrong))+`}`, nil)
	if resp.StatusCode != http.StatusConflict || errorOf(t, body) != "the number does not match bob's safety number; nothing was changed" {
		t.Fatalf("wrong number: %d %s", resp.StatusCode, body)
	}
	resp, body = a.do("GET", "/api/contacts/bob", "", nil)
	if c := decode[contactJSON](t, "contact", resp, body, http.StatusOK); c.Verification != "unverified" {
		t.Fatalf("after a wrong number: %+v", c)
	}
	resp, body = a.do("POST", "/api/contacts/bob/verify", `{"compared":true,"number":`+quote(qrText)+`}`, nil)
	v := decode[verifyResponse](t, "verify", resp, body, http.StatusOK)
	if v.Contact.Verification != "verified" || v.Message != "Verified bob. If their safety number changes, nothing is sent to them until you verify them again." {
		t.Fatalf("verified: %+v", v)
	}
	if resp, body := a.do("POST", "/api/contacts/zed/verify", `{"compared":true}`, nil); resp.StatusCode != http.StatusNotFound || errorOf(t, body) != `no contact named "zed"` {
		t.Fatalf("verify an unknown contact: %d %s", resp.StatusCode, body)
	}
}
