package ui

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/postern/postern/client"
)

// The first run: on a home without an identity the app is in setup mode.
// The page shows the terms of use, then creates an identity
// (client.Init), links this computer as a device of a person who uses
// Postern already (client.LinkWith), or restores a backup
// (client.Restore). Until one of these succeeds nothing is written to the
// home and nothing goes over the network; every content endpoint answers
// 409. Once the home holds an identity the setup endpoints refuse (409),
// whichever tab or script asks.

// TermsVersion is the version of the terms of use embedded in the app
// (terms.md). A device that accepted another version is asked again
// before any content.
const TermsVersion = "2026-12-07"

//go:embed terms.md
var termsMarkdown string

// TermsText is the text (Markdown) of the terms of use of TermsVersion:
// what 'postern optin' shows before it records an acceptance.
func TermsText() string { return termsMarkdown }

// DefaultMinPassphrase is the shortest new passphrase, in characters,
// when Options.CheckPassphrase is not set (the CLI's default).
const DefaultMinPassphrase = 12

// DefaultMaxBackupSize bounds an uploaded backup file when
// Options.MaxBackupSize is not set.
const DefaultMaxBackupSize = 2 << 30

// setupState is the first run's configuration and the backup uploaded for
// a restore.
type setupState struct {
	relay      string // the form's default relay URL
	deviceName string // the form's default device name
	minPass    int
	checkPass  func([]byte) error
	maxBackup  int64
	recvLock   func() (func(), error)
	tokenFile  string

	running sync.Mutex // held by the setup under way: one at a time

	mu     sync.Mutex // guards backup and size
	backup string     // the uploaded backup's temporary file, "" if none
	size   int64
}

func (st *setupState) init(o *Options) {
	st.relay, st.deviceName, st.tokenFile = o.Relay, o.DeviceName, o.TokenFile
	if st.deviceName == "" {
		if h, err := os.Hostname(); err == nil && checkDeviceName(h) {
			st.deviceName = h
		}
	}
	st.minPass, st.checkPass = o.MinPassphrase, o.CheckPassphrase
	if st.minPass <= 0 {
		st.minPass = DefaultMinPassphrase
	}
	if st.checkPass == nil {
		min := st.minPass
		st.checkPass = func(p []byte) error { return checkLength(p, min) }
	}
	st.maxBackup = o.MaxBackupSize
	if st.maxBackup <= 0 {
		st.maxBackup = DefaultMaxBackupSize
	}
	st.recvLock = o.ReceiveLock
}

// checkDeviceName: a host name that makes a sensible default device name.
func checkDeviceName(h string) bool {
	return h != "" && len(h) <= 64 && utf8.ValidString(h) && !strings.ContainsFunc(h, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// passphraseError is a new passphrase refused by the default check, in
// the CLI's words.
type passphraseError struct{ msg string }

func (e *passphraseError) Error() string { return e.msg }

func checkLength(p []byte, min int) error {
	if n := utf8.RuneCount(p); n < min {
		return &passphraseError{fmt.Sprintf("the passphrase is too short: %d characters, at least %d are needed", n, min)}
	}
	return nil
}

// discardBackup removes the uploaded backup, if any.
func (st *setupState) discardBackup() {
	st.putBackup("", 0)
}

// putBackup makes path the uploaded backup, removing the one before.
func (st *setupState) putBackup(path string, size int64) {
	st.mu.Lock()
	old := st.backup
	st.backup, st.size = path, size
	st.mu.Unlock()
	if old != "" && old != path {
		os.Remove(old)
	}
}

// takeBackup hands the uploaded backup to a restore, which removes it.
func (st *setupState) takeBackup() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	path := st.backup
	st.backup, st.size = "", 0
	return path
}

// needsSetup: the home holds no identity (no key file).
func (s *Server) needsSetup() bool {
	_, err := os.Stat(filepath.Join(s.home, client.KeyFileName))
	return errors.Is(err, os.ErrNotExist)
}

func init() {
	addRoutes(map[string]apiRoute{
		"GET /api/setup":           {handler: (*Server).apiSetup},
		"POST /api/setup/create":   {handler: (*Server).apiSetupCreate},
		"POST /api/setup/link":     {handler: (*Server).apiSetupLink},
		"POST /api/setup/backup":   {handler: (*Server).apiSetupBackup, raw: true},
		"POST /api/setup/restore":  {handler: (*Server).apiSetupRestore},
		"GET /api/terms":           {handler: (*Server).apiTerms},
		"POST /api/terms/accept":   {handler: (*Server).apiTermsAccept},
		"POST /api/terms/withdraw": {handler: (*Server).apiTermsWithdraw},
	})
}

// ---- answers ----

// setupSentence answers a content endpoint in setup mode.
func writeNeedsSetup(w http.ResponseWriter) {
	writeError(w, http.StatusConflict, "Postern is not set up on this computer yet",
		"create an identity, link this computer to your other device, or restore a backup on the page")
}

// termsSentence answers a content endpoint while the terms of use are not
// accepted on this device (never, an older version, or withdrawn). 451:
// the service is not available to this device for a reason of terms, not
// of the lock (423) or of the request's origin (403).
func writeTermsNeeded(w http.ResponseWriter) {
	writeError(w, http.StatusUnavailableForLegalReasons,
		"the terms of use of version "+TermsVersion+" are not accepted on this computer",
		"read and accept them on the page to use Postern")
}

func writeSetUp(w http.ResponseWriter, home string) {
	writeError(w, http.StatusConflict, home+" already holds a Postern identity", "unlock it with your passphrase")
}

// failSetup answers an error of a setup: the library's in the CLI's
// words, a refused passphrase as the check worded it.
func (s *Server) failSetup(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, client.ErrExists):
		writeSetUp(w, s.home)
	case errors.Is(err, errNoBackup):
		writeError(w, http.StatusBadRequest, err.Error(), "")
	case errors.Is(err, client.ErrInsecureRelay), errors.Is(err, client.ErrInvalidRelayURL),
		errors.Is(err, client.ErrInvalidName), errors.Is(err, client.ErrLinkCode),
		errors.Is(err, client.ErrRecoveryKey), errors.Is(err, client.ErrEmptyPassphrase):
		msg, hint := s.explain(err)
		writeError(w, http.StatusBadRequest, msg, hint)
	case errors.Is(err, client.ErrWrongRecoveryKey), errors.Is(err, client.ErrBackupDamaged),
		errors.Is(err, client.ErrNotBackup):
		msg, hint := s.explain(err)
		writeError(w, http.StatusUnprocessableEntity, msg, hint)
	case errors.Is(err, client.ErrLinkExpired), errors.Is(err, client.ErrLinkDeclined),
		errors.Is(err, client.ErrTooManyDevices):
		msg, hint := s.explain(err)
		writeError(w, http.StatusConflict, msg, hint)
	default:
		s.fail(w, err)
	}
}

// ---- GET /api/setup ----

type setupJSON struct {
	Setup         bool   `json:"setup"`
	Relay         string `json:"relay,omitempty"`
	DeviceName    string `json:"device_name,omitempty"`
	MinPassphrase int    `json:"min_passphrase"`
	TermsVersion  string `json:"terms_version"`
	MaxBackupSize int64  `json:"max_backup_size"`
	BackupSize    int64  `json:"backup_size,omitempty"`
}

func (s *Server) apiSetup(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	st := &s.setup
	st.mu.Lock()
	size := st.size
	st.mu.Unlock()
	writeJSON(w, http.StatusOK, setupJSON{
		Setup: s.needsSetup(), Relay: st.relay, DeviceName: st.deviceName, MinPassphrase: st.minPass,
		TermsVersion: TermsVersion, MaxBackupSize: st.maxBackup, BackupSize: size,
	})
}

// ---- the three ways ----

// setupCommon are the fields every setup takes.
type setupCommon struct {
	Passphrase  string `json:"passphrase"`
	Repeat      string `json:"repeat"`
	AcceptTerms string `json:"accept_terms"`
	Invite      string `json:"invite,omitempty"`
}

// check refuses a setup without the terms accepted, or with a passphrase
// that the two fields or the policy refuse; it answers itself (false).
func (s *Server) checkSetup(w http.ResponseWriter, c *setupCommon) bool {
	switch {
	case c.AcceptTerms != TermsVersion:
		writeError(w, http.StatusBadRequest, "the terms of use of version "+TermsVersion+" must be accepted first",
			"nothing was created: read and accept them to set up Postern")
		return false
	case c.Passphrase == "":
		s.failSetup(w, client.ErrEmptyPassphrase)
		return false
	case c.Passphrase != c.Repeat:
		writeError(w, http.StatusBadRequest, "the passphrases do not match", "type the same passphrase in both fields")
		return false
	}
	if err := s.setup.checkPass([]byte(c.Passphrase)); err != nil {
		// Refused by the policy: the request's fault, in the check's words.
		var pe *passphraseError
		if errors.As(err, &pe) {
			writeError(w, http.StatusBadRequest, pe.msg, "choose a longer passphrase of several unrelated words")
		} else {
			msg, hint := s.explain(err)
			writeError(w, http.StatusBadRequest, msg, hint)
		}
		return false
	}
	return true
}

// runSetup makes the home with make, unless another setup is under way
// (a link waits minutes for the other device: a second tab is told at
// once) or the home holds an identity already; then it records the
// terms, creates the API token file and returns the client (ok), with
// the wording of make's error if make returned a client with one (a link
// whose history did not come).
func (s *Server) runSetup(w http.ResponseWriter, r *http.Request, c *setupCommon, what string,
	make func(ctx context.Context, opts *client.Options) (*client.Client, error)) (cl *client.Client, warning string, ok bool) {
	if !s.checkSetup(w, c) {
		return nil, "", false
	}
	st := &s.setup
	if !st.running.TryLock() {
		writeError(w, http.StatusConflict, "Postern is being set up on this computer already", "wait for it, in the page where it was started")
		return nil, "", false
	}
	defer st.running.Unlock()
	if !s.needsSetup() {
		writeSetUp(w, s.home)
		return nil, "", false
	}
	opts := &client.Options{}
	if s.clientOpt != nil {
		*opts = *s.clientOpt
	}
	opts.Invite = strings.TrimSpace(c.Invite)
	cl, err := make(r.Context(), opts)
	if cl == nil {
		s.log.Info("ui: setup failed", "how", what)
		s.failSetup(w, err)
		return nil, "", false
	}
	if err != nil {
		warning, _ = s.explain(err)
	}
	// Done: what follows does not undo it. The acceptance is recorded
	// with the time the home was made: the request carried it.
	if _, err := cl.AcceptTerms(TermsVersion); err != nil {
		cl.Close()
		s.fail(w, err)
		return nil, "", false
	}
	if err := s.loadBearer(); err != nil {
		s.log.Warn("ui: the API token file", "err", err)
	}
	s.log.Info("ui: set up", "how", what)
	return cl, warning, true
}

// adoptSetUp makes the new client the app's (unlocked) and answers with
// the state.
func (s *Server) adoptSetUp(w http.ResponseWriter, r *http.Request, cl *client.Client, extra map[string]any) {
	if err := s.adopt(cl); err != nil {
		s.fail(w, err)
		return
	}
	out := map[string]any{"state": s.state()}
	for k, v := range extra {
		out[k] = v
	}
	writeJSON(w, http.StatusOK, out)
}

type createRequest struct {
	Name  string `json:"name"`
	Relay string `json:"relay"`
	setupCommon
}

func (s *Server) apiSetupCreate(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	var req createRequest
	if !readJSON(w, r, &req) {
		return
	}
	req.Name, req.Relay = strings.TrimSpace(req.Name), strings.TrimSpace(req.Relay)
	if req.Relay == "" {
		req.Relay = s.setup.relay
	}
	if req.Name == "" || req.Relay == "" {
		writeError(w, http.StatusBadRequest, "a name and a relay URL are needed", "give your name and your organisation's relay (wss://…)")
		return
	}
	cl, _, ok := s.runSetup(w, r, &req.setupCommon, "create", func(ctx context.Context, o *client.Options) (*client.Client, error) {
		return client.Init(ctx, s.home, []byte(req.Passphrase), req.Relay, req.Name, o)
	})
	if ok {
		s.adoptSetUp(w, r, cl, nil)
	}
}

type linkRequest struct {
	Code       string `json:"code"`
	DeviceName string `json:"device_name"`
	setupCommon
}

// apiSetupLink waits for the other device to answer (until its code
// expires, 10 minutes): the page shows that it waits.
func (s *Server) apiSetupLink(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	var req linkRequest
	if !readJSON(w, r, &req) {
		return
	}
	req.Code, req.DeviceName = strings.Join(strings.Fields(req.Code), ""), strings.TrimSpace(req.DeviceName)
	if req.Code == "" || req.DeviceName == "" {
		writeError(w, http.StatusBadRequest, "the link code and a name for this computer are needed",
			"the other device shows the code (it begins postern-link:); name this computer, e.g. OFFICE-PC")
		return
	}
	cl, warning, ok := s.runSetup(w, r, &req.setupCommon, "link", func(ctx context.Context, o *client.Options) (*client.Client, error) {
		return client.LinkWith(ctx, s.home, []byte(req.Passphrase), req.Code, req.DeviceName, o)
	})
	if !ok {
		return
	}
	var extra map[string]any
	if warning != "" { // linked; the message history did not come (yet)
		extra = map[string]any{"warning": warning}
	}
	s.adoptSetUp(w, r, cl, extra)
}

// apiSetupBackup receives the backup file for a restore, streamed to a
// temporary file (mode 0600, outside the home) and bounded by
// Options.MaxBackupSize. A second upload replaces the first.
func (s *Server) apiSetupBackup(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	st := &s.setup
	if !s.needsSetup() {
		writeSetUp(w, s.home)
		return
	}
	f, err := os.CreateTemp("", "postern-restore-*.backup")
	if err != nil {
		s.fail(w, fmt.Errorf("ui: keeping the uploaded backup: %w", err))
		return
	}
	n, err := io.Copy(f, io.LimitReader(r.Body, st.maxBackup+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		os.Remove(f.Name())
		s.fail(w, fmt.Errorf("ui: receiving the backup: %w", err))
		return
	case n > st.maxBackup:
		os.Remove(f.Name())
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the backup file is too large: more than %d bytes", st.maxBackup),
			"restore it on the command line: postern init --restore FILE --name DEVICE-NAME")
		return
	case n == 0:
		os.Remove(f.Name())
		writeError(w, http.StatusBadRequest, "the backup file is empty", "choose the file that postern backup wrote")
		return
	}
	if !s.needsSetup() { // set up while it came
		os.Remove(f.Name())
		writeSetUp(w, s.home)
		return
	}
	st.putBackup(f.Name(), n)
	writeJSON(w, http.StatusOK, map[string]int64{"size": n})
}

type restoreRequest struct {
	RecoveryKey string `json:"recovery_key"`
	DeviceName  string `json:"device_name"`
	setupCommon
}

func (s *Server) apiSetupRestore(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	var req restoreRequest
	if !readJSON(w, r, &req) {
		return
	}
	req.DeviceName = strings.TrimSpace(req.DeviceName)
	if req.RecoveryKey == "" || req.DeviceName == "" {
		writeError(w, http.StatusBadRequest, "the recovery key and a name for this computer are needed",
			"the recovery key was shown when the backup was made")
		return
	}
	st := &s.setup
	cl, _, ok := s.runSetup(w, r, &req.setupCommon, "restore", func(ctx context.Context, o *client.Options) (*client.Client, error) {
		// The restore owns the file from here: an upload meanwhile
		// makes another.
		path := st.takeBackup()
		if path == "" {
			return nil, errNoBackup
		}
		cl, err := client.Restore(ctx, s.home, []byte(req.Passphrase), path, req.RecoveryKey, req.DeviceName, o)
		if err != nil {
			// Kept for another try with the right key, unless a newer
			// upload came meanwhile.
			st.mu.Lock()
			if st.backup == "" {
				st.backup, st.size = path, fileSize(path)
				path = ""
			}
			st.mu.Unlock()
		}
		if path != "" {
			os.Remove(path)
		}
		return cl, err
	})
	if !ok {
		return
	}
	contacts, messages := cl.Restored()
	s.adoptSetUp(w, r, cl, map[string]any{"restored": map[string]int{"contacts": contacts, "messages": messages}})
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// errNoBackup: a restore before the backup file was uploaded.
var errNoBackup = errors.New("no backup file was uploaded: choose the file that postern backup wrote")

// loadBearer reads, or creates, the API token file once the home holds an
// identity: in setup mode there is none, so that declining leaves nothing
// behind.
func (s *Server) loadBearer() error {
	tok, err := loadBearerToken(s.setup.tokenFile)
	if err != nil {
		return err
	}
	s.auth.setBearer(tok)
	return nil
}

// ---- terms ----

type termsBlock struct {
	Text  string   `json:"text,omitempty"`
	Items []string `json:"items,omitempty"`
}

type termsSection struct {
	Heading string       `json:"heading,omitempty"`
	Blocks  []termsBlock `json:"blocks"`
}

type termsDoc struct {
	Version  string         `json:"version"`
	Title    string         `json:"title"`
	Sections []termsSection `json:"sections"`
}

// parseTerms reads terms.md: a "# " title, "## " headings, paragraphs
// separated by blank lines, lists of "- " lines. The page sets each piece
// as text: nothing of it is HTML.
func parseTerms(md string) termsDoc {
	d := termsDoc{Version: TermsVersion}
	sec := termsSection{}
	flush := func() {
		if sec.Heading != "" || len(sec.Blocks) > 0 {
			d.Sections = append(d.Sections, sec)
		}
	}
	for _, para := range strings.Split(strings.ReplaceAll(md, "\r\n", "\n"), "\n\n") {
		para = strings.TrimSpace(para)
		switch {
		case para == "":
		case strings.HasPrefix(para, "## "):
			flush()
			sec = termsSection{Heading: strings.TrimPrefix(para, "## ")}
		case strings.HasPrefix(para, "# "):
			d.Title = strings.TrimPrefix(para, "# ")
		case strings.HasPrefix(para, "- "):
			var b termsBlock
			for _, line := range strings.Split(para, "\n") {
				b.Items = append(b.Items, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "- ")))
			}
			sec.Blocks = append(sec.Blocks, b)
		default:
			sec.Blocks = append(sec.Blocks, termsBlock{Text: strings.Join(strings.Fields(para), " ")})
		}
	}
	flush()
	return d
}

var terms = parseTerms(termsMarkdown)

type acceptanceJSON struct {
	Version   string     `json:"version"`
	Accepted  time.Time  `json:"accepted"`
	Withdrawn *time.Time `json:"withdrawn,omitempty"`
	Current   bool       `json:"current"`
}

type termsJSON struct {
	termsDoc
	// Acceptance is this device's record, while unlocked; null if the
	// terms were never accepted here or while locked.
	Acceptance *acceptanceJSON `json:"acceptance"`
}

func toAcceptance(tm client.Terms) *acceptanceJSON {
	if tm.Version == "" {
		return nil
	}
	a := &acceptanceJSON{Version: tm.Version, Accepted: tm.Accepted.UTC(), Current: tm.AcceptedCurrent(TermsVersion)}
	if !tm.Withdrawn.IsZero() {
		t := tm.Withdrawn.UTC()
		a.Withdrawn = &t
	}
	return a
}

// apiTerms gives the terms of use, in setup mode and while locked too
// (they hold nothing of the person), and while unlocked this device's
// acceptance.
func (s *Server) apiTerms(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	out := termsJSON{termsDoc: terms}
	if cl := s.client(); cl != nil {
		tm, err := cl.Terms()
		if err != nil {
			s.fail(w, err)
			return
		}
		out.Acceptance = toAcceptance(tm)
	}
	writeJSON(w, http.StatusOK, out)
}

// apiTermsAccept records the acceptance of the version the request names,
// which must be the app's: a page that showed an older text is refused.
// From then on this device receives and the content endpoints answer.
func (s *Server) apiTermsAccept(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	var req struct {
		Version string `json:"version"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	cl := s.client()
	switch {
	case cl == nil && s.needsSetup():
		writeNeedsSetup(w)
		return
	case cl == nil:
		writeLocked(w)
		return
	case req.Version != TermsVersion:
		writeError(w, http.StatusConflict, "the terms of use changed: the version now is "+TermsVersion, "read them again and accept that version")
		return
	}
	if err := s.acceptTerms(cl); err != nil {
		s.fail(w, err)
		return
	}
	s.touch()
	s.apiTermsState(w, cl)
}

// apiTermsWithdraw records that the person withdrew their acceptance and
// locks: the keys leave memory, receiving stops, and after unlocking the
// content endpoints refuse until the terms are accepted again.
func (s *Server) apiTermsWithdraw(w http.ResponseWriter, r *http.Request, _ *client.Client) {
	cl := s.client()
	if cl == nil {
		if s.needsSetup() {
			writeNeedsSetup(w)
		} else {
			writeLocked(w)
		}
		return
	}
	tm, err := cl.WithdrawTerms()
	if err != nil {
		s.fail(w, err)
		return
	}
	s.log.Info("ui: the terms of use were withdrawn; locking")
	s.lockNow("terms withdrawn")
	writeJSON(w, http.StatusOK, map[string]any{"state": s.state(), "acceptance": toAcceptance(tm)})
}

func (s *Server) apiTermsState(w http.ResponseWriter, cl *client.Client) {
	tm, err := cl.Terms()
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"state": s.state(), "acceptance": toAcceptance(tm)})
}
