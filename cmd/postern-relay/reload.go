package main

// Configuration reload on SIGHUP (systemctl reload). The configuration is
// built again exactly as at start: a fresh FlagSet parsed from the original
// command line, then the environment, then the config file read again from
// disk, with the same checks. An invalid configuration is refused as a
// whole and the relay runs on unchanged. Otherwise the options that are
// safe to change while the relay runs are applied at once (relay.Reload,
// the log level, the TLS certificate files, the trusted proxies), and the
// others are reported as needing a restart.

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/postern/postern/relay"
)

// reloadable are the serve options a reload applies. Every other option
// (listen, data, log-format, metrics-listen, metrics-listen-public,
// acme-domain, acme-cache, and any option added without being listed here)
// needs a restart. tls-cert and tls-key are re-read, but switching between
// certificate files and none needs a restart.
var reloadable = map[string]bool{
	"enrollment":             true,
	"retention":              true,
	"max-connections":        true,
	"max-blob-size":          true,
	"blob-quota":             true,
	"blob-retention":         true,
	"frame-rate":             true,
	"frame-burst":            true,
	"log-level":              true,
	"trusted-proxy":          true,
	"ping-interval":          true,
	"conn-rate-per-address":  true,
	"conn-burst-per-address": true,
	"max-conns-per-address":  true,
	"tls-cert":               true,
	"tls-key":                true,
}

// reloader applies SIGHUP reloads to a running serve. Reloads run one at
// a time on serve's signal loop.
type reloader struct {
	args   []string
	start  *serveConfig // what serve started with: its TLS and proxy holders
	relay  *relay.Relay
	base   relay.Config // the Config given to relay.New
	level  *slog.LevelVar
	logger *slog.Logger
	// running holds each option's value as applied: an option that needs a
	// restart keeps its start value, so that every reload reports it until
	// the restart.
	running map[string]string
}

func newReloader(args []string, sc *serveConfig, r *relay.Relay, base relay.Config, level *slog.LevelVar, logger *slog.Logger) *reloader {
	rl := &reloader{args: args, start: sc, relay: r, base: base, level: level, logger: logger, running: map[string]string{}}
	for _, f := range options(sc.fs) {
		rl.running[f.Name] = f.Value.String()
	}
	return rl
}

// reload reads the configuration again and applies it, or logs why not.
func (rl *reloader) reload() {
	rl.logger.Info("reloading configuration")
	next, err := loadServe(rl.args, io.Discard, nil)
	var rcfg relay.Config
	if err == nil {
		err = checkRelayConfig(next.relay) // as config check: the same messages
	}
	if err == nil {
		// Only the reloadable fields may differ from the running relay's;
		// the rest is as at start (a data change needs a restart).
		rcfg = next.relay
		rcfg.DataDir, rcfg.Logger, rcfg.Metrics, rcfg.Store = rl.base.DataDir, rl.base.Logger, rl.base.Metrics, rl.base.Store
		err = rl.relay.Reload(rcfg)
	}
	if err != nil {
		msg, hint := explain(err)
		// Audit and metrics first: whoever sees the log line (an
		// operator, a supervisor script) finds them already updated.
		rl.relay.AuditReloadRefused(msg)
		rl.base.Metrics.ConfigLoaded(false, time.Now())
		rl.logger.Error("configuration reload refused; the running configuration is kept", "err", msg, "hint", hint)
		return
	}

	changed, restart := rl.diff(next.fs)
	rl.level.Set(next.level)
	rl.start.nflags.setProxies(next.nflags.trusted)
	rl.reloadCert(next)
	rl.base.Metrics.SetCertExpiry(rl.start.nflags.certExpiry())
	rl.base.Metrics.ConfigLoaded(true, time.Now())
	for _, name := range changed {
		rl.running[name] = next.fs.Lookup(name).Value.String()
	}
	for _, name := range restart {
		running, configured := rl.running[name], next.fs.Lookup(name).Value.String()
		if isSecret(name) {
			running, configured = "(hidden)", "(hidden)"
		}
		rl.logger.Warn("option changed in the configuration; restart postern-relay to apply", "option", name, "running", running, "configured", configured)
	}
	if len(changed) > 0 || len(restart) > 0 {
		rl.relay.AuditReload(changed, restart) // before the log line, as above; no entry when nothing differs
	}
	switch {
	case len(changed) > 0:
		rl.logger.Info("configuration reloaded", "changed", strings.Join(changed, ","))
	case len(restart) > 0:
		rl.logger.Info("configuration reloaded; nothing to apply before a restart")
	default:
		rl.logger.Info("configuration reloaded, nothing changed")
	}
}

// diff compares the options of next with the running ones: changed are
// those a reload applies, restart those that need a restart. Both sorted.
func (rl *reloader) diff(next *flag.FlagSet) (changed, restart []string) {
	tlsSwitch := (rl.running["tls-cert"] == "") != (next.Lookup("tls-cert").Value.String() == "")
	for _, f := range options(next) {
		if f.Value.String() == rl.running[f.Name] {
			continue
		}
		isTLSFile := f.Name == "tls-cert" || f.Name == "tls-key"
		if reloadable[f.Name] && !(isTLSFile && tlsSwitch) {
			changed = append(changed, f.Name)
		} else {
			restart = append(restart, f.Name)
		}
	}
	slices.Sort(changed)
	slices.Sort(restart)
	return changed, restart
}

// reloadCert serves the certificate next loaded from --tls-cert/--tls-key
// (a renewal replaces the files) to new handshakes. Connections already
// established keep theirs.
func (rl *reloader) reloadCert(next *serveConfig) {
	if rl.start.nflags.cert.Load() == nil {
		return // no certificate files at start: a switch needs a restart
	}
	pair := next.nflags.cert.Load()
	if pair == nil {
		return
	}
	old := rl.start.nflags.cert.Swap(pair)
	if old != nil && len(old.Certificate) > 0 && len(pair.Certificate) > 0 && bytes.Equal(old.Certificate[0], pair.Certificate[0]) {
		return
	}
	args := []any{}
	if pair.Leaf != nil {
		args = append(args, "subject", pair.Leaf.Subject.String(), "not_after", pair.Leaf.NotAfter.UTC().Format("2006-01-02T15:04:05Z"))
	}
	rl.logger.Info("TLS certificate replaced for new connections", args...)
}

// explain splits an error into the message and hint config check prints.
func explain(err error) (msg, hint string) {
	var ue *usageError
	if errors.As(err, &ue) {
		return ue.msg, ue.hint
	}
	if errors.Is(err, relay.ErrConfig) {
		return err.Error(), "fix the option named above; docs/OPERATIONS.md lists every option"
	}
	return err.Error(), ""
}
