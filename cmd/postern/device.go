package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/postern/postern/client"
)

var deviceCmd = &command{
	name:  "device",
	usage: "device list | device link [--history] [--yes] [--ascii] [--code-file PATH] | device revoke NAME|ID",
	help: `Your person's devices (at most 8).

device list: the devices of your person, from the newest signed device list
the relay holds, after checking it against the relay's transparency log: one
line per device with its name (or "(unnamed)"), its short ID, the date it was
linked, and "this device" for the one you are on.

device link: link a new device. It prints a one-time link code (one line
beginning "postern-link:", and the same as a QR code) that expires after 10
minutes, and waits for the new device, where you run
  postern init --link CODE --name DEVICE-NAME
When the new device answers, it shows the name the device gave itself and
asks before linking it (--yes links without asking; it is needed when the
standard input is not a terminal). --ascii draws the QR code with ASCII
characters; --code-file also writes the code to PATH (created 0600), for a
new device set up by a script. --history sends your message history too,
encrypted, through the relay (the new device downloads it, resuming if the
connection drops). Your other devices show an alert.

device revoke NAME|ID: revoke another of your devices (by its name, or its
ID: at least 8 hex digits of its start). The relay refuses it at once, your
contacts stop writing to it, and it deletes its keys and messages the next
time it reaches the relay. Use it for a lost or stolen device.`,
	run: runDevice,
}

func runDevice(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	yes := fs.Bool("yes", false, "")
	ascii := fs.Bool("ascii", false, "")
	codeFile := fs.String("code-file", "", "")
	history := fs.Bool("history", false, "")
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef(cmd, "missing what to do: list, link or revoke")
	}
	if pos[0] != "link" && (*yes || *ascii || *codeFile != "" || *history) {
		return usagef(cmd, "--history, --yes, --ascii and --code-file are for device link")
	}
	switch pos[0] {
	case "list":
		if len(pos) > 1 {
			return usagef(cmd, "device list takes no arguments")
		}
		return deviceList(ctx, c)
	case "link":
		if len(pos) > 1 {
			return usagef(cmd, "device link takes no arguments")
		}
		if !*yes && !isTerminal(c.stdin) {
			return usagef(cmd, "device link asks before it links a device: run it on a terminal, or add --yes")
		}
		return deviceLink(ctx, c, *yes, *ascii, *history, *codeFile)
	case "revoke":
		if len(pos) != 2 {
			return usagef(cmd, "device revoke takes one device: its name or ID")
		}
		return deviceRevoke(ctx, c, pos[1])
	}
	return usagef(cmd, "unknown device command %q", pos[0])
}

func deviceList(ctx context.Context, c *cli) error {
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	devs, err := cl.Devices(ctx)
	if err != nil {
		return err
	}
	for _, d := range devs {
		fmt.Fprintln(c.stdout, deviceLine(d))
	}
	return nil
}

func deviceLink(ctx context.Context, c *cli, yes, ascii, history bool, codeFile string) error {
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	var showErr error
	info, err := cl.LinkDevice(ctx, &client.LinkOptions{
		Show: func(code string) {
			fmt.Fprintf(c.stdout, "On the new device, run:\n  postern init --link CODE --name DEVICE-NAME\nwith this code (or scan it); it works once, for 10 minutes:\n%s\n", code)
			if err := client.WriteLinkQR(c.stdout, code, ascii); err != nil {
				fmt.Fprintf(c.stderr, "postern: the QR code could not be drawn: %v\n", err)
			}
			if codeFile != "" {
				showErr = os.WriteFile(codeFile, []byte(code+"\n"), 0o600)
			}
		},
		Confirm: func(name string) bool {
			if yes {
				return true
			}
			fmt.Fprintf(c.stdout, "A device named %q asks to be linked to you. Link it? [y/N] ", safe(name, false))
			line, _ := bufio.NewReader(c.stdin).ReadString('\n')
			a := strings.ToLower(strings.TrimSpace(line))
			return a == "y" || a == "yes"
		},
		History: history,
	})
	if showErr != nil {
		return fmt.Errorf("writing the link code to %s: %w", codeFile, showErr)
	}
	if errors.Is(err, client.ErrLinkDeclined) {
		fmt.Fprintln(c.stdout, "Not linked.")
		return err
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "Linked %s (%s). Your other devices show an alert; your contacts learn of it when it first writes to them.\n", safe(info.Name, false), info.ID.Short())
	return nil
}

func deviceRevoke(ctx context.Context, c *cli, which string) error {
	cl, err := c.dial(ctx)
	if err != nil {
		return err
	}
	defer cl.Close()
	info, err := cl.RevokeDevice(ctx, which)
	if err != nil {
		return err
	}
	name := "(unnamed)"
	if info.Name != "" {
		name = safe(info.Name, false)
	}
	fmt.Fprintf(c.stdout, "Revoked %s (%s). The relay refuses it from now on; it deletes its keys and messages the next time it reaches the relay.\n", name, info.ID.Short())
	return nil
}

// deviceLine is one device as "device list" prints it.
func deviceLine(d client.DeviceInfo) string {
	name := "(unnamed)"
	if d.Name != "" {
		name = safe(d.Name, false)
	}
	line := fmt.Sprintf("%s  %s  linked %s", name, d.ID.Short(), d.Linked.Local().Format("2006-01-02"))
	if d.This {
		line += "  this device"
	}
	return line
}
