// Package e2e holds Postern's end-to-end tests: real clients (the client
// library) talking through a real relay on loopback, in-process or as a
// separately built postern-relay process that the tests kill and restart.
// It has no non-test code.
package e2e
