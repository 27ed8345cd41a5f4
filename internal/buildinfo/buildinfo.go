// Package buildinfo says which build of Postern is running: the version,
// the commit it was built from, when that commit was made, and the Go
// toolchain.
//
// The commit and its time come from the build information the Go
// toolchain stamps into binaries built from a version-control checkout
// (runtime/debug.ReadBuildInfo, settings vcs.revision, vcs.time and
// vcs.modified). The version is the main module's version unless a
// release build sets it:
//
//	go build -ldflags "-X github.com/postern/postern/internal/buildinfo.version=v1.2.3" ./cmd/postern-relay
//
// A build made without version-control information (go test, a source
// tarball, -buildvcs=false) reports the commit and date as "unknown".
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// version overrides the module version; the release build sets it with
// -ldflags "-X github.com/postern/postern/internal/buildinfo.version=…".
// Keep this name: release tooling sets it by its full path.
var version string

// Unknown stands for a field the build information does not hold.
const Unknown = "unknown"

// Info describes one build.
type Info struct {
	// Version is the release version (v1.2.3), the module's pseudo-version,
	// or "devel" for a build from a checkout without one.
	Version string
	// Commit is the full VCS revision, or Unknown.
	Commit string
	// Date is the commit time, RFC 3339 in UTC, or Unknown. It is the
	// commit's time, not the moment of the build, so that a reproducible
	// build prints the same date wherever it is made.
	Date string
	// Modified is true when the checkout had uncommitted changes.
	Modified bool
	// GoVersion is the Go toolchain, e.g. go1.26.1.
	GoVersion string
}

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return fromBuildInfo(bi, version)
}

// fromBuildInfo builds an Info from bi (nil: none available) and the
// linker-set version override.
func fromBuildInfo(bi *debug.BuildInfo, override string) Info {
	in := Info{Version: "devel", Commit: Unknown, Date: Unknown, GoVersion: runtime.Version()}
	if bi != nil {
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			in.Version = v
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if s.Value != "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				if s.Value != "" {
					in.Date = s.Value
				}
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if o := strings.TrimSpace(override); o != "" {
		in.Version = o
	}
	return in
}

// ShortCommit is the commit's first 12 hex digits (with "+dirty" for a
// modified checkout), or Unknown.
func (in Info) ShortCommit() string {
	c := in.Commit
	if c == Unknown {
		return c
	}
	if len(c) > 12 {
		c = c[:12]
	}
	if in.Modified {
		c += "+dirty"
	}
	return c
}

// String is the one-line form the version commands print after the
// program name: "v1.2.3 (commit 0123456789ab, 2026-12-01T10:00:00Z, go1.26.1)".
func (in Info) String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s)", in.Version, in.ShortCommit(), in.Date, in.GoVersion)
}
