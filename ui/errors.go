package ui

import "errors"

var (
	// ErrTokenFileMode: the bearer-token file can be read or written by
	// others than its owner. New refuses to start with it.
	ErrTokenFileMode = errors.New("ui: the API token file is readable by others")
	// ErrBadTokenFile: the bearer-token file does not hold a token.
	ErrBadTokenFile = errors.New("ui: the API token file does not hold a token")
	// ErrAddr: Options.Addr is not HOST:PORT.
	ErrAddr = errors.New("ui: the listen address must be HOST:PORT")
)
