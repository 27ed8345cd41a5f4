package main

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// The installed layout of the relay's Debian package.
const (
	debBinary  = "/usr/bin/postern-relay"
	debUnit    = "/usr/lib/systemd/system/postern-relay.service"
	debConfDir = "/etc/postern-relay"
	debConf    = debConfDir + "/relay.conf"
	debData    = "/var/lib/postern-relay"
	debDocDir  = "/usr/share/doc/postern-relay"
)

// The paths the repository's unit and sample name, for an installation by
// hand (docs/postern-relay.service says how); the package puts the binary
// and the config file in the distribution's places instead.
var unitPaths = strings.NewReplacer(
	"/usr/local/bin/postern-relay", debBinary,
	"/etc/postern/relay.conf", debConf,
)

//go:embed debian/postinst debian/prerm debian/postrm
var scripts embed.FS

// deb packages the relay binary at bin for p (a Linux platform) from the
// checkout src into out, and returns the package's file name.
func (b *build) deb(src, out string, p platform, bin string) (string, error) {
	unitText, err := os.ReadFile(filepath.Join(src, "docs", "postern-relay.service"))
	if err != nil {
		return "", err
	}
	unit, err := packageUnit(string(unitText))
	if err != nil {
		return "", fmt.Errorf("docs/postern-relay.service: %v", err)
	}
	sample, err := os.ReadFile(filepath.Join(src, "docs", "relay.conf.sample"))
	if err != nil {
		return "", err
	}
	conf, err := packageConfig(string(sample))
	if err != nil {
		return "", fmt.Errorf("docs/relay.conf.sample: %v", err)
	}

	// nfpm takes its contents as files: the generated ones go to a
	// temporary directory of their own.
	gen, err := os.MkdirTemp("", "postern-deb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(gen)
	generated := map[string]string{
		"postern-relay.service": unit,
		"relay.conf":            conf,
	}
	for _, name := range []string{"postinst", "prerm", "postrm"} {
		s, err := scripts.ReadFile("debian/" + name)
		if err != nil {
			return "", err
		}
		generated[name] = string(s)
	}
	for name, text := range generated {
		if err := os.WriteFile(filepath.Join(gen, name), []byte(text), 0o644); err != nil {
			return "", err
		}
	}

	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, FileInfo: &files.ContentFileInfo{Mode: mode}}
	}
	conffile := file(filepath.Join(gen, "relay.conf"), debConf, 0o644)
	conffile.Type = files.TypeConfig
	info := nfpm.WithDefaults(&nfpm.Info{
		Name:       "postern-relay",
		Arch:       p.goarch,
		Platform:   "linux",
		Version:    b.version,
		Section:    "net",
		Priority:   "optional",
		Maintainer: "The Postern Authors",
		Vendor:     "The Postern Authors",
		Homepage:   "https://github.com/postern/postern",
		License:    "Apache-2.0",
		Description: "relay of the Postern end-to-end encrypted messenger\n" +
			"The relay moves opaque, padded envelopes and attachment blobs between\n" +
			"mailboxes and keeps them until they are acknowledged. It holds no keys\n" +
			"of its users and never sees the content or the sender of a message.",
		MTime: b.commitTime,
		Overridables: nfpm.Overridables{
			Contents: files.Contents{
				file(bin, debBinary, 0o755),
				file(filepath.Join(gen, "postern-relay.service"), debUnit, 0o644),
				{Destination: debConfDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
				conffile,
				file(filepath.Join(src, "LICENSE"), debDocDir+"/copyright", 0o644),
				file(filepath.Join(src, "docs", "OPERATIONS.md"), debDocDir+"/OPERATIONS.md", 0o644),
				file(filepath.Join(src, "docs", "relay.conf.sample"), debDocDir+"/relay.conf.sample", 0o644),
			},
			Scripts: nfpm.Scripts{
				PostInstall: filepath.Join(gen, "postinst"),
				PreRemove:   filepath.Join(gen, "prerm"),
				PostRemove:  filepath.Join(gen, "postrm"),
			},
		},
	})
	if err := nfpm.Validate(info); err != nil {
		return "", err
	}
	name := deb.Default.ConventionalFileName(info)
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(out, name), buf.Bytes(), 0o644); err != nil {
		return "", err
	}
	return name, nil
}

// execStartRE finds the unit's ExecStart line.
var execStartRE = regexp.MustCompile(`(?m)^ExecStart=(\S+)(.*)$`)

// packageUnit adapts the repository's systemd unit to the package's paths
// and checks that the result starts the packaged binary.
func packageUnit(unit string) (string, error) {
	unit = unitPaths.Replace(unit)
	m := execStartRE.FindAllStringSubmatch(unit, -1)
	if len(m) != 1 {
		return "", fmt.Errorf("want one ExecStart= line, found %d", len(m))
	}
	if m[0][1] != debBinary {
		return "", fmt.Errorf("ExecStart= runs %s, not the packaged %s", m[0][1], debBinary)
	}
	if !strings.Contains(unit, debConf) {
		return "", fmt.Errorf("the unit does not name the packaged config file %s", debConf)
	}
	return "# Installed by the postern-relay package, with its paths: " + debBinary + ",\n" +
		"# " + debConf + ". The steps below are for an installation by hand.\n" + unit, nil
}

// dataLineRE finds the sample's (commented-out) data option.
var dataLineRE = regexp.MustCompile(`(?m)^#\s*data\s*=.*$`)

// packageConfig turns the sample configuration into the package's
// /etc/postern-relay/relay.conf: data is set to the directory the package
// creates, everything else stays commented out at its default.
func packageConfig(sample string) (string, error) {
	if n := len(dataLineRE.FindAllStringIndex(sample, -1)); n != 1 {
		return "", fmt.Errorf("want one commented-out data line, found %d", n)
	}
	conf := dataLineRE.ReplaceAllLiteralString(sample, "data = "+debData)
	conf = unitPaths.Replace(conf)
	header := "# Installed by the postern-relay package as " + debConf + ".\n" +
		"# data is set to " + debData + ", which the package made for the user postern;\n" +
		"# the full sample is in " + debDocDir + "/relay.conf.sample.\n#\n"
	return header + conf, nil
}
