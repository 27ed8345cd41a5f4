package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/postern/postern/client"
	"github.com/postern/postern/ui"
)

var uiCmd = &command{
	name:  "ui",
	usage: "ui [--listen ADDR] [--no-browser] [--idle-timeout DURATION] [--relay URL] [--allow-remote --tls-cert FILE --tls-key FILE]",
	help: `Serve Postern as a web page on this computer and open it in the default
browser. The address (127.0.0.1 on a free port unless --listen ADDR) is
printed on standard output with a sign-in token that works once: the
browser that opens it gets a session, and the link is void. --no-browser
only prints it (for remote desktops and scripts). The page asks for the
passphrase; with POSTERN_PASSPHRASE set, the first session starts
unlocked. The page locks after --idle-timeout without use (default 5m)
and with its "Lock now" button (Ctrl+Alt+L); locking drops the keys from
memory. An organisation's policy file (docs/POLICY.md) may set the
timeout and the longest one a user may choose, and turn desktop
notifications off; a policy file that cannot be read stops postern ui.
Scripts and record systems on this computer use the same API
(docs/API.md) with the token in the file api-token of the home, which
must be readable by its owner only. --listen on an address other than
loopback is refused unless --allow-remote is given with a certificate and
key for HTTPS. Stops on Ctrl-C or SIGTERM.

On a computer without a Postern identity the page starts with the first
run: it shows the terms of use, then creates an identity (as init does;
--relay URL is the relay it offers), links this computer to another
device of yours with the code that 'postern device link' shows, or
restores a backup. While unlocked the page receives for this device, as
'postern listen' does: the two do not run on one home at once.`,
	run: runUI,
}

func runUI(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	listen := fs.String("listen", "127.0.0.1:0", "")
	noBrowser := fs.Bool("no-browser", false, "")
	idle := fs.Duration("idle-timeout", ui.DefaultIdleTimeout, "")
	allowRemote := fs.Bool("allow-remote", false, "")
	certFile := fs.String("tls-cert", "", "")
	keyFile := fs.String("tls-key", "", "")
	relayURL := fs.String("relay", "", "")
	if _, err := parseN(fs, cmd, args); err != nil {
		return err
	}
	if *idle <= 0 {
		return usagef(cmd, "--idle-timeout must be positive")
	}
	pol, err := c.policy() // a bad policy file stops us (policy.go)
	if err != nil {
		return err
	}
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "idle-timeout" })
	idleTimeout, idleByPolicy, capped := pol.lockTimeout(*idle, given, ui.DefaultIdleTimeout)
	if capped {
		fmt.Fprintf(c.stderr, "postern: your organisation's policy locks the page after at most %v without use\n", idleTimeout)
	}
	useTLS := *certFile != "" || *keyFile != ""
	if useTLS && (*certFile == "" || *keyFile == "") {
		return usagef(cmd, "--tls-cert and --tls-key go together")
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return usagef(cmd, "--listen wants HOST:PORT, as 127.0.0.1:8080")
	}
	if !loopbackHost(host) {
		if !*allowRemote || !useTLS {
			return &cliError{
				msg:  fmt.Sprintf("refusing to serve on %s: it is not a loopback address, and others could reach your messages", *listen),
				hint: "serve on 127.0.0.1, or give --allow-remote with --tls-cert and --tls-key",
			}
		}
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			return &cliError{
				msg:  "--allow-remote needs the address or name that browsers will use, not " + *listen,
				hint: "give --listen HOST:PORT with that host",
			}
		}
	}
	home, err := c.homeDir()
	if err != nil {
		return err
	}
	minPass, err := c.minPassphrase()
	if err != nil {
		return err
	}
	var passphrase []byte
	// On the first run (no key file) the passphrase is chosen on the page.
	_, noKey := os.Stat(filepath.Join(home, client.KeyFileName))
	if _, ok := c.lookupEnv("POSTERN_PASSPHRASE"); ok && noKey == nil {
		if passphrase, err = c.passphrase(false); err != nil {
			return err
		}
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return &cliError{msg: "cannot listen on " + *listen + ": " + err.Error(), err: err}
	}
	defer l.Close()
	// The Host the browser sends: the name given, with the port the
	// listener got; an IP address as the listener has it.
	addr := l.Addr().String()
	if net.ParseIP(host) == nil && host != "localhost" {
		_, port, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort(host, port)
	}
	logger := slog.New(slog.DiscardHandler)
	if c.verbose {
		logger = slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	copts, err := c.options()
	if err != nil {
		return err
	}
	app, err := ui.New(&ui.Options{
		Home: home, Addr: addr, TLS: useTLS, Passphrase: passphrase,
		Client: copts, IdleTimeout: idleTimeout, Logger: logger,
		IdleTimeoutByPolicy: idleByPolicy, NoDesktopNotifications: pol.noNotifications,
		Relay: *relayURL, MinPassphrase: minPass,
		CheckPassphrase: func(p []byte) error { return checkNewPassphrase(p, minPass) },
		ReceiveLock: func() (func(), error) {
			lk, err := lockReceiving(home, "postern ui")
			if err != nil {
				return nil, err
			}
			return lk.release, nil
		},
		Explain: func(err error) (string, string) {
			msg, hint := c.explain(err)
			if errors.Is(err, client.ErrWrongPassphrase) {
				hint = "type it again" // on the page, not on the command line
			}
			return msg, hint
		},
	})
	if err != nil {
		return err
	}
	defer app.Close()
	// From here on the passphrase comes from the page: a wrong one is not
	// POSTERN_PASSPHRASE's fault.
	c.passphraseFromEnv = false

	srv := &http.Server{Handler: app, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	served := make(chan error, 1)
	go func() {
		if useTLS {
			served <- srv.ServeTLS(l, *certFile, *keyFile)
		} else {
			served <- srv.Serve(l)
		}
	}()
	if _, err := fmt.Fprintln(c.stdout, app.LoginURL()); err != nil {
		srv.Close()
		return err
	}
	fmt.Fprintln(c.stderr, "postern: the link above signs one browser in, once; Ctrl-C stops")
	if !*noBrowser {
		if err := openBrowser(app.LoginURL()); err != nil {
			fmt.Fprintf(c.stderr, "postern: could not open a browser (%v); open the link yourself\n", err)
		}
	}
	select {
	case <-ctx.Done():
	case err := <-served:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	app.Close() // ends the event streams, which Shutdown would wait for
	srv.Shutdown(shut)
	return nil
}

// loopbackHost reports whether host names this computer only.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// openBrowser opens url in the default browser without waiting for it.
// The one-time token is on the opener's command line for the moment it
// runs; the browser spends it at once.
func openBrowser(url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "windows":
		cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
	case "darwin":
		cmd = exec.Command("open", url)
	default:
		cmd = exec.Command("xdg-open", url)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait()
	return nil
}
