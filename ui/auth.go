package ui

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// SessionCookieName is the cookie that the one-time URL's token is
// exchanged for.
const SessionCookieName = "postern_session"

// BearerTokenFileName is the integration token's file in the home
// directory: one line, the token, readable by its owner only.
const BearerTokenFileName = "api-token"

// tokenBytes is the size of every token: the login token, session cookies
// and the bearer token.
const tokenBytes = 32

// authState holds the tokens. Session cookies are kept as their SHA-256
// so that looking one up in the map reveals nothing of a guess through
// timing.
type authState struct {
	loginToken string // base64url; void once used
	bearer     []byte // the integration token; none before the first run made an identity (under mu)

	mu        sync.Mutex
	loginUsed bool
	sessions  map[[sha256.Size]byte]bool
}

func newToken() (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (a *authState) init(bearer []byte) error {
	t, err := newToken()
	if err != nil {
		return err
	}
	a.loginToken, a.bearer = t, bearer
	a.sessions = map[[sha256.Size]byte]bool{}
	return nil
}

// login exchanges the one-time token of GET /?t=TOKEN for a session
// cookie and redirects to / (so the token leaves the address bar and the
// history). A second use is refused.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	a := &s.auth
	got := r.URL.Query().Get("t")
	a.mu.Lock()
	ok := !a.loginUsed && subtle.ConstantTimeCompare([]byte(got), []byte(a.loginToken)) == 1
	if ok {
		a.loginUsed = true
	}
	a.mu.Unlock()
	if !ok {
		s.log.Info("ui: a used or wrong sign-in link was refused")
		writeError(w, http.StatusForbidden, "this sign-in link was used already or is wrong", "run postern ui again for a new link")
		return
	}
	cookie, err := newToken()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "no randomness for a session", "")
		return
	}
	a.mu.Lock()
	a.sessions[sha256.Sum256([]byte(cookie))] = true
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookieName, Value: cookie, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: s.tls,
	})
	s.log.Info("ui: a browser signed in")
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// authenticate says who asks, or answers the request itself (false).
//
// A request with an Authorization header is an integration's: only the
// bearer token counts, never a cookie. Any other needs the session cookie
// and must come from the app's own page: a state-changing request must
// carry the app's Origin (ServeHTTP refused any other already), and a
// Sec-Fetch-Site, where the browser sends one, must be same-origin.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (caller, bool) {
	a := &s.auth
	if v := r.Header.Get("Authorization"); v != "" {
		a.mu.Lock()
		bearer := a.bearer
		a.mu.Unlock()
		if len(bearer) == 0 { // setup mode: no token file yet
			writeError(w, http.StatusUnauthorized, "no API token yet: Postern is not set up on this computer", "set it up on the page that postern ui opens")
			return caller{}, false
		}
		tok, found := strings.CutPrefix(v, "Bearer ")
		if !found || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), bearer) != 1 {
			writeError(w, http.StatusUnauthorized, "wrong API token", "the token is in "+BearerTokenFileName+" in the home directory")
			return caller{}, false
		}
		return caller{bearer: true}, true
	}
	c, err := r.Cookie(SessionCookieName)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "not signed in", "open the link that postern ui printed, or run it again for a new one")
		return caller{}, false
	}
	a.mu.Lock()
	ok := a.sessions[sha256.Sum256([]byte(c.Value))]
	a.mu.Unlock()
	if !ok {
		writeError(w, http.StatusUnauthorized, "not signed in", "open the link that postern ui printed, or run it again for a new one")
		return caller{}, false
	}
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		writeError(w, http.StatusForbidden, "requests from other sites are refused", "")
		return caller{}, false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get("Origin") == "" {
		writeError(w, http.StatusForbidden, "requests from other sites are refused", "")
		return caller{}, false
	}
	return caller{}, true
}

func (a *authState) hasBearer() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.bearer) > 0
}

// setBearer sets the integration token once the home has an identity.
func (a *authState) setBearer(tok []byte) {
	a.mu.Lock()
	a.bearer = tok
	a.mu.Unlock()
}

func defaultTokenFile(home string) string { return filepath.Join(home, BearerTokenFileName) }

// loadBearerToken reads the integration token from path, refusing a file
// that others can read; a missing file is created (mode 0600, O_EXCL) with
// a new token.
func loadBearerToken(path string) ([]byte, error) {
	b, err := readPrivate(path)
	if errors.Is(err, fs.ErrNotExist) {
		tok, err := newToken()
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return loadBearerToken(path) // another postern ui made it meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("ui: creating the API token file: %w", err)
		}
		if _, err := f.WriteString(tok + "\n"); err != nil {
			f.Close()
			os.Remove(path)
			return nil, fmt.Errorf("ui: writing the API token file: %w", err)
		}
		if err := f.Close(); err != nil {
			os.Remove(path)
			return nil, fmt.Errorf("ui: writing the API token file: %w", err)
		}
		return []byte(tok), nil
	}
	if err != nil {
		return nil, err
	}
	tok := strings.TrimSpace(string(b))
	// At least as long as the tokens New writes: a short one is guessable.
	if len(tok) < base64.RawURLEncoding.EncodedLen(tokenBytes) || strings.ContainsAny(tok, " \t\r\n") {
		return nil, fmt.Errorf("%w: %s", ErrBadTokenFile, path)
	}
	return []byte(tok), nil
}
