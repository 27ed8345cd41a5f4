//go:build postern_testpolicy

package main

import "os"

// The CLI tests build a postern without the race detector for their
// scripts (main_test.go, plainBin) with this tag, so that the scripts that
// need an organisation's policy read a stand-in for the system file from
// POSTERN_TEST_POLICY, as the test binary does. Release builds never set
// the tag (.ci/release): the postern users run reads only the system file.
func init() { testPolicyPath = os.Getenv("POSTERN_TEST_POLICY") }
