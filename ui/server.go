package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/postern/postern/client"
)

//go:embed static
var staticFS embed.FS

// DefaultIdleTimeout is how long the app stays unlocked without a request
// from the page or an integration.
const DefaultIdleTimeout = 5 * time.Minute

// contentSecurityPolicy allows nothing inline and nothing from elsewhere.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; " +
	"base-uri 'none'; form-action 'self'"

// Options configure New. Home and Addr are required; every other field
// has the default it documents.
type Options struct {
	// Home is the Postern home directory the app opens.
	Home string
	// Addr is the address the server listens on, HOST:PORT with the port
	// the listener got (l.Addr().String()). Requests must name it, or
	// localhost with the same port, in their Host header.
	Addr string
	// TLS: the server is served over HTTPS (its origin is https://).
	// Default: http://.
	TLS bool
	// Passphrase, if set, opens the client at New: the first session
	// starts unlocked (POSTERN_PASSPHRASE). It is not kept: once locked,
	// the passphrase is asked on the page. Default: start locked. On a
	// home without an identity it is not used: the first run chooses one.
	Passphrase []byte
	// Client are the options of client.Open. Default: nil.
	Client *client.Options
	// IdleTimeout locks the app when no request came for that long.
	// Default: DefaultIdleTimeout.
	IdleTimeout time.Duration
	// IdleTimeoutByPolicy: an organisation's policy set IdleTimeout (or
	// capped it); the Settings screen says so. Default: false.
	IdleTimeoutByPolicy bool
	// NoDesktopNotifications: an organisation's policy turns desktop
	// notifications off; the page shows none and they cannot be turned on.
	// Default: false (each device's own setting decides).
	NoDesktopNotifications bool
	// TokenFile is the bearer-token file for integrations. Default:
	// BearerTokenFileName in Home. If it is missing, New creates it
	// (mode 0600) with a new token.
	TokenFile string
	// Explain words an error for the person, as the CLI does (message and
	// hint). Default: a short wording of the library's errors.
	Explain func(error) (msg, hint string)
	// Logger receives operational events, never content or secrets.
	// Default: discard.
	Logger *slog.Logger

	// The first run (setup.go), on a home without an identity:
	// Relay is the relay URL the form offers for a new identity. Default:
	// none, the person types it.
	Relay string
	// DeviceName is the name the form offers for this computer when it
	// is linked or restored. Default: its host name.
	DeviceName string
	// MinPassphrase is the shortest new passphrase the form asks for.
	// Default: DefaultMinPassphrase.
	MinPassphrase int
	// CheckPassphrase refuses a new passphrase, with an error that
	// Explain words (the CLI's policy). Default: fewer than MinPassphrase
	// characters are refused.
	CheckPassphrase func([]byte) error
	// MaxBackupSize bounds an uploaded backup file. Default:
	// DefaultMaxBackupSize.
	MaxBackupSize int64
	// ReceiveLock, if set, is taken before the app receives for the home
	// (unlocked, the terms accepted) and released when it stops: so that
	// another program does not receive for the same device meanwhile
	// (the CLI's listen lock). Its error refuses the unlock.
	ReceiveLock func() (release func(), err error)
}

// Server is the web app. It is an http.Handler; Close locks it and stops
// its background work.
type Server struct {
	home    string
	tls     bool
	hosts   map[string]bool // accepted Host headers
	origin  string          // the app's own origin, for the login URL
	origins map[string]bool // accepted Origin headers
	idle    time.Duration
	idlePol bool // idle set by the organisation's policy
	// chosenIdle: the shorter lock timeout this device chose, in ns (0:
	// none; locktimeout.go).
	chosenIdle atomic.Int64
	noNotify   bool // desktop notifications off by policy
	clientOpt  *client.Options
	explain    func(error) (string, string)
	log        *slog.Logger
	static     http.Handler
	api        *http.ServeMux

	auth    authState
	lock    lockState
	setup   setupState
	uploads uploadStore // attach.go
	links   linkState   // devices.go
}

// New makes the web app for Options.Home, listening on Options.Addr. It
// reads (or creates) the bearer-token file, refusing one that others can
// read (ErrTokenFileMode), makes the one-time login token and, with
// Options.Passphrase, opens the client.
func New(opts *Options) (*Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Home == "" {
		return nil, errors.New("ui: no home directory")
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Explain == nil {
		o.Explain = explainDefault(o.Home)
	}
	if o.TokenFile == "" {
		o.TokenFile = defaultTokenFile(o.Home)
	}
	host, port, err := net.SplitHostPort(o.Addr)
	if err != nil || port == "" {
		return nil, fmt.Errorf("%w: %q", ErrAddr, o.Addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("%w: %q", ErrAddr, o.Addr)
	}
	scheme := "http://"
	if o.TLS {
		scheme = "https://"
	}
	s := &Server{
		home: o.Home, tls: o.TLS, idle: o.IdleTimeout, clientOpt: o.Client,
		idlePol: o.IdleTimeoutByPolicy, noNotify: o.NoDesktopNotifications,
		explain: o.Explain, log: o.Logger,
		hosts: map[string]bool{}, origins: map[string]bool{},
	}
	for _, h := range []string{net.JoinHostPort(host, port), net.JoinHostPort("localhost", port)} {
		h = strings.ToLower(h) // host names are compared without case
		s.hosts[h] = true
		s.origins[scheme+h] = true
	}
	s.origin = scheme + net.JoinHostPort(host, port)
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	s.static = http.FileServerFS(sub)
	s.api = s.newAPIMux()
	s.setup.init(&o)
	// A home without an identity gets no token file until it has one
	// (setup.go): declining the terms leaves nothing behind.
	var bearer []byte
	if !s.needsSetup() {
		if bearer, err = loadBearerToken(o.TokenFile); err != nil {
			return nil, err
		}
	}
	if err := s.auth.init(bearer); err != nil {
		return nil, err
	}
	s.lock.init(s)
	if len(o.Passphrase) > 0 && !s.needsSetup() {
		if err := s.unlock(o.Passphrase); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// LoginURL is the one-time URL that signs a browser in. It works once.
func (s *Server) LoginURL() string {
	return s.origin + "/?t=" + s.auth.loginToken
}

// Origin is the app's own origin, e.g. "http://127.0.0.1:PORT".
func (s *Server) Origin() string { return s.origin }

// Close locks the app (closing the client) and ends its event streams.
func (s *Server) Close() error {
	s.lockNow("closed")
	s.setup.discardBackup()
	return nil
}

// ServeHTTP checks every request before it reaches a handler: the Host
// header (DNS rebinding), then a foreign Origin, then, for the API, who is
// asking.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if !s.hosts[strings.ToLower(r.Host)] {
		s.log.Debug("ui: request with a foreign Host refused")
		writeError(w, http.StatusMisdirectedRequest, "this address is not the one postern ui listens on", "")
		return
	}
	if o := r.Header.Get("Origin"); o != "" && !s.origins[o] {
		s.log.Debug("ui: request from another origin refused")
		writeError(w, http.StatusForbidden, "requests from other sites are refused", "")
		return
	}
	if strings.HasPrefix(r.URL.Path, "/api/") {
		s.serveAPI(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "method not allowed", "")
		return
	}
	if r.URL.Path == "/" && r.URL.Query().Has("t") {
		s.login(w, r)
		return
	}
	s.static.ServeHTTP(w, r)
}

// context of the API handlers: who asked.
type caller struct {
	bearer bool
}

type ctxKey struct{}

func callerFrom(ctx context.Context) caller {
	c, _ := ctx.Value(ctxKey{}).(caller)
	return c
}
