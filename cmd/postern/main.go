// Command postern is the Postern client: it creates an identity, exchanges
// invitations with contacts and sends and receives end-to-end encrypted
// messages through a relay. Run "postern help" for the commands.
//
// The passphrase that protects the key files comes from POSTERN_PASSPHRASE
// or, when that is unset, from a prompt on the terminal that does not echo.
// postern never prints the passphrase or private keys; "postern invite" is
// the only command that prints something to keep private (the invitation
// line), and it prints it only on standard output.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole CLI behind main, testable in process: it parses args
// (without the program name), runs one command and returns the exit code:
// 0 on success, 1 on failure, 2 on a usage error.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{
		stdin:     stdin,
		stdout:    stdout,
		stderr:    stderr,
		lookupEnv: os.LookupEnv,
	}
	return c.main(ctx, args)
}
