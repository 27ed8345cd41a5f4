// Command postern-relay runs a Postern relay.
//
//	postern-relay serve [--listen 127.0.0.1:7878] [--data DIR] [--tls-cert F --tls-key F]
//	                    [--enrollment open|invite] [--retention 336h]
//	                    [--max-blob-size 4GiB] [--blob-quota 10GiB] [--blob-retention 336h]
//	                    [--log-format text|json] [--log-level info]
//	                    [--metrics-listen 127.0.0.1:9178] [--metrics-listen-public]
//	                    [--acme-domain D --acme-cache DIR] [--trusted-proxy CIDR,...]
//	                    [--ping-interval 25s] [--conn-rate-per-address 200]
//	                    [--conn-burst-per-address 200] [--max-conns-per-address 5000]
//	                    [--max-connections 10000] [--frame-rate 2000] [--frame-burst 4000]
//	postern-relay invite create [--data DIR] [--count N] [--ttl 72h] [--account LABEL]
//	postern-relay admin invite create|invite revoke CODE|devices|accounts|revoke ID...|suspend ID...|reinstate ID...|
//	                    revoke|suspend|reinstate --account LABEL|assign LABEL ID...|unassign ID... [--data DIR]
//	postern-relay backup (FILE | --out FILE | --out -) [--data DIR] [--db-only]
//	postern-relay compact [--data DIR]
//	postern-relay restore FILE --data DIR
//	postern-relay compact --data DIR
//	postern-relay config check [--config FILE] [serve flags]
//	postern-relay version | --version
//	postern-relay help [COMMAND...] | COMMAND... --help
//
// Every flag can also be set with an environment variable POSTERN_RELAY_<NAME>
// (upper case, dashes as underscores, e.g. POSTERN_RELAY_TLS_CERT); a flag
// on the command line wins. Serve's flags can also be keys in a config file
// (--config FILE, see config.go and docs/relay.conf.sample), below both.
// SIGHUP reloads the configuration (reload.go, docs/OPERATIONS.md).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/postern/postern/protocol"
	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/metrics"
	"github.com/postern/postern/relay/store"
	"github.com/postern/postern/relay/store/bboltstore"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type usageError struct{ msg, hint string }

func (e *usageError) Error() string { return e.msg }

func run(args []string, stdout, stderr io.Writer) int {
	err := dispatch(args, stdout, stderr)
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "postern-relay: error: %v\n", err)
	var ue *usageError
	if errors.As(err, &ue) && ue.hint != "" {
		fmt.Fprintf(stderr, "hint: %s\n", ue.hint)
	}
	if errors.Is(err, store.ErrDamaged) {
		fmt.Fprintf(stderr, "hint: the file was not used and nothing was changed; restore a backup (docs/OPERATIONS.md, \"Damaged database\")\n")
		return exitDamaged
	}
	return 1
}

// exitDamaged is the exit status for damaged or unusable data (sysexits'
// EX_DATAERR): docs/postern-relay.service does not restart the relay on
// it, so that a damaged database does not become a restart loop that
// buries the cause in the log.
const exitDamaged = 65

func dispatch(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return &usageError{msg: "no command", hint: "postern-relay help lists the commands; postern-relay serve runs the relay"}
	}
	switch args[0] {
	case "-h", "--help", "-help":
		return helpCmd(nil, stdout)
	case "help":
		return helpCmd(args[1:], stdout)
	case "--version", "-version":
		return versionCmd(nil, stdout, stderr)
	}
	return dispatchCommand(args, stdout, stderr) // commands.go
}

// commandsUsage is what `postern-relay help` prints.
const commandsUsage = `usage: postern-relay COMMAND [flags]

  serve                 run the relay (serve --help lists every option)
  config check          check a configuration without starting the relay
  invite create         make enrolment invite codes (--account LABEL binds them to a person)
  admin COMMAND         administer a running relay: devices, accounts, revoke, suspend,
                        reinstate (admin --help lists them)
  backup FILE | --out - write an archive of the database, key, audit log and blobs, while the relay runs
  compact               give a drained database's space back (relay stopped)
  restore FILE          put a backup in place, with the relay stopped
  compact               give the database's free space back to the disk, with the relay stopped
  audit verify          check the audit log for edited, removed or reordered entries
  audit export          write the audit log and its signed head for a reviewer
  version               print the version, commit and build date (also --version)

Every command takes --help; postern-relay help COMMAND... prints the same.
docs/OPERATIONS.md tells how to run a relay for real.
`

// parse parses flags, then fills every flag not given on the command line
// from POSTERN_RELAY_<NAME>.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "POSTERN_RELAY_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := f.Value.Set(v); e != nil {
				err = fmt.Errorf("%s=%q: %v", env, v, e)
			}
		}
	})
	return err
}

// serve runs the relay. With cs not nil (config check) it stops after the
// checks, before opening or listening on anything. SIGHUP reloads the
// configuration (reload.go).
func serve(args []string, stderr io.Writer, cs *configState) error {
	sc, err := loadServe(args, stderr, cs)
	if err != nil {
		return err
	}
	if cs != nil {
		return cs.check(sc.relay)
	}
	// From here on SIGHUP no longer kills the process: one that arrives
	// while the relay starts is handled once it serves.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	level := new(slog.LevelVar) // a reload sets it
	level.Set(sc.level)
	logger := newLogger(stderr, sc.logFormat, level)
	var m *metrics.Metrics
	if sc.metricsOn {
		m = metrics.New()
		m.ConfigLoaded(true, time.Now())
		m.SetCertExpiry(sc.nflags.certExpiry())
		m.WatchBlobDir(filepath.Join(sc.data, relay.BlobDir))
	}
	rcfg := sc.relay
	rcfg.Logger, rcfg.Metrics = logger, m
	backups := migrationBackups(sc.data)
	st, err := openStore(sc.data)
	if err != nil {
		return err
	}
	rcfg.Store = st
	r, err := relay.New(rcfg) // closes st if it fails
	if err != nil {
		return err
	}
	reportMigrations(backups, sc.data, r, logger) // migration.go

	m.WatchReady(r.Ready) // the check /readyz answers with
	m.WatchFilesystem(sc.data)
	admin, err := relay.ListenAdmin(sc.data)
	if err != nil {
		r.Close()
		return err
	}
	go r.ServeAdmin(admin)
	var ms *metricsServer
	if sc.metricsOn {
		if ms, err = startMetrics(sc.metricsListen, m, logger); err != nil {
			r.Close()
			return err
		}
	}

	ln, err := net.Listen("tcp", sc.listen)
	if err != nil {
		r.Close()
		return err
	}
	// No ReadTimeout or WriteTimeout: a multi-GiB blob transfer takes
	// long, and the relay sets progress-based deadlines on blob requests
	// itself (WebSocket connections are hijacked and keep their own).
	srv := &http.Server{
		Handler:           sc.nflags.handler(r),
		TLSConfig:         sc.tls,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	scheme := "ws"
	if sc.tls != nil {
		scheme = "wss"
	}
	logger.Info("listening", "url", scheme+"://"+ln.Addr().String()+protocol.WebSocketPath, "data", sc.data)

	errc := make(chan error, 1)
	go func() {
		if sc.tls != nil {
			errc <- srv.ServeTLS(ln, "", "") // certificates in srv.TLSConfig
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	rl := newReloader(args, sc, r, rcfg, level, logger)
	var serveErr error
wait:
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP { // systemctl reload
				rl.reload()
				continue
			}
			logger.Info("shutting down", "signal", s.String())
		case serveErr = <-errc:
		}
		break wait
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv.Shutdown(ctx) // stop accepting; WebSocket connections are the relay's
	err = r.Shutdown(ctx)
	ms.shutdown(ctx)
	os.Remove(filepath.Join(sc.data, relay.AdminSocket))
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return err
}

// serveConfig is serve's configuration from one reading of the flags, the
// environment and the config file, checked as at start.
type serveConfig struct {
	fs            *flag.FlagSet
	listen, data  string
	logFormat     string
	level         slog.Level
	tls           *tls.Config // nil: plain HTTP
	metricsOn     bool
	metricsListen string
	nflags        *netFlags
	relay         relay.Config // without Logger and Metrics
}

// loadServe defines serve's flags on a fresh FlagSet, fills them from args,
// the environment and the config file (parseServe) and checks them. The
// relay.Config it builds is checked by relay.New (or cs.check); nothing is
// opened or listened on.
func loadServe(args []string, stderr io.Writer, cs *configState) (*serveConfig, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = fs.PrintDefaults // postern-relay serve --help adds the rest (commands.go)
	listen := fs.String("listen", "127.0.0.1:7878", "address to listen on")
	data := fs.String("data", "./postern-data", "data directory: the database and the admin socket")
	cert := fs.String("tls-cert", "", "TLS certificate file (PEM); re-read on reload (SIGHUP)")
	key := fs.String("tls-key", "", "TLS key file (PEM); re-read on reload (SIGHUP)")
	enrollment := fs.String("enrollment", relay.EnrollOpen, "enrolment policy: open or invite")
	retention := positiveDuration(protocol.DefaultRetention)
	fs.Var(&retention, "retention", "how long unacknowledged envelopes are kept")
	maxBlob := byteSize(protocol.DefaultMaxBlobSize)
	fs.Var(&maxBlob, "max-blob-size", "largest blob (attachment ciphertext) accepted, in bytes or with a suffix: KiB, MiB, GiB, TiB")
	quota := byteSize(protocol.DefaultBlobQuota)
	fs.Var(&quota, "blob-quota", "bytes of live and unfinished blobs per device (suffixes as --max-blob-size)")
	blobRetention := positiveDuration(protocol.DefaultBlobRetention)
	fs.Var(&blobRetention, "blob-retention", "how long a blob is kept after its upload finished")
	maxConns := positiveInt(relay.DefaultMaxConnections)
	fs.Var(&maxConns, "max-connections", "concurrent WebSocket connections; more are refused with error 51 (too many connections)")
	frameRate := positiveInt(protocol.RateFramesPerSecond)
	fs.Var(&frameRate, "frame-rate", "frames per second one WebSocket connection may send on average; more are refused with error 50 (rate limited)")
	frameBurst := positiveInt(protocol.RateBurst)
	fs.Var(&frameBurst, "frame-burst", "frames one WebSocket connection may send at once before --frame-rate applies")
	queueConn := byteSize(relay.DefaultMaxQueuedBytesPerConn)
	fs.Var(&queueConn, "queue-per-connection", "bytes of frames queued for one connection that does not read, before its deliveries wait (suffixes as --max-blob-size)")
	queueDevice := byteSize(relay.DefaultMaxQueuedBytesPerDevice)
	fs.Var(&queueDevice, "queue-per-device", "bytes of frames queued for all connections of one device")
	queueTotal := byteSize(relay.DefaultMaxQueuedBytes)
	fs.Var(&queueTotal, "queue-total", "bytes of frames queued for all connections of the relay")
	subsPerMailbox := positiveInt(relay.DefaultMaxSubscriptionsPerMailbox)
	fs.Var(&subsPerMailbox, "max-subscriptions-per-mailbox", "connections subscribed to one mailbox at once; more are refused with error 51")
	fetchRate := positiveInt(relay.DefaultBundleFetchesPerHour)
	fs.Var(&fetchRate, "bundle-fetches-per-hour", "prekey bundle fetches one send capability may make per hour; more are refused with error 50")
	fetchBurst := positiveInt(relay.DefaultBundleFetchBurst)
	fs.Var(&fetchBurst, "bundle-fetch-burst", "bundle fetches one send capability may make at once before --bundle-fetches-per-hour applies")
	authFailures := positiveInt(relay.DefaultAuthFailuresPerAddress)
	fs.Var(&authFailures, "auth-failures-per-address", "failed authentications per minute one client address may make before its new connections are put on probation")
	minUpload := byteSize(relay.DefaultMinUploadRate)
	fs.Var(&minUpload, "min-upload-rate", "slowest blob upload, in bytes per second over a minute; slower ones are cut (the client resumes)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	mflags := addMetricsFlags(fs)
	nflags := addNetFlags(fs) // tls.go: ACME, trusted proxies, keep-alive, per-address limits
	if err := parseServe(fs, args, cs); err != nil {
		return nil, err
	}
	lv, err := parseLevel(*logLevel)
	if err != nil {
		return nil, err
	}
	if *logFormat != "text" && *logFormat != "json" {
		return nil, &usageError{msg: fmt.Sprintf("log format %q", *logFormat), hint: "use text or json"}
	}
	tlsConf, err := nflags.tlsConfig(*cert, *key, *listen, *data)
	if err != nil {
		return nil, err
	}
	metricsOn, err := mflags.check()
	if err != nil {
		return nil, err
	}
	rcfg := relay.Config{
		DataDir:        *data,
		Enrollment:     *enrollment,
		Retention:      time.Duration(retention),
		MaxConnections: int(maxConns),
		FrameRate:      int(frameRate),
		FrameBurst:     int(frameBurst),

		MaxBlobSize:   int64(maxBlob),
		BlobQuota:     int64(quota),
		BlobRetention: time.Duration(blobRetention),

		MaxQueuedBytesPerConn:      int64(queueConn),
		MaxQueuedBytesPerDevice:    int64(queueDevice),
		MaxQueuedBytes:             int64(queueTotal),
		MaxSubscriptionsPerMailbox: int(subsPerMailbox),
		BundleFetchesPerHour:       int(fetchRate),
		BundleFetchBurst:           int(fetchBurst),
		AuthFailuresPerAddress:     int(authFailures),
		MinUploadRate:              int64(minUpload),
	}
	nflags.apply(&rcfg)
	return &serveConfig{
		fs: fs, listen: *listen, data: *data, logFormat: *logFormat, level: lv,
		tls: tlsConf, metricsOn: metricsOn, metricsListen: *mflags.listen,
		nflags: nflags, relay: rcfg,
	}, nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// parseLevel parses --log-level.
func parseLevel(level string) (slog.Level, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return 0, &usageError{msg: fmt.Sprintf("log level %q", level), hint: "use debug, info, warn or error"}
	}
	return lv, nil
}

// newLogger builds serve's logger; format is "text" or "json" (checked by
// loadServe).
func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func inviteCreate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("invite create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "./postern-data", "data directory: the database and the admin socket")
	count := fs.Int("count", 1, "number of invite codes")
	ttl := positiveDuration(relay.DefaultInviteTTL)
	fs.Var(&ttl, "ttl", "how long the codes stay valid")
	accountFlag := fs.String("account", "", "bind the codes to this account label (e.g. dr.smith): the devices they enrol belong to it")
	if err := parse(fs, args); err != nil {
		return err
	}
	account, err := accountArg(*accountFlag, false)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A running relay owns the database: ask it over the admin socket.
	resp, err := relay.Admin(ctx, *data, relay.AdminRequest{Op: "invite.create", Count: *count, TTL: ttl.String(), Account: account})
	codes := resp.Codes
	if errors.Is(err, relay.ErrNoAdminSocket) {
		codes, err = offlineInvites(ctx, *data, *count, time.Duration(ttl), account)
	}
	if err != nil {
		return err
	}
	for _, c := range codes {
		fmt.Fprintln(stdout, c)
	}
	return nil
}

// openStore opens (or creates) the relay's bbolt store in the data
// directory for serve: the relay reaches it only through store.Store. It
// refuses a damaged file and a newer schema, and migrates an older one.
func openStore(data string) (*bboltstore.Store, error) {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return bboltstore.Open(filepath.Join(data, relay.DBFile), nil)
}

// offlineInvites opens the store directly when no relay is running.
func offlineInvites(ctx context.Context, dir string, n int, ttl time.Duration, account string) ([]string, error) {
	path := filepath.Join(dir, relay.DBFile)
	if _, err := os.Stat(path); err != nil {
		return nil, &usageError{msg: fmt.Sprintf("no relay data at %s", path), hint: "pass --data DIR (or set POSTERN_RELAY_DATA) to the relay's data directory"}
	}
	st, err := bboltstore.Open(path, &bboltstore.Options{LockTimeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	codes, err := relay.CreateAccountInvites(ctx, st, n, ttl, time.Now(), account)
	if err == nil {
		err = auditOfflineInvites(dir, n, ttl, account)
	}
	return codes, err
}

// byteSize is a flag.Value for a size in bytes: "4294967296", "4GiB",
// "512MiB", "64KiB", "1TiB" (binary units only: "4GB" is refused rather
// than guessed).
type byteSize int64

func (b *byteSize) String() string {
	v := int64(*b)
	for _, u := range sizeUnits {
		if v >= u.n && v%u.n == 0 {
			return fmt.Sprintf("%d%s", v/u.n, u.suffix)
		}
	}
	return fmt.Sprint(v)
}

var sizeUnits = []struct {
	suffix string
	n      int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}

func (b *byteSize) Set(s string) error {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return fmt.Errorf("want a positive number of bytes, optionally with KiB, MiB, GiB or TiB")
	}
	*b = byteSize(n * mult)
	return nil
}
