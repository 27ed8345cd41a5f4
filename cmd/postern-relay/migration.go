package main

// Reporting store migrations. bboltstore converts an older database when
// relay.New opens it, after copying it to relay.db.schema-N.bak; it does
// not say so. serve notes the copies present before relay.New and reports
// each one that appears (or is rewritten) by then as a migration from
// schema N, in the log and the audit log. Nothing is read from the
// database before the store has checked it.

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/postern/postern/relay"
	"github.com/postern/postern/relay/store/bboltstore"
)

// migrationBackups returns the pre-migration copies in dir with their
// modification times.
func migrationBackups(dir string) map[string]time.Time {
	out := map[string]time.Time{}
	pattern := filepath.Join(dir, relay.DBFile+strings.Replace(bboltstore.BackupSuffix, "%d", "*", 1))
	matches, _ := filepath.Glob(pattern)
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() {
			out[filepath.Base(m)] = fi.ModTime()
		}
	}
	return out
}

// reportMigrations logs and audits each migration the store made while
// relay.New opened it: a copy in dir that was not in before, or is newer.
func reportMigrations(before map[string]time.Time, dir string, r *relay.Relay, logger *slog.Logger) {
	for name, mod := range migrationBackups(dir) {
		if prev, ok := before[name]; ok && !mod.After(prev) {
			continue
		}
		var from uint32
		if _, err := fmt.Sscanf(name, relay.DBFile+bboltstore.BackupSuffix, &from); err != nil || from >= bboltstore.SchemaVersion {
			continue
		}
		logger.Info("store migrated", "from_schema", from, "to_schema", bboltstore.SchemaVersion, "backup", name)
		r.AuditStoreMigrated(from, bboltstore.SchemaVersion, name)
	}
}
