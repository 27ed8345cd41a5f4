package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestAgentSystemdUnit lints docs/postern-agent@.service: the hardening
// directives, the passphrase as a credential (never in the environment
// file), and every flag of its example settings known to 'postern agent';
// it runs systemd-analyze verify when that is installed.
func TestAgentSystemdUnit(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "postern-agent@.service")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		lines[strings.TrimSpace(l)] = true
	}
	for _, want := range []string{
		"User=postern-agent",
		"EnvironmentFile=/etc/postern/agent-%i.env",
		"LoadCredential=passphrase:/etc/postern/agent-%i.passphrase",
		"Environment=POSTERN_PASSPHRASE_FILE=%d/passphrase",
		"StateDirectory=postern-agent/%i",
		"ExecStart=/usr/local/bin/postern --home /var/lib/postern-agent/%i agent --team ${TEAM} $AGENT_OPTIONS",
		"Restart=on-failure",
		"ProtectSystem=strict",
		"ProtectHome=true",
		"PrivateTmp=true",
		"NoNewPrivileges=true",
		"CapabilityBoundingSet=",
		"MemoryDenyWriteExecute=true",
		"SystemCallFilter=@system-service",
		"ReadWritePaths=/var/lib/postern-agent/%i",
	} {
		if !lines[want] {
			t.Errorf("unit lacks %q", want)
		}
	}
	if strings.Contains(string(b), "POSTERN_PASSPHRASE=") {
		t.Error("the unit puts a passphrase in the environment")
	}
	opts := regexp.MustCompile(`AGENT_OPTIONS=(.*)`).FindStringSubmatch(string(b))
	if opts == nil {
		t.Fatal("the unit shows no example AGENT_OPTIONS")
	}
	for _, f := range regexp.MustCompile(`--[a-z-]+`).FindAllString(opts[1], -1) {
		if !strings.Contains(agentCmd.usage, "["+f+" ") && !strings.Contains(agentCmd.usage, f+" ") {
			t.Errorf("the example option %s is not a flag of 'postern agent' (%s)", f, agentCmd.usage)
		}
	}
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: directive lint only")
	}
	// verify wants an instance of a template unit.
	inst := filepath.Join(t.TempDir(), "postern-agent@pharmacy.service")
	if err := os.WriteFile(inst, b, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(sa, "verify", inst).CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "Unknown key") || strings.Contains(l, "Failed to parse") || strings.Contains(l, "Invalid") {
			t.Errorf("systemd-analyze: %s", l)
		}
	}
	t.Logf("systemd-analyze verify: %v\n%s", err, out)
}
