package main

import (
	"context"
	"fmt"

	"github.com/postern/postern/client"
)

var deviceCmd = &command{
	name:  "device",
	usage: "device list",
	help: `List the devices of your person, from the newest signed device list the relay
holds, after checking it against the relay's transparency log: one line per
device with its name (or "(unnamed)"), its short ID, the date it was linked,
and "this device" for the one you are on.`,
	run: runDevice,
}

func runDevice(ctx context.Context, c *cli, cmd *command, args []string) error {
	fs := c.newFlagSet(cmd)
	pos, err := parse(fs, cmd, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) == 0:
		return usagef(cmd, "missing what to do: list")
	case pos[0] != "list":
		return usagef(cmd, "unknown device command %q", pos[0])
	case len(pos) > 1:
		return usagef(cmd, "device list takes no arguments")
	}
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
