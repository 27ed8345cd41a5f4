package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	stamped := &debug.BuildInfo{
		GoVersion: "go1.26.1",
		Main:      debug.Module{Path: "github.com/postern/postern", Version: "v0.0.0-20261201100000-0123456789ab"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	for _, tc := range []struct {
		name     string
		bi       *debug.BuildInfo
		override string
		want     Info
		line     string
	}{
		{"none", nil, "", Info{Version: "devel", Commit: Unknown, Date: Unknown}, "devel (commit unknown, built unknown, "},
		{"devel checkout without vcs", &debug.BuildInfo{GoVersion: "go1.26.1", Main: debug.Module{Version: "(devel)"}}, "",
			Info{Version: "devel", Commit: Unknown, Date: Unknown, GoVersion: "go1.26.1"}, "devel (commit unknown, built unknown, go1.26.1)"},
		{"stamped", stamped, "",
			Info{Version: "v0.0.0-20261201100000-0123456789ab", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-12-01T10:00:00Z", Modified: true, GoVersion: "go1.26.1"},
			"v0.0.0-20261201100000-0123456789ab (commit 0123456789ab+dirty, built 2026-12-01T10:00:00Z, go1.26.1)"},
		{"release override", stamped, " v1.2.3 ",
			Info{Version: "v1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567", Date: "2026-12-01T10:00:00Z", Modified: true, GoVersion: "go1.26.1"},
			"v1.2.3 (commit 0123456789ab+dirty, built 2026-12-01T10:00:00Z, go1.26.1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fromBuildInfo(tc.bi, tc.override)
			if tc.want.GoVersion == "" {
				tc.want.GoVersion = got.GoVersion // the running toolchain
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
			if !strings.HasPrefix(got.String(), tc.line) {
				t.Errorf("String() = %q, want prefix %q", got.String(), tc.line)
			}
		})
	}
}

// The linker override is a package variable of exactly this name; the
// release build sets it by its full path.
func TestOverrideVariable(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.8.7"
	if got := Read().Version; got != "v9.8.7" {
		t.Fatalf("Read().Version = %q with the override set", got)
	}
}
