package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blakesmith/ar"
)

// debFile is one member of a package's data or control archive.
type debFile struct {
	mode int64
	body string
	dir  bool
}

// readDeb returns the members of a .deb's control.tar.gz and its data
// archive, by path without the leading ".".
func readDeb(t *testing.T, path string) (control, data map[string]debFile) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	control, data = map[string]debFile{}, map[string]debFile{}
	r := ar.NewReader(bytes.NewReader(raw))
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var into map[string]debFile
		switch {
		case strings.HasPrefix(h.Name, "control.tar.gz"):
			into = control
		case strings.HasPrefix(h.Name, "data.tar.gz"):
			into = data
		default:
			continue
		}
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatalf("%s: %v", h.Name, err)
		}
		tr := tar.NewReader(zr)
		for {
			th, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", h.Name, err)
			}
			body, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			name := strings.TrimSuffix(strings.TrimPrefix(th.Name, "."), "/")
			into[name] = debFile{mode: th.Mode & 0o7777, body: string(body), dir: th.Typeflag == tar.TypeDir}
		}
	}
	if len(control) == 0 || len(data) == 0 {
		t.Fatalf("%s: no control or data archive", path)
	}
	return control, data
}

// TestDebLayout builds the relay's package from the repository's unit and
// sample config and checks what an operator gets: the binary, the unit
// running it with the packaged config, the conffile with data set to the
// package's directory, and the maintainer scripts.
func TestDebLayout(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "postern-relay")
	if err := os.WriteFile(bin, []byte("not really a binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &build{version: "v1.2.3-rc.1", commit: strings.Repeat("ab", 20), commitTime: time.Unix(1764121424, 0).UTC(), log: io.Discard}
	name, err := b.deb("..", dir, platform{"linux", "arm64"}, bin)
	if err != nil {
		t.Fatal(err)
	}
	if want := "postern-relay_1.2.3~rc.1_arm64.deb"; name != want {
		t.Errorf("package file %s, want %s", name, want)
	}
	control, data := readDeb(t, filepath.Join(dir, name))

	for path, mode := range map[string]int64{
		debBinary:                    0o755,
		debUnit:                      0o644,
		debConf:                      0o644,
		debDocDir + "/copyright":     0o644,
		debDocDir + "/OPERATIONS.md": 0o644,
	} {
		f, ok := data[path]
		if !ok {
			t.Errorf("%s is not in the package", path)
			continue
		}
		if f.mode != mode {
			t.Errorf("%s has mode %o, want %o", path, f.mode, mode)
		}
	}
	if got := data[debBinary].body; got != "not really a binary" {
		t.Errorf("%s holds %q, not the binary given", debBinary, got)
	}
	if !strings.Contains(data[debDocDir+"/copyright"].body, "Apache License") {
		t.Errorf("copyright is not the licence")
	}

	unit := data[debUnit].body
	start := execStartRE.FindStringSubmatch(unit)
	if start == nil || start[1] != debBinary {
		t.Errorf("the unit's ExecStart does not run %s: %v", debBinary, start)
	}
	for _, line := range strings.Split(unit, "\n") {
		if !strings.HasPrefix(line, "#") && strings.Contains(line, "/usr/local/bin") {
			t.Errorf("the unit uses a path outside the package: %s", line)
		}
	}
	if !strings.Contains(unit, debConf) {
		t.Errorf("the unit does not name %s:\n%s", debConf, unit)
	}

	conf := data[debConf].body
	var active []string
	for _, line := range strings.Split(conf, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			active = append(active, l)
		}
	}
	if len(active) != 1 || active[0] != "data = "+debData {
		t.Errorf("relay.conf sets %q, want only data = %s", active, debData)
	}

	if got := strings.TrimSpace(control["/conffiles"].body); got != debConf {
		t.Errorf("conffiles = %q, want %s", got, debConf)
	}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		f, ok := control["/"+s]
		if !ok {
			t.Errorf("no %s script", s)
			continue
		}
		if f.mode != 0o755 {
			t.Errorf("%s has mode %o", s, f.mode)
		}
	}
	post := control["/postinst"].body
	for _, want := range []string{"adduser --system", "useradd --system", "-m 0750 \"$data\"", "data=" + debData} {
		if !strings.Contains(post, want) {
			t.Errorf("postinst lacks %q", want)
		}
	}
	ctl := control["/control"].body
	for _, want := range []string{"Package: postern-relay", "Version: 1.2.3~rc.1", "Architecture: arm64"} {
		if !strings.Contains(ctl, want) {
			t.Errorf("control lacks %q:\n%s", want, ctl)
		}
	}
}

// TestDebReproducible builds the same package twice, a second apart: the
// bytes must not differ (no build time, no map order, no temporary paths).
func TestDebReproducible(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "postern-relay")
	if err := os.WriteFile(bin, []byte("binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := &build{version: "v0.1.0", commit: strings.Repeat("cd", 20), commitTime: time.Unix(1764121424, 0).UTC(), log: io.Discard}
	var pkgs [2][]byte
	for i := range pkgs {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // a second later: a leaked clock would show
		}
		dir := t.TempDir()
		name, err := b.deb("..", dir, platform{"linux", "amd64"}, bin)
		if err != nil {
			t.Fatal(err)
		}
		if pkgs[i], err = os.ReadFile(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(pkgs[0], pkgs[1]) {
		t.Fatal("two builds of the same package differ")
	}
}

func TestPackageUnit(t *testing.T) {
	ok := "[Service]\nExecStart=/usr/local/bin/postern-relay serve --config /etc/postern/relay.conf\n"
	got, err := packageUnit(ok)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[Service]\nExecStart=/usr/bin/postern-relay serve --config /etc/postern-relay/relay.conf\n"; !strings.HasSuffix(got, want) {
		t.Errorf("packageUnit = %q, want %q", got, want)
	}
	for name, unit := range map[string]string{
		"other binary":    "ExecStart=/opt/bin/postern-relay serve --config /etc/postern/relay.conf\n",
		"no config file":  "ExecStart=/usr/local/bin/postern-relay serve\n",
		"two ExecStart":   ok + ok,
		"no ExecStart":    "[Service]\nUser=postern\n",
		"wrapped command": "ExecStart=/bin/sh -c '/usr/local/bin/postern-relay serve --config /etc/postern/relay.conf'\n",
	} {
		if _, err := packageUnit(unit); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPackageConfig(t *testing.T) {
	if _, err := packageConfig("# listen = 127.0.0.1:7878\n"); err == nil {
		t.Error("a sample without a data line was accepted")
	}
	if _, err := packageConfig("# data = a\n# data = b\n"); err == nil {
		t.Error("a sample with two data lines was accepted")
	}
	got, err := packageConfig("# Use with: postern-relay serve --config /etc/postern/relay.conf\n# data = ./postern-data\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "\ndata = /var/lib/postern-relay\n") || !strings.Contains(got, "--config /etc/postern-relay/relay.conf") {
		t.Errorf("packageConfig =\n%s", got)
	}
}
